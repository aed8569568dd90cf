"""The ledger line format (``DIR/results.jsonl``): one schema for writer and readers.

Written by ``experiments.executor`` through ``experiments.ledger.Ledger``
(which re-exports everything here), read by ``experiments.ledger``,
``experiments.analyze`` and ``scaling.io.loaders`` (``.jsonl`` input of
``scaling.fit``). It lives in ``scaling`` because ``scaling`` must not import
``experiments``. Field documentation: docs/ledger.md.

A ledger is UTF-8 text, one JSON object per line, ``schema_version`` 1.
Readers validate every line and name the file and line of a bad one; blank
lines are skipped. Fields not listed here are kept (newer writers), absent
optional fields are fine (older ones).

Lines are in the order runs finished (a parallel runner finishes them out of
plan order); nothing may depend on that order. A run's outcome is its last
line: ``ok`` and ``diverged`` are final, ``failed`` is not (a later sweep
invocation retries the run and appends its new outcome, which supersedes the
failed line). A line after a run's final outcome is an error (two drivers, or
a hand edit: which result is the real one cannot be told).
"""
from __future__ import annotations

import dataclasses
import json
import math
from typing import Any, Dict, List, Mapping, Tuple

from lm import safe_io  # stdlib only
from scaling.io.types import ScalingDataError

SCHEMA_VERSION = 1
STATUSES = ("ok", "diverged", "failed")
FINAL = ("ok", "diverged")  # outcomes a later invocation keeps (not "failed")


class LedgerError(ScalingDataError):
  """A corrupted or incompatible ledger; the message names file and line."""


@dataclasses.dataclass(frozen=True)
class Field:
  kind: str        # "int" | "number" | "str" | "dict" | "status"
  required: bool
  doc: str


# name -> Field. ``number`` fields may be null (NaN/Inf are stored as null).
FIELDS: Dict[str, Field] = {
    "schema_version": Field("int", True, "1"),
    "run_id": Field("str", True, "stable id from the planner"),
    "budget": Field("number", True, "the IsoFLOP budget C the run belongs to"),
    "N": Field("number", True, "parameters under param_convention"),
    "D": Field("number", True, "training tokens (steps x batch x seq_len)"),
    "C": Field("number", True, "counted training FLOPs under flop_convention"),
    "eval_loss": Field("number", True, "final validation loss, nats/token "
                                       "(null if diverged)"),
    "status": Field("status", True, " | ".join(STATUSES)
                    + " (final: " + ", ".join(FINAL) + ")"),
    "error": Field("str", False, "status 'failed': the last attempt's error, "
                                 "one line (also a branch whose trunk "
                                 "diverged: why)"),
    "train_loss": Field("number", False, "mean train loss, last report window"),
    "wall_time_s": Field("number", False, "wall-clock seconds, all attempts"),
    "flop_convention": Field("str", False, "key of lm.flops.CONVENTIONS"),
    "param_convention": Field("str", False,
                              "key of lm.params.PARAM_CONVENTIONS"),
    "flops_per_token": Field("number", False,
                             "F = C / D under flop_convention"),
    "shape": Field("dict", False, "d_model, n_layers, n_heads, d_ff"),
    "params": Field("dict", False, "total, embedding, non_embedding"),
    "steps": Field("int", False, "optimizer steps"),
    "batch_size": Field("int", False, "sequences per step"),
    "seq_len": Field("int", False, "tokens per sequence"),
    "lr": Field("number", False, "peak learning rate"),
    "lr_multiplier": Field("number", False, "sweep.lr_multipliers factor: lr "
                           "= the sweep's lr rule x this (1: the rule's)"),
    "b2": Field("number", False, "AdamW beta2 the run trained at "
                "(sweep.b2_values; else train.b2)"),
    "batch_tokens": Field("int", False, "tokens per optimizer step "
                          "(batch_size x seq_len)"),
    "eval_loss_se": Field("number", False, "standard error of eval_loss"),
    "eval_tokens": Field("int", False, "target tokens scored by the eval"),
    "eval_sha256": Field("str", False, "identifies the eval token ids"),
    "eval_flops": Field("number", False, "FLOPs spent on evaluation (not in C)"),
    "epochs": Field("number", False, "D / unique training tokens"),
    "seed": Field("int", False, "the run's training seed"),
    "repeat_of": Field("str", False, "run_id of the base run of a seed repeat, "
                                     "else null"),
    "scheme": Field("str", False, "how the run was trained: 'independent' or "
                                  "'wsd_trunk' (experiments.schemes)"),
    "schedule": Field("str", False, "lr schedule (lm.schedules): cosine | "
                                    "linear | wsd"),
    "compute_spent": Field("number", False, "training FLOPs this result "
                           "trained itself (C, or a branch's cooldown beyond "
                           "its shared trunk)"),
    "trunk_id": Field("str", False, "wsd_trunk: the trunk this branch cooled "
                                    "down from (DIR/trunks/<trunk_id>)"),
    "branch_step": Field("int", False, "wsd_trunk: the trunk step the branch "
                                       "started from (its cooldown start)"),
}
REQUIRED: Tuple[str, ...] = tuple(k for k, f in FIELDS.items() if f.required)


