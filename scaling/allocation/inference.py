"""Inference-aware allocation (Sardana et al. 2023, 'Beyond Chinchilla-Optimal').

Minimise the lifetime cost 6 N D_train + 2 N D_inf (training at 6 FLOPs per
parameter and token, inference at 2) subject to L(N, D_train) = L_target
under L = E + A/N^alpha + B/D^beta (Sardana et al. 2023, Sec. 2, Eq. 4).
With D_train(N) = (B / (L - E - A N^-alpha))^(1/beta):

  d cost / dN = 6 D_train (1 - alpha A N^-alpha / (beta g)) + 2 D_inf,
  g = L - E - A N^-alpha,

which is 2 D_inf at the Chinchilla N(L) (where alpha A N^-alpha = beta B
D^-beta) and tends to -inf as N falls to (A / (L - E))^(1/alpha): the
optimum is the root of that derivative below the Chinchilla N, found by
bisection. With D_inf = 0 the root is the Chinchilla N itself, returned in
closed form (``chinchilla.at_target_loss``), so the frontier is reproduced
exactly; more inference tokens move the root down (never up).
"""
from __future__ import annotations

from typing import Dict

import numpy as np

from scaling.allocation import chinchilla
from scaling.allocation import numerics


def total_cost(N, D_train, D_inf):
  """6 N D_train + 2 N D_inf FLOPs (Sardana et al. 2023, Sec. 2)."""
  return 6.0 * N * D_train + 2.0 * N * D_inf


def _dcost(P, L, D_inf):
  def h(u):
    N = np.exp(u)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
      x = P["A"] * N**(-P["alpha"])
      g = L - P["E"] - x
      D = (P["B"] / g)**(1.0 / P["beta"])
      out = 6.0 * D * (1.0 - P["alpha"] * x / (P["beta"] * g)) + 2.0 * D_inf
    return np.where(g > 0, np.where(np.isnan(out), -np.inf, out), -np.inf)
  return h


def optimum(P, L_target, D_inf) -> Dict[str, np.ndarray]:
  """The least-total-cost (N, D_train) reaching L_target with D_inf
  inference tokens, and the Chinchilla choice at the same loss."""
  L, D_inf = np.float64(L_target), np.float64(D_inf)
  chin = chinchilla.at_target_loss(P, L)
  if D_inf == 0:
    N = chin["N"]
  else:
    with np.errstate(invalid="ignore", divide="ignore"):
      u_min = np.log((P["A"] / (L - P["E"]))**(1.0 / P["alpha"]))
    N = np.exp(numerics.bisect_u(_dcost(P, L, D_inf), u_min,
                                 np.log(chin["N"])))
  D = chinchilla.d_train(P, N, L)
  cost = total_cost(N, D, D_inf)
  cost_chin = total_cost(chin["N"], chin["D"], D_inf)
  return {"N": N, "D": D, "L": np.broadcast_to(L, np.shape(N)),
          "C_train": 6.0 * N * D, "C_inference": 2.0 * N * D_inf,
          "C_total": cost, "N_chinchilla": chin["N"],
          "D_chinchilla": chin["D"], "C_total_chinchilla": cost_chin,
          "saving": 1.0 - cost / cost_chin, "tokens_per_param": D / N}
