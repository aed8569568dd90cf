"""Foreign, inconsistent or incomplete fit input: refused or named.

Run by ``scaling.io.loaders``, so by ``scaling.fit`` and
``experiments.analyze``. Each finding is one ``error:`` line (the fit would
be silently wrong) or one warning naming the lines and what is wrong:

* a CSV header with the same column twice (``csv`` keeps the last one
  silently): error; two aliases of one quantity (``loss`` and ``val_loss``):
  warning naming the one used;
* a ledger whose final lines were scored on different eval sets
  (``eval_sha256``): error naming the odd lines (losses on other tokens are
  not comparable);
* a run whose C/budget is more than ``BUDGET_FACTOR`` x away from the
  table's median C/budget: error (a sweep's tolerance is < 0.5 by
  construction, ``experiments.sweep_config``, so one IsoFLOP curve never
  holds such a point); C more than ``BUDGET_WARN`` from its budget: warning;
* with the sweep's ``sweep.json`` beside the ledger (its plan): a line whose
  ``run_id`` is not in the plan, or whose budget or D differ from the
  plan's, is an error; planned runs with no line are named in a warning and
  in the provenance (``planned``, ``missing``).
"""
from __future__ import annotations

import collections
import math
import os
import warnings
from typing import Any, Dict, List, Sequence, Tuple

from lm import safe_io
from scaling.io.types import ScalingDataError

BUDGET_FACTOR = 2.0
BUDGET_WARN = 0.25
SWEEP_JSON = "sweep.json"
_SHOW = 5  # lines / ids named in one message


def _error(msg: str):
  return ScalingDataError(msg)


def _some(items: Sequence[Any]) -> str:
  items = list(items)
  more = f" and {len(items) - _SHOW} more" if len(items) > _SHOW else ""
  return ", ".join(str(i) for i in items[:_SHOW]) + more


def check_csv_header(header: Sequence[str], aliases: Dict[str, Sequence[str]],
                     cols: Dict[str, str], path: str) -> None:
  """Refuses a repeated column; warns when a quantity has several columns."""
  names = [str(h).strip().lower() for h in header if h is not None]
  dup = [n for n, k in collections.Counter(names).items() if k > 1]
  if dup:
    where = [i + 1 for i, n in enumerate(names) if n == dup[0]]
    raise _error(f"{path}: column {dup[0]!r} appears {len(where)} times in the "
                 f"header (columns {', '.join(map(str, where))}); which one "
                 "holds the values cannot be told: keep one")
  for canon, names_ok in aliases.items():
    present = [a for a in names_ok if a in names]
    if len(present) > 1:
      warnings.warn(f"{path}: {len(present)} columns could be {canon} "
                    f"({', '.join(present)}); using {cols[canon]!r}, "
                    f"ignoring the others", UserWarning, stacklevel=4)


