"""Compute-optimal N*, D* of L(N, D) = E + A/N^alpha + B/D^beta under F(N) D = C.

Hoffmann et al. 2022's Eq. 4 minimises L subject to 6ND = C in closed form.
Under another FLOP convention the constraint is F(N) D = C with F the
training FLOPs per token (``scaling.numerics.token_flops``); then D = C / F(N) and

  g(u) = A e^(-alpha u) + B (F(e^u) / C)^beta,   u = ln N,

is minimised numerically. g is minimised over u by a grid of
``_GRID`` points over +-3 around the Eq. 4 solution of the locally
6N-equivalent problem (F/N taken there), which finds the global minimum
even if an interpolated F makes g non-unimodal, then a golden-section
search within one grid step either side (60 iterations: the bracket shrinks
by 0.618^60 ~ 3e-13). Vectorised over budgets and parameter samples
(broadcasting like NumPy).
"""
from __future__ import annotations

from typing import Dict

import numpy as np

_GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0
_ITERS = 60
_GRID = 121
_HALF_SPAN = 3.0      # ln N either side of the starting point


def eq4(A, B, alpha, beta, C, k: float = 6.0) -> Dict[str, np.ndarray]:
  """N*, D* for F(N) = k N (Hoffmann et al. 2022, Eq. 4, with 6 -> k)."""
  A, B, alpha, beta, C = (np.asarray(v, np.float64) for v in (A, B, alpha, beta, C))
  # Hoffmann 2022 Eq. 4: G = (alpha A / (beta B))^(1/(alpha+beta)),
  # N* = G (C/6)^a, D* = G^-1 (C/6)^b, a = beta/(alpha+beta), b = 1 - a.
  G = (alpha * A / (beta * B))**(1.0 / (alpha + beta))
  a = beta / (alpha + beta)
  x = C / k
  return {"N_opt": G * x**a, "D_opt": x**(1.0 - a) / G}


def constrained(A, B, alpha, beta, C, F) -> Dict[str, np.ndarray]:
  """N*, D* minimising L subject to F(N) D = C (see module docstring).

  Args:
    A, B, alpha, beta: law parameters (arrays broadcast together with C).
    C: training FLOPs under F's convention.
    F: ``scaling.numerics.token_flops.TokenFlops`` (or any callable F(N)); when it
      is exactly 6N the closed form Eq. 4 is returned.
  """
  if F is None or getattr(F, "is_six_n", False):
    return eq4(A, B, alpha, beta, C)
  A, B, alpha, beta, C = np.broadcast_arrays(
      *(np.asarray(v, np.float64) for v in (A, B, alpha, beta, C)))

  def g(u):
    N = np.exp(u)
    return A * np.exp(-alpha * u) + B * (F(N) / C)**beta

  # Start: Eq. 4 with the local F/N ratio at the 6N solution.
  u0 = np.log(eq4(A, B, alpha, beta, C)["N_opt"])
  k0 = F(np.exp(u0)) / np.exp(u0)
  u0 = np.log(eq4(A, B, alpha, beta, C, k0)["N_opt"])
  steps = np.linspace(-_HALF_SPAN, _HALF_SPAN, _GRID)
  u_grid = u0[..., None] + steps                       # (..., G)
  expand = lambda v: np.asarray(v)[..., None]
  g_grid = (expand(A) * np.exp(-expand(alpha) * u_grid) +
            expand(B) * (F(np.exp(u_grid)) / expand(C))**expand(beta))
  best = np.take_along_axis(u_grid, np.argmin(g_grid, -1)[..., None], -1)[..., 0]
  h = steps[1] - steps[0]
  lo, hi = best - h, best + h
  x1 = hi - _GOLDEN * (hi - lo)
  x2 = lo + _GOLDEN * (hi - lo)
  f1, f2 = g(x1), g(x2)
  for _ in range(_ITERS):
    left = f1 < f2             # the minimum lies in [lo, x2]
    hi = np.where(left, x2, hi)
    lo = np.where(left, lo, x1)
    new = np.where(left, hi - _GOLDEN * (hi - lo), lo + _GOLDEN * (hi - lo))
    f_new = g(new)
    x1, x2 = np.where(left, new, x2), np.where(left, x1, new)
    f1, f2 = np.where(left, f_new, f2), np.where(left, f1, f_new)
  N = np.exp(0.5 * (lo + hi))
  return {"N_opt": N, "D_opt": C / F(N)}   # F(N*) D* = C exactly.
