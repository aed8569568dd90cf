"""Learning-rate grids inside an IsoFLOP sweep (``sweep.lr_multipliers``).

Every (shape, budget) point of the plan is trained at each factor m of
``sweep.lr_multipliers`` times the learning rate its rule gives
(``sweep.lr_rule`` with its ``lr_max`` clamp; ``shape_search.marin_lr``), so
the analysis can take, per (N, C), the loss at the learning-rate optimum
(``experiments.lr_tuning``) instead of the loss at whatever the rule picked
(Porian et al. 2024, arXiv:2406.19146, Sec. 3: per-scale tuning is one of the
three causes of the Kaplan-Chinchilla discrepancy).

* Run and trunk ids: a run at m = 1 keeps the id it has without a grid, so
  the default grid ``(1.0,)`` plans exactly today's runs (and old workdirs
  resume); a run at m != 1 gets the suffix ``_lrx<m>`` (e.g. ``_lrx0.5``).
* ``sweep.scheme='wsd_trunk'``: one trunk per (shape, seed, m)
  (``experiments.trunks.attach_trunks`` groups by the multiplier too).
* Seed repeats are trained at the reference multiplier only (the one
  nearest 1 in log): they measure run-to-run noise, which does not need a
  grid of its own.
* The default grid is left out of the config hash
  (``sweep_config.config_hash``), so configs written before the field
  existed keep their hash.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

DEFAULT_MULTIPLIERS: Tuple[float, ...] = (1.0,)
MAX_MULTIPLIERS = 16


def multipliers(s) -> Tuple[float, ...]:
  """The sweep's lr multipliers, ascending (``(1.0,)`` when not set)."""
  grid = s.get("lr_multipliers", DEFAULT_MULTIPLIERS)
  if isinstance(grid, (int, float)):
    grid = (grid,)
  return tuple(sorted(float(m) for m in grid))


def is_default(grid: Any) -> bool:
  """True for the grid that plans exactly the runs of a sweep without one."""
  if isinstance(grid, (int, float)) and not isinstance(grid, bool):
    grid = (grid,)
  try:
    return [float(m) for m in grid] == [1.0]
  except (TypeError, ValueError):
    return False


def check(s) -> Optional[str]:
  """The one-line error of a malformed ``sweep.lr_multipliers`` (None: fine;
  ``experiments.sweep_config`` raises it as a PlanError)."""
  raw = s.get("lr_multipliers", DEFAULT_MULTIPLIERS)
  if isinstance(raw, (int, float)) and not isinstance(raw, bool):
    raw = (raw,)
  ok = isinstance(raw, (list, tuple)) and 0 < len(raw) <= MAX_MULTIPLIERS
  ok = ok and all(isinstance(m, (int, float)) and not isinstance(m, bool)
                  and math.isfinite(m) and m > 0 for m in raw)
  if not ok:
    return ("sweep.lr_multipliers must be 1 to 16 positive factors of the "
            f"rule's learning rate, e.g. (0.5, 1.0, 2.0); got {raw!r}")
  if len({suffix(float(m)) for m in raw}) != len(raw):
    return f"sweep.lr_multipliers has duplicates: {tuple(raw)!r}"
  return None


def suffix(m: float) -> str:
  """The run/trunk id suffix of multiplier m ('' for 1)."""
  return "" if m == 1.0 else f"_lrx{m:.4g}"


def reference(grid: Sequence[float]) -> float:
  """The multiplier nearest 1 in log (the larger on a tie): where seed
  repeats train."""
  return min(grid, key=lambda m: (abs(math.log(m)), -m))


def expand_axis(runs: List[Any], values: Sequence[Any], ref: Any,
                suffix_of: Callable[[Any], str],
                fields_of: Callable[[Any, Any], Dict[str, Any]]) -> List[Any]:
  """Each PlannedRun at every value of one hyper-parameter grid axis, in plan
  order: its id + ``suffix_of(v)`` and ``fields_of(run, v)`` set; a seed
  repeat only at ``ref`` (its base run's id at ``ref``). Shared by the lr
  multipliers (here) and the beta2 values (experiments.b2_grid)."""
  out = []
  for r in runs:
    if r.repeat_of is not None:
      base = r.repeat_of + suffix_of(ref)
      out.append(dataclasses.replace(r, run_id=f"{base}_s{r.seed}",
                                     repeat_of=base, **fields_of(r, ref)))
      continue
    out += [dataclasses.replace(r, run_id=r.run_id + suffix_of(v),
                                **fields_of(r, v)) for v in values]
  return out


def expand(runs: List[Any], grid: Sequence[float]) -> List[Any]:
  """Each PlannedRun at every multiplier of ``grid`` (seed repeats at the
  reference multiplier only), in plan order; ``runs`` unchanged for the
  default grid."""
  grid = tuple(grid)
  if is_default(grid):
    return list(runs)
  return expand_axis(runs, grid, reference(grid), suffix,
                     lambda r, m: {"lr": r.lr * m, "lr_multiplier": m})


def describe(s, with_grid: bool = True) -> str:
  """One line: how each run's learning rate is set (the rule, and with
  ``with_grid`` the multipliers)."""
  if s.lr_rule == "fixed":
    rule = f"lr = min(lr_constant={s.lr_constant:g}, lr_max={s.lr_max:g})"
  else:
    rule = (f"lr = min({s.lr_constant:g} sqrt(B) / d_model, "
            f"lr_max={s.lr_max:g}) (Marin)")
  grid = multipliers(s)
  if not with_grid:
    return rule
  if is_default(grid):
    return rule + "; not tuned (sweep.lr_multipliers=(1.0,))"
  return (rule + " x m, m in {" + ", ".join(f"{m:g}" for m in grid)
          + "} (sweep.lr_multipliers)")
