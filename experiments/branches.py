"""Fewer cooldown branches per WSD trunk (``sweep.branches``; issue 21 item 3).

``sweep.branches='all'`` (the default) trains every (shape, budget) branch of a
``wsd_trunk`` sweep. An integer k >= 1 trains only k branches per trunk,
spread evenly in log budget over the budgets the trunk serves, always
including its largest (so the trunk still trains to its longest budget's
cooldown start P_max); the other points are *predicted*, not trained: the
plan keeps them in ``Plan.predicted`` (sweep.json ``predicted``), never in
``Plan.runs``, so the executor does not train them, the ledger never holds
them, and the analysis does not count them as missing. Their losses come
from the multi-power law fitted per trunk (``experiments.cosine_equivalent``,
the offset-anchored path: L_law(cosine, S) + the trunk's mean measured
offset). A trunk serving k or fewer budgets trains all of its branches.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

from experiments.plan_records import PlanError

FIELD, DEFAULT = "branches", "all"
DOC = ("wsd_trunk: 'all' (train every cooldown branch) or an integer k >= 1 "
       "(a string of digits: --config.sweep.branches=2): "
       "train k branches per trunk, spread evenly in log budget and always "
       "including its largest budget; predict the others from the multi-power "
       "law fitted per trunk (experiments.branches, docs/wsd.md)")


def parse(s) -> Optional[int]:
  """None for 'all', else k; PlanError (one line) for anything else."""
  v = s.get(FIELD, DEFAULT)
  if v == DEFAULT:
    return None
  n = len(s.budgets) if isinstance(s.budgets, (list, tuple)) else 1
  k = _int(v)
  if k is None or not 1 <= k <= n:
    raise PlanError(f"sweep.branches must be 'all' or an integer k with 1 <= "
                    f"k <= {n} (the number of sweep.budgets), got {v!r}")
  if s.scheme != "wsd_trunk":
    raise PlanError(f"sweep.branches={v!r} applies to sweep.scheme="
                    f"'wsd_trunk' only (scheme is {s.scheme!r}); leave it "
                    "'all'")
  return k


def _int(v) -> Optional[int]:
  """k from an int or a string of digits (--config.sweep.branches=2 on the
  command line: the field holds a string), else None."""
  if isinstance(v, bool):
    return None
  if isinstance(v, int):
    return v
  if isinstance(v, str) and v.strip().lstrip("+-").isdigit():
    return int(v.strip())
  return None


def add_hash_material(sweep: Dict[str, Any]) -> None:
  """config_hash: 'all' hashes as before the field existed; k as an integer
  ('2' and 2 are one config)."""
  v = sweep.get(FIELD, DEFAULT)
  if v == DEFAULT:
    sweep.pop(FIELD, None)
  elif _int(v) is not None:
    sweep[FIELD] = _int(v)


def spread(budgets: Sequence[float], k: int) -> List[int]:
  """Indices of k of the sorted ``budgets``, evenly in log budget, the
  largest always among them (k = 1: only the largest)."""
  n = len(budgets)
  if k >= n:
    return list(range(n))
  lo, hi = math.log(budgets[0]), math.log(budgets[-1])
  targets = [hi - j * (hi - lo) / (k - 1) for j in range(k)] if k > 1 else [hi]
  chosen: List[int] = []
  for t in targets:  # largest first: nearest budget not yet chosen
    free = [i for i in range(n) if i not in chosen]
    chosen.append(min(free, key=lambda i: (abs(math.log(budgets[i]) - t), -i)))
  return sorted(chosen)


def select(runs: Sequence, trunks: Sequence, k: Optional[int]
           ) -> Tuple[list, list, list]:
  """(trained runs, predicted runs, trunks) of a wsd_trunk plan: per trunk
  the ``spread`` branches are trained; its kept checkpoints (branch_steps)
  are theirs only. k None: unchanged."""
  if k is None:
    return list(runs), [], list(trunks)
  by: Dict[str, list] = {}
  for r in runs:
    by.setdefault(r.trunk_id, []).append(r)
  keep = set()
  for members in by.values():
    members = sorted(members, key=lambda r: (r.budget, r.steps))
    keep |= {members[i].run_id
             for i in spread([r.budget for r in members], k)}
  trained = [r for r in runs if r.run_id in keep]
  predicted = [r for r in runs if r.run_id not in keep]
  out = []
  for t in trunks:
    mine = [r for r in trained if r.trunk_id == t.trunk_id]
    assert max(r.steps for r in mine) == t.steps  # the largest is trained
    out.append(dataclasses.replace(
        t, branch_steps=tuple(sorted({r.branch_step for r in mine}))))
  return trained, predicted, out


def points_line(plan) -> str:
  """'12 measured + 30 predicted points (sweep.branches=k per trunk)'."""
  n_m, n_p = len(plan.runs), len(plan.predicted)
  return (f"{n_m} measured + {n_p} predicted points (sweep.branches="
          f"{plan.branches} per trunk: the {n_p} untrained points' losses are "
          "predicted by the multi-power law fitted per trunk, "
          "experiments.cosine_equivalent)")


def summary_line(plan, records: Sequence[Dict[str, Any]]) -> str:
  """The sweep's end: measured points in the ledger, predicted ones not."""
  ok = sum(r.get("status") == "ok" for r in records)
  return (f"points: {ok} measured (of {len(plan.runs)} trained branches) + "
          f"{len(plan.predicted)} predicted, not trained (sweep.branches="
          f"{plan.branches} per trunk; experiments.analyze reports their "
          "cosine-equivalent predictions)")
