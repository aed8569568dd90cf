"""The results ledger: ``DIR/results.jsonl``, one JSON object per run outcome.

Plain, versioned and append-only. Each record is appended with a single
``write`` on an ``O_APPEND`` descriptor and fsync'd, so a crash leaves either
the whole line or none of it. Reading never rewrites the file: a corrupted
line is reported with its line number and the file is left as it is.

Lines are in the order runs finished (a parallel runner finishes them out of
plan order); nothing may depend on that order. A run's outcome is its last
line: ``ok`` and ``diverged`` are final (a finished run never runs again, and
a second line after one is an error), ``failed`` is not (a later sweep
invocation retries the run and appends its new outcome, which supersedes the
failed line). ``read()`` returns one record per run, its outcome.

Schema (``schema_version`` 1)::

  schema_version  int    1
  run_id          str    stable id from the planner
  budget          float  the IsoFLOP budget C the run belongs to
  N               int    parameters under ``param_convention``
  D               int    training tokens (steps x batch x seq_len)
  C               float  counted training FLOPs under ``flop_convention``
  eval_loss       float  final validation loss, nats/token (NaN if diverged)
  train_loss      float  mean train loss over the last report window
  status          str    "ok" | "diverged" | "failed" (FINAL: ok, diverged)
  error           str    status "failed": the last attempt's error, one line
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
FINAL = ("ok", "diverged")  # outcomes a later invocation keeps (not "failed")


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
    """One record per run: its outcome (last line), in the order of those lines."""
    return list(self.latest().values())

  def latest(self) -> Dict[str, Dict[str, Any]]:
    """run_id -> the run's outcome (its last line); validates every line."""
    out: Dict[str, Dict[str, Any]] = {}
    for rec in self.lines():
      out.pop(rec["run_id"], None)  # keeps dict order = order of last lines
      out[rec["run_id"]] = rec
    return out

  def finished_ids(self) -> set:
    """Runs with a final outcome (ok or diverged): never to be run again."""
    return {k for k, r in self.latest().items() if r["status"] in FINAL}

  def lines(self) -> List[Dict[str, Any]]:
    """Every line, validated, in file order (superseded failed lines too)."""
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
    final: Dict[str, int] = {}
    for i, rec in enumerate(out, start=1):
      first = final.get(rec["run_id"])
      if first is not None:
        raise LedgerError(f"{self.path}:{i}: run {rec['run_id']} appears again "
                          f"after its final outcome on line {first} (only "
                          "'failed' lines may be superseded)")
      if rec["status"] in FINAL:
        final[rec["run_id"]] = i
    return out

  def run_ids(self) -> set:
    return set(self.latest())

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
