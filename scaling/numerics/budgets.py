"""Grouping runs into IsoFLOP budgets when no budget column is given.

Runs are grouped by gaps in sorted log10 C: a new group starts where the gap
to the previous run exceeds ``gap_decades`` (default 0.05 decade, i.e. 12%);
the budget value is the geometric mean of its runs' C.

Why 0.05: it sits between the largest gap inside a budget and the smallest
gap between budgets of the Marin sweeps (0.046 vs 0.062 decade; their runs
spread over up to 0.16 decade around the nominal budget, so rounding log10 C
to a fixed 1/10-decade grid split 7 budgets into 18 groups, and a 0.15-decade
gap would merge them into 3).

Gap clustering chains budgets together when C is noisier than the budget
spacing (Epoch's extraction of Chinchilla Fig. 4, whose read-off C scatters
by ~0.1 decade). So a group spanning more than ``MAX_GROUP_SPAN`` = 0.2
decade, less than the closest budgets of Chinchilla, Llama 3 and Marin (0.22
decade), is split at its largest internal gap until none is wider, and the
rule string says so: such data need a budget column.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from scaling.io.loaders import ScalingDataError

GAP_DECADES = 0.05     # default grouping gap (see module docstring).
MAX_GROUP_SPAN = 0.2   # decades; wider chained groups are split.


def group_budgets(C: np.ndarray, budget: Optional[np.ndarray] = None,
                  gap_decades: float = GAP_DECADES) -> Tuple[np.ndarray, str]:
  """Budget value per run, and the rule used (see module docstring).

  Args:
    C: training FLOPs per run.
    budget: nominal budgets per run (returned as given) or None.
    gap_decades: a new group starts where sorted log10 C jumps by more.
  """
  if budget is not None:
    return np.asarray(budget, np.float64), "budget column"
  if not gap_decades > 0:
    raise ScalingDataError(f"gap_decades must be positive, got {gap_decades}.")
  logC = np.log10(np.asarray(C, np.float64))
  order = np.argsort(logC, kind="stable")
  x = logC[order]
  cuts = set((np.flatnonzero(np.diff(x) > gap_decades) + 1).tolist())
  n_split = 0
  pending = [(0, x.size)]
  while pending:  # Split any group wider than MAX_GROUP_SPAN at its largest gap.
    lo, hi = pending.pop()
    bounds = [lo] + sorted(c for c in cuts if lo < c < hi) + [hi]
    for a, b in zip(bounds[:-1], bounds[1:]):
      if x[b - 1] - x[a] > MAX_GROUP_SPAN:
        cut = a + 1 + int(np.argmax(np.diff(x[a:b])))
        cuts.add(cut)
        n_split += 1
        pending += [(a, cut), (cut, b)]
  gid = np.empty(logC.size, np.int64)
  gid[order] = np.searchsorted(np.array(sorted(cuts), np.int64),
                               np.arange(x.size), side="right")
  out = np.empty_like(logC)
  for g in np.unique(gid):
    out[gid == g] = np.mean(logC[gid == g])
  rule = (f"no budget column: runs grouped where sorted log10 C jumps by more "
          f"than {gap_decades:g} decade (budget = geometric mean of its runs' "
          f"C); {np.unique(gid).size} groups")
  if n_split:
    rule += (f"; {n_split} chained group(s) wider than {MAX_GROUP_SPAN:g} "
             "decade were split at their largest gap, so C is too noisy to "
             "identify budgets reliably: supply a budget column")
  return 10.0**out, rule
