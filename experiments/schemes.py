"""Sweep schemes: how the runs of an IsoFLOP plan are trained (``sweep.scheme``).

One entry per scheme; the planner looks the entry up (its grid, whether it
plans trunks) instead of branching on names, and marks the runs it plans
(``trunk_id``), which is all the executor and the plan table read.

* ``independent``: every (shape, budget) run trains from scratch with its own
  schedule (``lm.train.schedule``, cosine by default; Hoffmann et al. 2022).
* ``wsd_trunk``: one warmup-stable trunk per shape and seed, a cooldown
  branch per budget (``experiments.trunks``; Hägele et al. 2024, Sec. 4).
"""
from __future__ import annotations

import dataclasses
from typing import Dict, Tuple


@dataclasses.dataclass(frozen=True)
class Scheme:
  name: str
  grid: str        # the size grid 'auto' means: 'per_budget' | 'shared'
  trunks: bool     # plans trunks whose checkpoints the runs branch from
  summary: str
  citation: str


SCHEMES: Dict[str, Scheme] = {
    s.name: s for s in (
        Scheme("independent", "per_budget", False,
               "every run from scratch, its own schedule",
               "Hoffmann et al. 2022, Sec. 3.2 (IsoFLOP profiles)"),
        Scheme("wsd_trunk", "shared", True,
               "one constant-lr trunk per shape, a cooldown branch per budget",
               "Hägele et al. 2024, 'Scaling Laws and Compute-Optimal "
               "Training Beyond Fixed Training Durations', Sec. 4"),
    )
}
SIZE_GRIDS: Tuple[str, ...] = ("auto", "per_budget", "shared")


def size_grid(sweep) -> str:
  """The grid a sweep config plans on: 'per_budget' or 'shared'."""
  grid = sweep.get("size_grid", "auto")
  return SCHEMES[sweep.scheme].grid if grid == "auto" else grid
