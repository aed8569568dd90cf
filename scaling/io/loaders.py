"""Loading scaling-law runs (N, D, C, loss) from CSV, JSONL or built-in sets.

Every loader returns a :class:`Runs` table whose ``provenance`` records where
the numbers came from (file hash, rows read and kept, every exclusion and the
FLOP convention). Bad input raises :class:`ScalingDataError` with a one-line
message; nothing is silently dropped or coerced.
"""
from __future__ import annotations

import csv
import io
import math
import warnings
from typing import Any, Dict, List, Optional, Sequence


from scaling.io import builtin_data
from scaling.io import input_checks
from scaling.io import ledger_schema
from scaling.io import rows as rows_lib
from scaling.io.rows import DATASETS_DIR, complete_6nd  # noqa: F401 (public)
from scaling.io.types import Runs, ScalingDataError




# Accepted column names (lower-cased), first match wins.
_ALIASES: Dict[str, Sequence[str]] = {
    "N": ("n", "params", "parameters", "num_params", "n_params",
          "model size", "model_size", "parameter_count"),
    "D": ("d", "tokens", "train_tokens", "training_tokens", "n_tokens",
          "num_tokens"),
    "C": ("c", "flops", "compute", "training flop", "training_flops",
          "train_flops"),
    "loss": ("loss", "eval_loss", "final_loss", "val_loss"),
    "budget": ("budget", "flop_budget"),
    "run_id": ("run_id", "id", "name", "run"),
    "status": ("status",),
}

BUILTIN_DATASETS: Dict[str, str] = {
    "chinchilla_epoch": (
        "Epoch's extraction of Chinchilla Fig. 4: 240 runs (245 less the 5 "
        "highest-loss points, as Besiroglu et al. 2024), D = C/(6N)."),
    "chinchilla_epoch_all": (
        "Epoch's extraction of Chinchilla Fig. 4: all 245 runs, D = C/(6N)."),
    "chinchilla_epoch_isoflop": (
        "Open-Athena's snapping of Epoch's points to the 9 Chinchilla "
        "budgets 6e18..3e21: 123 runs, D = budget/(6N)."),
    "llama3_isoflop": (
        "Llama 3 IsoFLOP points (Fig. 2, raw plotted loss), 133 runs over 10 "
        "budgets 6e18..1e22 (Open-Athena extraction)."),
    "marin_dclm": "Marin IsoFLOP sweep on DCLM (Open-Athena standardised), 85 runs.",
    "marin_comma": "Marin IsoFLOP sweep on Comma (Open-Athena standardised), 85 runs.",
    "marin_nemotron": (
        "Marin IsoFLOP sweep on Nemotron-CC (Open-Athena standardised), 88 "
        "runs."),
    "misfitting_final": (
        "Li et al. 2025 final checkpoints as in the file: 261 runs (81 (N, D) "
        "pairs x peak learning rates, some repeated), C4 eval loss, C = 6ND."),
    "misfitting_final_best_lr": (
        "Li et al. 2025 final checkpoints, lowest loss over peak learning "
        "rates per (N, D): 81 runs."),
}


def _positive_float(value: Any, what: str, where: str) -> float:
  """Parses a strictly positive finite float or raises ScalingDataError."""
  try:
    x = float(value)
  except (TypeError, ValueError):
    raise ScalingDataError(
        f"{where}: {what}={value!r} is not a number") from None
  if not math.isfinite(x) or x <= 0:
    raise ScalingDataError(
        f"{where}: {what}={value!r} must be positive and finite")
  return x


def _exclude_status(rows_status: List[tuple], provenance: Dict[str, Any],
                    source: str) -> None:
  """Warns about and records rows whose status is not 'ok'."""
  if not rows_status:
    return
  names = ", ".join(f"{rid} ({st})" for rid, st in rows_status)
  warnings.warn(f"{source}: excluded {len(rows_status)} run(s) with status "
                f"!= ok: {names}", UserWarning, stacklevel=3)
  for rid, st in rows_status:
    provenance["exclusions"].append(f"{rid}: status={st}")


