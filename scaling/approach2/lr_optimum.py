"""The loss at the learning-rate optimum of one (N, C) cell, interpolated over log lr.

A sweep that trains each (N, C) point at several learning rates
(``sweep.lr_multipliers``) reports, per point, the loss at the optimum of
loss against log(lr), not at the best grid point (Porian et al. 2024,
arXiv:2406.19146, Sec. 3 and App.: per-scale tuning; they interpolate over
the grid with an Akima spline). Two interpolations, one registry:

  parabola  the quadratic through the best grid point and its two
            neighbours in log lr (exact through 3 points); its vertex.
  akima     an Akima spline of log L against log lr over the whole grid,
            minimised exactly (``scaling.approach2.estimators._akima_min``,
            Porian et al.'s interpolation).

Edge rule: when the best grid point is the smallest or largest learning rate
(or the spline's minimum is at an end) the optimum is not bracketed; the
tuned loss is then the best grid loss (no extrapolation) and ``edge`` names
the side ('low' or 'high'): the grid must be widened on that side.

``replicates`` perturbs every per-lr loss by the run-to-run sigma and redoes
the interpolation (Porian et al.'s seed-noise perturbation, applied to the
learning-rate axis): the spread of the tuned loss, which the IsoFLOP
intervals of tuned points must include. Pure numpy (scipy for Akima).
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Dict, Optional, Tuple

import numpy as np

from scaling.approach2.estimators import _akima_min


@dataclasses.dataclass(frozen=True)
class LrOptimum:
  """The interpolated learning-rate optimum of one cell."""
  lr_opt: float          # learning rate at the optimum
  loss_opt: float        # loss there (the cell's tuned loss)
  edge: Optional[str]    # 'low' | 'high' when not bracketed, else None
  method: str            # key of INTERPOLATIONS
  best_grid_lr: float    # the grid point with the lowest loss
  best_grid_loss: float

  def to_dict(self) -> Dict[str, object]:
    return dataclasses.asdict(self)


def _parabola(x: np.ndarray, y: np.ndarray) -> Tuple[np.ndarray, np.ndarray,
                                                     np.ndarray]:
  """Vertex of the parabola through the best point of each row of y (R, n)
  and its neighbours in x (n,), sorted ascending: (x_opt, y_opt, edge code)
  with edge code -1 (low end), +1 (high end) or 0 (bracketed)."""
  R, n = y.shape
  k = np.argmin(y, axis=1)
  x_opt = x[k].astype(np.float64)
  y_opt = y[np.arange(R), k].astype(np.float64)
  code = np.where(k == 0, -1, np.where(k == n - 1, 1, 0))
  rows = np.flatnonzero(code == 0)
  if rows.size:
    kk = k[rows]
    x0, x1, x2 = x[kk - 1], x[kk], x[kk + 1]
    y0, y1, y2 = (y[rows, kk - 1], y[rows, kk], y[rows, kk + 1])
    # Lagrange form of the quadratic through three points (its vertex).
    d = (x0 - x1) * (x0 - x2) * (x1 - x2)
    A = (x2 * (y1 - y0) + x1 * (y0 - y2) + x0 * (y2 - y1)) / d
    B = (x2**2 * (y0 - y1) + x1**2 * (y2 - y0) + x0**2 * (y1 - y2)) / d
    Cc = (x1 * x2 * (x1 - x2) * y0 + x2 * x0 * (x2 - x0) * y1
          + x0 * x1 * (x0 - x1) * y2) / d
    good = A > 0   # the middle point is the strict minimum: always, but ties
    xv = np.where(good, -B / (2 * np.where(good, A, 1.0)), x1)
    yv = np.where(good, Cc - B**2 / (4 * np.where(good, A, 1.0)), y1)
    x_opt[rows], y_opt[rows] = xv, yv
  return x_opt, y_opt, code


def _akima(x: np.ndarray, y: np.ndarray) -> Tuple[np.ndarray, np.ndarray,
                                                  np.ndarray]:
  """Exact minimum of the Akima spline of log y against x, per row."""
  xo, logy, at_end = _akima_min(x, np.log(y).T)
  code = np.where(at_end, np.where(xo <= x[0] + 1e-12, -1, 1), 0)
  # At an end the spline's minimum is the end's grid value: report the grid.
  return xo, np.exp(logy), code


# name -> (x (n,), y (R, n)) -> (x_opt (R,), y_opt (R,), edge code (R,)).
INTERPOLATIONS: Dict[str, Callable] = {"parabola": _parabola, "akima": _akima}
CITATIONS = {
    "parabola": "quadratic through the best grid lr and its two neighbours "
                "in log lr",
    "akima": "Akima spline of log L vs log lr, exact minimum (Porian et al. "
             "2024, App.)",
}


def _prepare(lr, loss):
  lr = np.asarray(lr, np.float64)
  loss = np.asarray(loss, np.float64)
  if lr.ndim != 1 or lr.size < 1 or loss.shape[-1] != lr.size:
    raise ValueError(f"lr ({lr.shape}) and loss ({loss.shape}) do not match")
  if not np.all(np.isfinite(lr) & (lr > 0)):
    raise ValueError("learning rates must be positive and finite")
  order = np.argsort(lr)
  if np.any(np.diff(lr[order]) <= 0):
    raise ValueError("learning rates of one cell must be distinct")
  return np.log(lr[order]), np.atleast_2d(loss)[:, order]


def locate(lr, loss, method: str = "parabola") -> Tuple[np.ndarray, ...]:
  """Vectorised: (lr_opt (R,), loss_opt (R,), edge code (R,)) for losses
  (R, n) or (n,) at learning rates (n,). Fewer than 3 learning rates: the
  best grid point, flagged as an edge unless it is strictly inside."""
  if method not in INTERPOLATIONS:
    raise ValueError(f"unknown lr interpolation {method!r} (valid: "
                     f"{', '.join(INTERPOLATIONS)})")
  x, y = _prepare(lr, loss)
  if x.size < 3:
    x_opt, y_opt, code = _parabola(x, y)
  else:
    x_opt, y_opt, code = INTERPOLATIONS[method](x, y)
  return np.exp(x_opt), y_opt, code


def optimum(lr, loss, method: str = "parabola") -> LrOptimum:
  """The interpolated optimum of one cell (module docstring)."""
  lr_o, loss_o, code = locate(lr, np.asarray(loss, np.float64)[None, :],
                              method)
  lr_a, loss_a = np.asarray(lr, np.float64), np.asarray(loss, np.float64)
  k = int(np.argmin(loss_a))
  edge = {-1: "low", 1: "high", 0: None}[int(code[0])]
  return LrOptimum(lr_opt=float(lr_o[0]), loss_opt=float(loss_o[0]),
                   edge=edge, method=method, best_grid_lr=float(lr_a[k]),
                   best_grid_loss=float(loss_a[k]))


def replicates(lr, loss, sigma: float, R: int, rng: np.random.Generator,
               method: str = "parabola") -> Tuple[np.ndarray, np.ndarray]:
  """(lr_opt (R,), loss_opt (R,)) with every per-lr loss perturbed by
  N(0, sigma^2) in each replicate and the interpolation redone."""
  loss = np.asarray(loss, np.float64)
  y = loss[None, :] + sigma * rng.standard_normal((R, loss.size))
  lr_o, loss_o, _ = locate(lr, y, method)
  return lr_o, loss_o