def check_budgets(C, budget, run_id, source: str) -> None:
  """C against the run's budget (rows with a budget only).

  Rows off by more than ``BUDGET_FACTOR`` relative to the table's median
  C/budget are refused (points off their IsoFLOP curve); a median itself far
  from 1 (every row off by one factor: columns in other units) is a warning.
  """
  rows = [(c / b, rid) for c, b, rid in zip(C, budget, run_id)
          if math.isfinite(b) and b > 0]
  if not rows:
    return
  ratios = sorted(r for r, _ in rows)
  med = ratios[len(ratios) // 2]
  bad, odd = [], []
  for r, rid in rows:
    if r / med > BUDGET_FACTOR or r / med < 1.0 / BUDGET_FACTOR:
      bad.append(f"{rid} (C = {r:.3g} x budget)")
    elif abs(r - 1.0) > BUDGET_WARN:
      odd.append(f"{rid} ({r:.3g}x)")
  if bad:
    raise _error(f"{source}: {len(bad)} run(s) trained a C far from their "
                 f"IsoFLOP budget (the others: {med:.3g} x budget): "
                 f"{_some(bad)}; a point off its curve moves the fitted "
                 "exponents: fix or remove those rows")
  if odd:
    warnings.warn(f"{source}: {len(odd)} run(s) have C more than "
                  f"{BUDGET_WARN:.0%} away from their budget: {_some(odd)}"
                  + (" (every row: are C and budget in the same units?)"
                     if len(odd) == len(rows) else ""),
                  UserWarning, stacklevel=4)


def _check_eval_sets(final: List[Tuple[int, Dict[str, Any]]],
                     path: str) -> None:
  by_sha = collections.defaultdict(list)
  for lineno, rec in final:
    if rec.get("status") == "ok" and rec.get("eval_sha256"):
      by_sha[rec["eval_sha256"]].append(lineno)
  if len(by_sha) > 1:
    ranked = sorted(by_sha.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    main_sha, main = ranked[0]
    odd = sorted(n for _, lines in ranked[1:] for n in lines)
    raise _error(
        f"{path}: line(s) {_some(odd)} were scored on another eval set "
        f"(eval_sha256 {ranked[1][0][:12]}) than the other {len(main)} "
        f"(eval_sha256 {main_sha[:12]}); losses on other tokens are not "
        "comparable: remove those lines (their runs are redone) or analyse "
        "them apart")


def plan_of(ledger_path: str):
  """(sweep.json path, its planned runs by id) beside the ledger, or
  (None, None) when there is none; a damaged sweep.json is an error."""
  path = os.path.join(os.path.dirname(os.path.abspath(ledger_path)),
                      SWEEP_JSON)
  meta = safe_io.read_json(path, hint=(
      "delete it and run the sweep command again to rewrite it (each run's "
      "checkpoints prove which config wrote it)"))
  if meta is None:
    return None, None
  runs = meta.get("runs") if isinstance(meta, dict) else None
  if not isinstance(runs, list) or not all(
      isinstance(r, dict) and isinstance(r.get("run_id"), str) for r in runs):
    raise _error(f"{path}: has no valid 'runs' list (not a sweep.json this "
                 "version wrote?); restore it, or delete it and run the sweep "
                 "command again")
  return path, {r["run_id"]: r for r in runs}


def _check_plan(records: List[Tuple[int, Dict[str, Any]]], path: str
                ) -> Dict[str, Any]:
  sweep_path, plan = plan_of(path)
  if plan is None:
    return {}
  foreign = [(n, r["run_id"]) for n, r in records if r["run_id"] not in plan]
  if foreign:
    raise _error(
        f"{path}: line(s) {_some(f'{n} ({rid})' for n, rid in foreign)} hold "
        f"run(s) that are not in this sweep's plan ({sweep_path}); results "
        "of another sweep or a hand edit: remove those lines")
  off = []
  for n, r in records:
    p = plan[r["run_id"]]
    for key in ("budget", "D"):
      want, got = p.get(key), r.get(key)
      if want is not None and got is not None and not math.isclose(
          float(got), float(want), rel_tol=1e-9):
        off.append(f"{n} ({r['run_id']}: {key}={got:.6g}, planned "
                   f"{float(want):.6g})")
  if off:
    raise _error(f"{path}: line(s) {_some(off)} disagree with this sweep's "
                 f"plan ({sweep_path}); the line was edited or comes from "
                 "another sweep: remove it (the run is redone)")
  present = {r["run_id"] for _, r in records}
  missing = [rid for rid in plan if rid not in present]
  if missing:
    warnings.warn(f"{path}: {len(missing)} of {len(plan)} planned run(s) have "
                  f"no line in the ledger: {_some(missing)}; the fit uses the "
                  f"{len(present)} present (run the sweep command again to "
                  "finish the others)", UserWarning, stacklevel=4)
  return {"planned": len(plan), "missing": missing}


def check_ledger(records: List[Tuple[int, Dict[str, Any]]], path: str
                 ) -> Dict[str, Any]:
  """All ledger checks; returns provenance entries (planned, missing)."""
  last = {rec["run_id"]: n for n, rec in records}
  final = [(n, r) for n, r in records if last[r["run_id"]] == n]
  _check_eval_sets(final, path)
  return _check_plan(records, path)
