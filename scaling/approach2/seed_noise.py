"""Run-to-run (seed) noise of the final loss, for the seed-noise bootstrap.

Order of preference, each named in every output that uses it:
  1. ``stated``: a sigma given by the caller (``seed_noise_std``);
  2. ``measured``: the pooled standard deviation of seed repeats, i.e. runs
     of one budget with identical (N, D) (the shared convention of
     ``sweep.seed_repeats``): sigma^2 = sum_g sum_i (L_gi - mean_g)^2 /
     sum_g (n_g - 1);
  3. ``residual``: without repeats, the pooled residual std of per-budget
     parabolas, sqrt(sum r^2 / sum (n_b - 3)). It contains the parabolas'
     misfit as well as seed noise, so it is an upper bound on seed noise,
     and is labelled so.
Rows identical in (budget, N, D, loss) are suspicious duplicates (the same
run stored twice, not a repeat): they are counted once, with a warning.
"""
from __future__ import annotations

import dataclasses
import warnings
from typing import List, Optional, Sequence

import numpy as np

from scaling.io.loaders import ScalingDataError


@dataclasses.dataclass(frozen=True)
class NoiseLevel:
  """A loss-noise sigma (nats) and how it was obtained."""
  sigma: float
  source: str          # 'stated' | 'measured' | 'residual'
  n_groups: int = 0    # seed-repeat groups (measured)
  n_runs: int = 0      # runs in those groups (measured)
  dof: int = 0         # degrees of freedom of the estimate

  def describe(self) -> str:
    if self.source == "measured":
      return (f"measured from {self.n_groups} seed-repeat group(s), "
              f"{self.n_runs} runs")
    if self.source == "stated":
      return "stated"
    return ("residual-based: no seed repeats; pooled parabola residuals, "
            "includes misfit")

  def to_dict(self):
    return dataclasses.asdict(self) | {"description": self.describe()}


def repeat_groups(C_b, N, D, loss) -> List[np.ndarray]:
  """Index arrays of seed-repeat groups (>= 2 distinct runs at one budget, N, D)."""
  key = np.stack([np.asarray(C_b, np.float64), np.asarray(N, np.float64),
                  np.asarray(D, np.float64)], 1)
  _, inv = np.unique(key, axis=0, return_inverse=True)
  inv = inv.ravel()
  groups, n_dup = [], 0
  for g in np.unique(inv):
    idx = np.flatnonzero(inv == g)
    _, first = np.unique(np.asarray(loss)[idx], return_index=True)
    n_dup += idx.size - first.size
    idx = idx[np.sort(first)]
    if idx.size >= 2:
      groups.append(idx)
  if n_dup:
    warnings.warn(f"seed noise: {n_dup} run(s) identical in (budget, N, D, "
                  "loss) to another run (suspicious duplicates, not seed "
                  "repeats); each counted once.")
  return groups


def pooled_std(groups: Sequence[np.ndarray], loss) -> Optional[NoiseLevel]:
  """Pooled within-group std of ``loss`` over ``groups`` (None if no group)."""
  if not groups:
    return None
  loss = np.asarray(loss, np.float64)
  ss = sum(float(((loss[g] - loss[g].mean())**2).sum()) for g in groups)
  dof = sum(g.size - 1 for g in groups)
  return NoiseLevel(float(np.sqrt(ss / dof)), "measured", len(groups),
                    int(sum(g.size for g in groups)), int(dof))


def resolve(stated: Optional[float], measured: Optional[NoiseLevel],
            residual_ss: float, residual_dof: int) -> NoiseLevel:
  """The sigma to use, by the order of preference in the module docstring."""
  if stated is not None:
    if not (np.isfinite(stated) and stated > 0):
      raise ScalingDataError(f"seed_noise_std must be positive, got {stated}.")
    return NoiseLevel(float(stated), "stated")
  if measured is not None:
    return measured
  if residual_dof <= 0:
    raise ScalingDataError(
        "scheme='seed_noise' found no seed repeats and cannot estimate the "
        "noise from parabola residuals (budgets of exactly 3 sizes); pass "
        "seed_noise_std or add seed repeats (sweep.seed_repeats).")
  return NoiseLevel(float(np.sqrt(residual_ss / residual_dof)), "residual",
                    dof=int(residual_dof))
