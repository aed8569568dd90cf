"""AdamW beta2 grids inside an IsoFLOP sweep (``sweep.b2_values``).

Porian et al. 2024 (arXiv:2406.19146, Sec. 3.4) find that AdamW's beta2 must
be tuned at small batch sizes (0.95 is too low below ~100k tokens per step);
``sweep.b2_values`` trains every (shape, budget, lr multiplier) point of the
plan at each beta2 of the grid, and the tuned analysis
(``experiments.lr_tuning``) takes, per (N, C), the best beta2 of the
lr-interpolated optima.

* Default ``()``: every run trains at the base config's ``train.b2`` (today's
  plan exactly); the empty grid is left out of the config hash
  (``sweep_config.config_hash``), so old workdirs keep their hash.
* Run and trunk ids: a run at the base config's b2 keeps its id; any other
  value adds the suffix ``_b2_<v>`` (e.g. ``_b2_0.99``) after the lr
  multiplier's ``_lrx<m>``.
* ``sweep.scheme='wsd_trunk'``: one trunk per (shape, seed, lr multiplier,
  b2) (``experiments.trunks.attach_trunks`` groups by b2 too).
* Seed repeats train at the reference b2 only: the base config's when it is
  in the grid, else the grid value nearest it in ln(1 - b2).
* Batch size is not a grid axis: at a fixed budget it changes steps and D, so
  it is set per shape by ``sweep.batch_rule`` (``'law'``: a fitted or named
  B*(D) law, ``experiments.hparam_rules``) and reported as fixed.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, List, Optional, Sequence, Tuple

from experiments import lr_grid

DEFAULT_VALUES: Tuple[float, ...] = ()
MAX_VALUES = 8


def _raw(s) -> Any:
  raw = s.get("b2_values", DEFAULT_VALUES)
  if isinstance(raw, (int, float)) and not isinstance(raw, bool):
    raw = (raw,)
  return raw


def values(s) -> Tuple[float, ...]:
  """The sweep's beta2 values, ascending (``()``: the base config's)."""
  return tuple(sorted(float(b) for b in _raw(s)))


def is_default(grid: Any) -> bool:
  """True for the grid that plans exactly the runs of a sweep without one."""
  try:
    return len(grid) == 0
  except TypeError:
    return False


def check(s) -> Optional[str]:
  """The one-line error of a malformed ``sweep.b2_values`` (None: fine)."""
  raw = _raw(s)
  ok = isinstance(raw, (list, tuple)) and len(raw) <= MAX_VALUES
  ok = ok and all(isinstance(b, (int, float)) and not isinstance(b, bool)
                  and math.isfinite(b) and 0 < b < 1 for b in raw)
  if not ok:
    return ("sweep.b2_values must be 0 to 8 AdamW beta2 values in (0, 1), "
            f"e.g. (0.95, 0.99); got {raw!r}")
  if len({f"{float(b):.6g}" for b in raw}) != len(raw):
    return f"sweep.b2_values has duplicates: {tuple(raw)!r}"
  return None


def suffix(b2: Optional[float], base_b2: float) -> str:
  """The run/trunk id suffix of ``b2`` ('' for the base config's)."""
  if b2 is None or float(b2) == float(base_b2):
    return ""
  return f"_b2_{float(b2):.6g}"


def reference(grid: Sequence[float], base_b2: float) -> float:
  """Where seed repeats train: ``base_b2`` if in the grid, else the value
  nearest it in ln(1 - b2)."""
  return min(grid, key=lambda b: (abs(math.log(1 - b) - math.log(1 - base_b2)),
                                  -b))


def expand(runs: List[Any], grid: Sequence[float], base_b2: float
           ) -> List[Any]:
  """Each PlannedRun at every beta2 of ``grid`` (seed repeats at the
  reference only), in plan order, its ``b2`` set; for the default grid the
  same runs with ``b2 = base_b2`` (ids unchanged)."""
  base_b2 = float(base_b2)
  if is_default(grid):
    return [dataclasses.replace(r, b2=base_b2) for r in runs]
  return lr_grid.expand_axis(runs, grid, reference(grid, base_b2),
                             lambda b: suffix(b, base_b2),
                             lambda r, b: {"b2": float(b)})


def describe(grid: Sequence[float], base_b2: Any) -> str:
  """One line: the beta2 each run trains at."""
  if is_default(grid):
    return f"{base_b2} (train.b2; sweep.b2_values=())"
  return ("{" + ", ".join(f"{b:g}" for b in grid) + "} (sweep.b2_values)")