def _complete_row(N: float, D: Optional[float], C: Optional[float]
                  ) -> tuple:
  """Fills D or C of one row from C = 6ND (see complete_6nd)."""
  D, C, _, _ = rows_lib.complete_6nd(N, math.nan if D is None else D,
                            math.nan if C is None else C)
  return float(D), float(C)


def _resolve_convention(has_D: bool, has_C: bool,
                        flop_convention: Optional[str], source: str) -> str:
  if has_D and has_C:
    return flop_convention or "as_given"
  if flop_convention not in (None, "6ND"):
    raise ScalingDataError(
        f"{source}: flop_convention={flop_convention!r} given but "
        f"{'C' if has_D else 'D'} is derived via C = 6ND; drop the argument "
        "or supply both D and C")
  return "6ND"


def _load_csv(path: str, flop_convention: Optional[str]) -> Runs:
  data = rows_lib.read_bytes(path)
  provenance = {"source": path, "sha256": rows_lib.sha256(data), "exclusions": []}
  try:
    text = data.decode("utf-8-sig")
  except UnicodeDecodeError:
    raise ScalingDataError(f"{path}: not UTF-8 text") from None
  reader = csv.DictReader(io.StringIO(text))
  header = reader.fieldnames
  if not header:
    raise ScalingDataError(f"{path}: empty file (expected a header with "
                           "N, D and/or C, loss)")
  lower = {h.strip().lower(): h for h in header if h is not None}
  cols = {}
  for canon, aliases in _ALIASES.items():
    for a in aliases:
      if a in lower:
        cols[canon] = lower[a]
        break
  missing = [k for k in ("N", "loss") if k not in cols]
  if "D" not in cols and "C" not in cols:
    missing.append("D or C")
  if missing:
    raise ScalingDataError(
        f"{path}: missing column(s) {', '.join(missing)}; header is "
        f"{', '.join(header)}")
  convention = _resolve_convention("D" in cols, "C" in cols, flop_convention,
                                   path)
  rows, bad_status, all_ids = [], [], []
  n_read = 0
  for i, rec in enumerate(reader):
    n_read += 1
    line = i + 2  # 1-based, after the header line.
    where = f"{path}:{line}"
    run_id = (rec.get(cols["run_id"]) if "run_id" in cols else None) or \
        f"row{line}"
    all_ids.append(run_id)
    if "status" in cols:
      status = (rec.get(cols["status"]) or "").strip()
      if not status:
        raise ScalingDataError(f"{where}: empty status (use 'ok' for "
                               "finished runs)")
      if status.lower() != "ok":
        bad_status.append((run_id, status))
        continue
    N = _positive_float(rec.get(cols["N"]), "N", where)
    D = _positive_float(rec.get(cols["D"]), "D", where) if "D" in cols else None
    C = _positive_float(rec.get(cols["C"]), "C", where) if "C" in cols else None
    loss = _positive_float(rec.get(cols["loss"]), "loss", where)
    D, C = _complete_row(N, D, C)
    budget = math.nan
    if "budget" in cols and (rec.get(cols["budget"]) or "").strip():
      budget = _positive_float(rec.get(cols["budget"]), "budget", where)
    rows.append(dict(N=N, D=D, C=C, loss=loss, budget=budget, run_id=run_id))
  provenance["n_rows_read"] = n_read
  provenance["flop_convention"] = convention
  _exclude_status(bad_status, provenance, path)
  if "run_id" in cols:
    input_checks.check_unique_ids(all_ids, path)
  runs = rows_lib.make_runs(rows, provenance)
  input_checks.check_runs(runs, path,
                          c_given="C" in cols and "D" in cols)
  return runs


