"""The results ledger: ``DIR/results.jsonl``, one JSON object per finished run.

Plain, versioned and append-only. Each record is appended with a single
``write`` on an ``O_APPEND`` descriptor and fsync'd, so a crash leaves either
the whole line or none of it. Reading never rewrites the file: a corrupted
line is reported with its line number and the file is left as it is.

Schema (``schema_version`` 1)::

  schema_version  int    1
  run_id          str    stable id from the planner
  budget          float  the IsoFLOP budget C the run belongs to
  N               int    parameters under ``param_convention``
  D               int    training tokens (steps x batch x seq_len)
  C               float  counted training FLOPs under ``flop_convention``
  eval_loss       float  final validation loss, nats/token (NaN if diverged)
  train_loss      float  mean train loss over the last report window
  status          str    "ok" | "diverged"
  wall_time_s     float  wall-clock seconds spent on the run (all attempts)
  flop_convention str    key of lm.flops.CONVENTIONS
  param_convention str   "total" | "non_embedding" | ...
  shape           dict   d_model, n_layers, n_heads, d_ff
  params          dict   total, embedding, non_embedding
  steps, batch_size, seq_len, lr: the run's schedule
"""
from __future__ import annotations

import json
import math
import os
from typing import Any, Dict, List

SCHEMA_VERSION = 1
REQUIRED = ("schema_version", "run_id", "budget", "N", "D", "C", "eval_loss",
            "status")


class LedgerError(ValueError):
  """A corrupted or incompatible ledger; the message names file and line."""


def _encode(record: Dict[str, Any]) -> str:
  def clean(v):
    if isinstance(v, float) and not math.isfinite(v):
      return None  # strict JSON: NaN/Inf become null
    return v
  return json.dumps({k: clean(v) for k, v in record.items()}, sort_keys=True,
                    allow_nan=False)


class Ledger:

  def __init__(self, path: str):
    self.path = path

  def read(self) -> List[Dict[str, Any]]:
    if not os.path.exists(self.path):
      return []
    out = []
    with open(self.path, "rb") as f:
      data = f.read()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
      lines.pop()
    for i, raw in enumerate(lines, start=1):
      where = f"{self.path}:{i}"
      try:
        rec = json.loads(raw.decode("utf-8"))
      except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise LedgerError(f"{where}: corrupted ledger line ({e.__class__.__name__}"
                          f"); fix or delete that line, other results are "
                          "untouched") from None
      if not isinstance(rec, dict):
        raise LedgerError(f"{where}: ledger line is not a JSON object")
      missing = [k for k in REQUIRED if k not in rec]
      if missing:
        raise LedgerError(f"{where}: ledger line lacks {', '.join(missing)}")
      if rec["schema_version"] != SCHEMA_VERSION:
        raise LedgerError(f"{where}: schema_version {rec['schema_version']} is "
                          f"not supported (expected {SCHEMA_VERSION})")
      out.append(rec)
    ids = [r["run_id"] for r in out]
    dup = sorted({x for x in ids if ids.count(x) > 1})
    if dup:
      raise LedgerError(f"{self.path}: run {dup[0]} appears twice")
    return out

  def run_ids(self) -> set:
    return {r["run_id"] for r in self.read()}

  def append(self, record: Dict[str, Any]) -> None:
    record = dict(record, schema_version=SCHEMA_VERSION)
    line = (_encode(record) + "\n").encode("utf-8")
    os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
    fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
      os.write(fd, line)
      os.fsync(fd)
    finally:
      os.close(fd)
