"""Vectorised 1-D minimisation and root finding in u = ln N.

Both work elementwise over arrays of problems (a point law and its bootstrap
replicates at once), like ``scaling.approach3.optimum.constrained``: a grid brackets
the minimum (or the sign change), then golden-section search (60
iterations: the bracket shrinks by 0.618^60 ~ 3e-13) or bisection (200
halvings) refines it.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

_GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0


def minimize_u(g: Callable[[np.ndarray], np.ndarray], u0, half_span: float,
               n_grid: int = 161, iters: int = 60) -> np.ndarray:
  """argmin_u g(u) over [u0 - half_span, u0 + half_span], elementwise.

  g maps u of shape (..., K) to values of the same shape (broadcasting over
  the problems' leading axes); u0 has the problems' shape.
  """
  u0 = np.asarray(u0, np.float64)
  steps = np.linspace(-half_span, half_span, n_grid)
  grid = u0[..., None] + steps
  vals = g(grid)
  vals = np.where(np.isfinite(vals), vals, np.inf)
  best = np.take_along_axis(grid, np.argmin(vals, -1)[..., None], -1)
  h = steps[1] - steps[0]
  lo, hi = best - h, best + h
  x1, x2 = hi - _GOLDEN * (hi - lo), lo + _GOLDEN * (hi - lo)
  f1, f2 = g(x1), g(x2)
  for _ in range(iters):
    left = f1 < f2
    hi = np.where(left, x2, hi)
    lo = np.where(left, lo, x1)
    new = np.where(left, hi - _GOLDEN * (hi - lo), lo + _GOLDEN * (hi - lo))
    f_new = g(new)
    x1, x2 = np.where(left, new, x2), np.where(left, x1, new)
    f1, f2 = np.where(left, f_new, f2), np.where(left, f1, f_new)
  return (0.5 * (lo + hi))[..., 0]


def bisect_u(h: Callable[[np.ndarray], np.ndarray], lo, hi,
             iters: int = 200) -> np.ndarray:
  """The root of h in [lo, hi] with h(lo) < 0 <= h(hi), elementwise."""
  lo, hi = np.broadcast_arrays(np.asarray(lo, np.float64),
                               np.asarray(hi, np.float64))
  lo, hi = lo.copy(), hi.copy()
  for _ in range(iters):
    mid = 0.5 * (lo + hi)
    neg = h(mid) < 0
    lo = np.where(neg, mid, lo)
    hi = np.where(neg, hi, mid)
  return 0.5 * (lo + hi)