def _load_jsonl(path: str, flop_convention: Optional[str]) -> Runs:
  """Reads an experiments ledger (``scaling.io.ledger_schema``, schema v1)."""
  data = rows_lib.read_bytes(path)
  provenance = {"source": path, "sha256": rows_lib.sha256(data), "exclusions": []}
  # Validates every line; a line after a run's final outcome is an error.
  records = ledger_schema.parse_lines(data, path)
  rows, bad_status, conventions, param_conventions = [], [], set(), set()
  fpt = []
  # A run's outcome is its last line (a retried 'failed' run appends its new
  # outcome): earlier lines of a run are superseded.
  last = {rec["run_id"]: lineno for lineno, rec in records}
  for lineno, rec in records:
    if last[rec["run_id"]] != lineno:
      continue
    where = f"{path}:{lineno}"
    status = str(rec["status"])
    if status.lower() != "ok":
      bad_status.append((rec["run_id"], status))
      continue
    N = _positive_float(rec["N"], "N", where)
    D = _positive_float(rec["D"], "D", where)
    C = _positive_float(rec["C"], "C", where)
    loss = _positive_float(rec["eval_loss"], "eval_loss", where)
    budget = math.nan
    if rec.get("budget") is not None:
      budget = _positive_float(rec["budget"], "budget", where)
    if rec.get("flop_convention"):
      conventions.add(str(rec["flop_convention"]))
    if rec.get("param_convention"):
      param_conventions.add(str(rec["param_convention"]))
    fpt.append(rec.get("flops_per_token"))
    rows.append(dict(N=N, D=D, C=C, loss=loss, budget=budget,
                     run_id=str(rec["run_id"])))
  if len(conventions) > 1 and flop_convention is None:
    raise ScalingDataError(
        f"{path}: mixed flop_convention values {sorted(conventions)}; C is "
        "not comparable across runs")
  provenance["n_rows_read"] = len(records)
  provenance["flop_convention"] = (flop_convention or
                                   (conventions.pop() if conventions
                                    else "as_given"))
  if len(param_conventions) > 1:
    raise ScalingDataError(
        f"{path}: mixed param_convention values {sorted(param_conventions)}; "
        "N is not comparable across runs")
  if param_conventions:
    provenance["param_convention"] = param_conventions.pop()
  _exclude_status(bad_status, provenance, path)
  # Ledger lines come in completion order (parallel runners): fix the order
  # (budget, N, D: plan order) so seeded bootstraps do not depend on it.
  order = sorted(range(len(rows)), key=lambda i: (
      rows[i]["budget"] if math.isfinite(rows[i]["budget"]) else rows[i]["C"],
      rows[i]["N"], rows[i]["D"], rows[i]["run_id"]))
  rows, fpt = [rows[i] for i in order], [fpt[i] for i in order]
  runs = rows_lib.make_runs(rows, provenance)
  input_checks.check_runs(runs, path, flops_per_token=fpt)
  return runs


def load_runs(source: str, *, flop_convention: Optional[str] = None) -> Runs:
  """Loads runs from a built-in name, a ``.csv`` path or a ``.jsonl`` ledger.

  Args:
    source: a key of BUILTIN_DATASETS, or a path ending in .csv or .jsonl.
    flop_convention: label for C when the file gives both D and C (default
      'as_given'); when C or D is derived the convention is always '6ND'.

  Returns:
    Runs with float64 arrays and a provenance record.

  Raises:
    ScalingDataError: unknown source, missing columns, empty table, or any
      non-positive / non-finite N, D, C or loss.
  """
  if source in BUILTIN_DATASETS:
    if flop_convention not in (None, "6ND"):
      raise ScalingDataError(
          f"built-in {source!r} uses C = 6ND; flop_convention="
          f"{flop_convention!r} does not apply")
    if source.startswith("chinchilla_epoch") and source != \
        "chinchilla_epoch_isoflop":
      return builtin_data.load_epoch(source)
    if source.startswith("misfitting"):
      return builtin_data.load_misfitting(source)
    return builtin_data.load_open_athena(source)
  lower = str(source).lower()
  if lower.endswith(".csv"):
    return _load_csv(source, flop_convention)
  if lower.endswith(".jsonl"):
    return _load_jsonl(source, flop_convention)
  raise ScalingDataError(
      f"unknown data source {source!r}: use a .csv or .jsonl path or one of "
      f"{', '.join(sorted(BUILTIN_DATASETS))}")