def _is_number(v: Any) -> bool:
  return isinstance(v, (int, float)) and not isinstance(v, bool)


def _type_ok(kind: str, v: Any) -> bool:
  if kind == "int":
    return isinstance(v, int) and not isinstance(v, bool)
  if kind == "number":
    return _is_number(v)
  if kind == "str":
    return isinstance(v, str)
  if kind == "dict":
    return isinstance(v, dict)
  return v in STATUSES  # "status"


def validate(rec: Any, where: str) -> Dict[str, Any]:
  """Checks one decoded line; returns it or raises LedgerError naming ``where``."""
  if not isinstance(rec, dict):
    raise LedgerError(f"{where}: ledger line is not a JSON object")
  missing = [k for k in REQUIRED if k not in rec]
  if missing:
    raise LedgerError(f"{where}: ledger line lacks required field(s) "
                      f"{', '.join(missing)}")
  if rec["schema_version"] != SCHEMA_VERSION:
    raise LedgerError(f"{where}: schema_version {rec['schema_version']} is not "
                      f"supported (expected {SCHEMA_VERSION})")
  for name, field in FIELDS.items():
    v = rec.get(name)
    if v is None:
      if field.required and field.kind != "number":
        raise LedgerError(f"{where}: {name} is null")
      continue
    if not _type_ok(field.kind, v):
      raise LedgerError(f"{where}: {name}={v!r} is not a valid {field.kind} "
                        f"({field.doc})")
  if not rec["run_id"]:
    raise LedgerError(f"{where}: run_id is empty")
  for name in ("run_id", "trunk_id"):  # names of directories: checked before
    if rec.get(name) is not None:     # any reader opens one (lm.safe_io)
      try:
        safe_io.check_name(rec[name], name, where)
      except safe_io.UnsafePathError as e:
        raise LedgerError(str(e)) from None
  return rec


def parse(data: bytes, path: str) -> List[Dict[str, Any]]:
  """One record per run, its outcome (see ``latest``), from a ledger's bytes."""
  return list(latest(parse_lines(data, path)).values())


def latest(lines: List[Tuple[int, Dict[str, Any]]]) -> Dict[str, Dict[str, Any]]:
  """run_id -> the run's outcome (its last line), in the order of those lines."""
  out: Dict[str, Dict[str, Any]] = {}
  for _, rec in lines:
    out.pop(rec["run_id"], None)
    out[rec["run_id"]] = rec
  return out


def parse_lines(data: bytes, path: str) -> List[Tuple[int, Dict[str, Any]]]:
  """(1-based line number, record) for every line of a ledger's bytes,
  validated; a line after its run's final outcome is an error."""
  lines = data.split(b"\n")
  unterminated = bool(lines) and lines[-1] != b""
  if not unterminated:
    lines.pop()
  out: List[Tuple[int, Dict[str, Any]]] = []
  final_line: Dict[str, int] = {}
  for i, raw in enumerate(lines, start=1):
    if not raw.strip():
      continue
    where = f"{path}:{i}"
    try:
      rec = json.loads(raw.decode("utf-8"),
                       object_pairs_hook=safe_io.no_duplicate_keys(where))
    except safe_io.CorruptFileError as e:  # a key twice: which value is meant?
      raise LedgerError(str(e)) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
      if unterminated and i == len(lines):
        raise LedgerError(
            f"{where}: incomplete last line (a write cut short by a crash or "
            "a full disk?); delete that line and run the sweep again (that "
            "run is redone), other results are untouched") from None
      raise LedgerError(f"{where}: corrupted ledger line ({type(e).__name__})"
                        "; fix or delete that line, other results are "
                        "untouched") from None
    rec = validate(rec, where)
    rid = rec["run_id"]
    if rid in final_line:
      raise LedgerError(
          f"{where}: run {rid} appears twice: again after its final outcome "
          f"on line {final_line[rid]} (only 'failed' lines may be "
          "superseded); two drivers wrote this ledger, or it was edited: keep "
          "the line you trust and delete the other")
    if rec["status"] in FINAL:
      final_line[rid] = i
    out.append((i, rec))
  return out


def encode(record: Mapping[str, Any]) -> bytes:
  """One ledger line (with its newline); NaN/Inf become null (strict JSON)."""
  def clean(v):
    if isinstance(v, float) and not math.isfinite(v):
      return None
    return v
  rec = {k: clean(v) for k, v in record.items()}
  rec["schema_version"] = SCHEMA_VERSION
  validate(rec, "record to append")
  return (json.dumps(rec, sort_keys=True, allow_nan=False) + "\n").encode(
      "utf-8")
