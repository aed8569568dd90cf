"""Runs with their learning rate and batch: a CSV or a sweep ledger -> ``HparamRuns``.

Accepted inputs of ``python -m scaling.fit --approach=hparams --input=...``:

* a CSV with columns ``N, D, lr, loss`` and, optionally, ``batch_tokens``
  (tokens per optimizer step), ``C`` (training FLOPs; default C = 6ND),
  ``run_id``, ``lr_multiplier`` and ``status`` (rows whose status is not
  ``ok`` are left out, with a warning);
* a sweep ledger (``results.jsonl``, ``scaling.io.ledger_schema``) or a sweep
  workdir holding one. Ledger fields read: ``N``, ``D``, ``C``,
  ``eval_loss``, ``lr`` (peak learning rate), ``batch_size`` x ``seq_len``
  (tokens per step), ``run_id``, ``status`` (``ok`` only; a run's last line
  is its outcome), ``flop_convention``, ``param_convention`` and, when
  present, ``lr_multiplier``.

Bad input raises ``ScalingDataError`` with one line naming the file and row:
a missing column, a learning rate (or N, D, C, loss, batch) that is not a
positive finite number, a run without a learning rate in a ledger.
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import math
import os
import warnings
from typing import Any, Dict, List, Optional

import numpy as np

from scaling.io import ledger_schema
from scaling.io.types import ScalingDataError

# Accepted CSV column names (lower-cased), first match wins.
ALIASES: Dict[str, tuple] = {
    "N": ("n", "params", "parameters", "n_params"),
    "D": ("d", "tokens", "train_tokens"),
    "C": ("c", "flops", "compute"),
    "lr": ("lr", "learning_rate", "peak_lr", "eta"),
    "batch_tokens": ("batch_tokens", "batch_size_tokens", "tokens_per_step"),
    "loss": ("loss", "eval_loss", "final_loss", "val_loss"),
    "run_id": ("run_id", "id", "run", "name"),
    "lr_multiplier": ("lr_multiplier",),
    "status": ("status",),
}
REQUIRED = ("N", "D", "lr", "loss")
_NUMERIC = ("N", "D", "C", "lr", "batch_tokens", "loss", "lr_multiplier")


@dataclasses.dataclass(frozen=True)
class HparamRuns:
  """One row per finished run (float64 arrays; NaN where not recorded).

  Attributes:
    N: parameters (under ``provenance['param_convention']`` when known).
    D: training tokens.
    C: training FLOPs (``provenance['flop_convention']``; 6ND when derived).
    lr: peak learning rate of the run.
    batch_tokens: tokens per optimizer step (NaN: not recorded).
    loss: final loss (nats per token).
    lr_multiplier: the sweep's factor on its rule's learning rate (NaN: none).
    run_id: string ids (object array).
    provenance: source, sha256, n_rows_read, n_rows, exclusions,
      flop_convention, param_convention, and the field names read.
  """
  N: np.ndarray
  D: np.ndarray
  C: np.ndarray
  lr: np.ndarray
  batch_tokens: np.ndarray
  loss: np.ndarray
  lr_multiplier: np.ndarray
  run_id: np.ndarray
  provenance: Dict[str, Any]

  def __len__(self) -> int:
    return int(self.N.shape[0])

  @property
  def has_batch(self) -> bool:
    return bool(np.all(np.isfinite(self.batch_tokens)))

  def columns(self) -> Dict[str, np.ndarray]:
    """The table ``scaling.report.analysis.run_fit`` passes to the fit (``table=``)."""
    return {k: getattr(self, k) for k in _NUMERIC + ("run_id",)}

  @classmethod
  def from_columns(cls, cols: Dict[str, np.ndarray],
                   provenance: Optional[Dict[str, Any]] = None
                   ) -> "HparamRuns":
    n = len(cols["N"])
    f64 = lambda k: (np.asarray(cols[k], np.float64) if k in cols
                     else np.full(n, np.nan))
    ids = cols.get("run_id")
    ids = (np.array([f"row{i}" for i in range(n)], dtype=object)
           if ids is None else np.asarray(ids, dtype=object))
    D = f64("D")
    C = f64("C")
    C = np.where(np.isfinite(C), C, 6.0 * f64("N") * D)  # C = 6ND (Kaplan 2020 Sec. 2.1)
    return cls(N=f64("N"), D=D, C=C, lr=f64("lr"),
               batch_tokens=f64("batch_tokens"), loss=f64("loss"),
               lr_multiplier=f64("lr_multiplier"), run_id=ids,
               provenance=dict(provenance or {}))


def _number(value: Any, what: str, where: str) -> float:
  """A positive finite float, else one ScalingDataError line."""
  try:
    x = float(value)
  except (TypeError, ValueError):
    raise ScalingDataError(f"{where}: {what}={value!r} is not a number"
                           ) from None
  if not math.isfinite(x) or x <= 0:
    hint = (" (learning rates must be > 0: fix or drop the row)"
            if what == "lr" else "")
    raise ScalingDataError(f"{where}: {what}={value!r} must be positive and "
                           f"finite{hint}")
  return x


def _read(path: str) -> bytes:
  try:
    with open(path, "rb") as f:
      return f.read()
  except OSError as e:
    raise ScalingDataError(f"cannot read {path!r}: {e.strerror}") from None


def _csv(path: str) -> HparamRuns:
  raw = _read(path)
  try:
    text = raw.decode("utf-8-sig")
  except UnicodeDecodeError:
    raise ScalingDataError(f"{path}: not UTF-8 text") from None
  reader = csv.DictReader(io.StringIO(text))
  header = [h for h in (reader.fieldnames or []) if h is not None]
  lower = {h.strip().lower(): h for h in header}
  cols = {}
  for canon, names in ALIASES.items():
    hit = next((lower[a] for a in names if a in lower), None)
    if hit is not None:
      cols[canon] = hit
  missing = [k for k in REQUIRED if k not in cols]
  if missing:
    raise ScalingDataError(
        f"{path}: missing column(s) {', '.join(missing)} (--approach=hparams "
        f"reads N, D, lr, loss and optional batch_tokens, C, run_id); header "
        f"is {', '.join(header) or '(empty)'}")
  rows: Dict[str, List[Any]] = {k: [] for k in cols if k != "status"}
  excluded, n_read = [], 0
  for i, rec in enumerate(reader):
    n_read += 1
    where = f"{path}:{i + 2}"
    rid = (rec.get(cols["run_id"]) if "run_id" in cols else "") or f"row{i + 2}"
    if "status" in cols:
      st = (rec.get(cols["status"]) or "").strip()
      if st.lower() != "ok":
        excluded.append(f"{rid}: status={st or '(empty)'}")
        continue
    for k in rows:
      v = rec.get(cols[k])
      if k == "run_id":
        rows[k].append(rid)
      elif k in REQUIRED or (v or "").strip():
        rows[k].append(_number(v, k, where))
      else:
        rows[k].append(math.nan)
  prov = dict(source=path, sha256=hashlib.sha256(raw).hexdigest(),
              n_rows_read=n_read, exclusions=excluded,
              flop_convention="as_given" if "C" in cols else "6ND",
              param_convention=None,
              fields_read={k: cols[k] for k in cols})
  return _finish(rows, prov, path)


def _ledger(path: str) -> HparamRuns:
  raw = _read(path)
  records = ledger_schema.parse_lines(raw, path)
  last = {rec["run_id"]: lineno for lineno, rec in records}
  rows: Dict[str, List[Any]] = {k: [] for k in _NUMERIC + ("run_id",)}
  excluded, convs, pconvs = [], set(), set()
  for lineno, rec in records:
    if last[rec["run_id"]] != lineno:
      continue
    where = f"{path}:{lineno} (run {rec['run_id']})"
    if rec["status"] != "ok":
      excluded.append(f"{rec['run_id']}: status={rec['status']}")
      continue
    if rec.get("lr") is None:
      raise ScalingDataError(
          f"{where}: no lr recorded (ledger written before learning rates "
          "were logged?); --approach=hparams needs each run's peak learning "
          "rate")
    for k, field in (("N", "N"), ("D", "D"), ("C", "C"), ("loss", "eval_loss"),
                     ("lr", "lr")):
      rows[k].append(_number(rec.get(field), field, where))
    bs, T = rec.get("batch_size"), rec.get("seq_len")
    rows["batch_tokens"].append(
        _number(bs * T, "batch_size x seq_len", where)
        if bs is not None and T is not None else math.nan)
    m = rec.get("lr_multiplier")
    rows["lr_multiplier"].append(math.nan if m is None else float(m))
    rows["run_id"].append(str(rec["run_id"]))
    if rec.get("flop_convention"):
      convs.add(str(rec["flop_convention"]))
    if rec.get("param_convention"):
      pconvs.add(str(rec["param_convention"]))
  for what, s in (("flop_convention", convs), ("param_convention", pconvs)):
    if len(s) > 1:
      raise ScalingDataError(f"{path}: mixed {what} values {sorted(s)}; runs "
                             "are not comparable")
  prov = dict(source=path, sha256=hashlib.sha256(raw).hexdigest(),
              n_rows_read=len(records), exclusions=excluded,
              flop_convention=convs.pop() if convs else "as_given",
              param_convention=pconvs.pop() if pconvs else None,
              fields_read={"N": "N", "D": "D", "C": "C", "loss": "eval_loss",
                           "lr": "lr", "batch_tokens": "batch_size*seq_len",
                           "lr_multiplier": "lr_multiplier",
                           "run_id": "run_id"})
  return _finish(rows, prov, path)


def _finish(rows, prov, path) -> HparamRuns:
  if prov["exclusions"]:
    warnings.warn(f"{path}: excluded {len(prov['exclusions'])} run(s) with "
                  f"status != ok: {', '.join(prov['exclusions'][:5])}")
  if not rows["N"]:
    raise ScalingDataError(f"{path}: no usable rows (read "
                           f"{prov['n_rows_read']})")
  ids = rows.get("run_id", [])
  dup = sorted({r for r in ids if ids.count(r) > 1})
  if dup:
    raise ScalingDataError(f"{path}: run id {dup[0]!r} appears more than once;"
                           " keep one row per run")
  prov["n_rows"] = len(rows["N"])
  cols = {k: (np.array(v, dtype=object) if k == "run_id" else
              np.array(v, np.float64)) for k, v in rows.items()}
  bt = cols.get("batch_tokens")
  if bt is not None and np.isnan(bt).any() and not np.isnan(bt).all():
    raise ScalingDataError(f"{path}: batch_tokens is missing for some runs "
                           f"({int(np.isnan(bt).sum())}); give it for every "
                           "run or for none")
  return HparamRuns.from_columns(cols, prov)


def load(source: str) -> HparamRuns:
  """Runs with learning rates from a CSV, a ledger (.jsonl) or a workdir."""
  source = os.path.expanduser(str(source))
  if os.path.isdir(source):
    ledger = os.path.join(source, "results.jsonl")
    if not os.path.exists(ledger):
      raise ScalingDataError(f"{source}: no results.jsonl (the sweep ledger)")
    source = ledger
  lower = source.lower()
  if lower.endswith(".csv"):
    return _csv(source)
  if lower.endswith(".jsonl"):
    return _ledger(source)
  raise ScalingDataError(
      f"--approach=hparams reads a .csv (N, D, lr, batch_tokens, loss), a "
      f"ledger .jsonl or a sweep workdir; got {source!r}")
