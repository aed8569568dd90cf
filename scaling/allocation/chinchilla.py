"""The Chinchilla optimum of L(N, D) = E + A/N^alpha + B/D^beta under C = 6ND.

Every function takes the law's parameters as a dict of arrays ``P`` (scalars
for the point law, (S,) arrays for its bootstrap replicates) and broadcasts.
"""
from __future__ import annotations

from typing import Dict

import numpy as np

from scaling.approach3 import parametric
from scaling.allocation import laws as laws_lib


def point(law) -> Dict[str, np.ndarray]:
  """The law's parameters as 0-d arrays."""
  d = {k: np.float64(getattr(law, k)) for k in laws_lib.PARAMS}
  for k in ("R_N_star", "R_D_star"):
    if getattr(law, k, None) is not None:
      d[k] = np.float64(getattr(law, k))
  return d


def replicates(law):
  """The law's bootstrap draws as (S,) arrays (plus its R*), or None."""
  if law.replicates is None:
    return None
  d = {k: np.asarray(law.replicates[k], np.float64) for k in laws_lib.PARAMS}
  for k in ("R_N_star", "R_D_star"):
    if getattr(law, k, None) is not None:
      d[k] = np.float64(getattr(law, k))
  return d


def loss(P, N, D):
  """L(N, D) = E + A/N^alpha + B/D^beta (Hoffmann et al. 2022, Eq. 2)."""
  return parametric.predict_loss(P, N, D)


def optimum(P, C) -> Dict[str, np.ndarray]:
  """N*, D*, L* at C = 6ND (Hoffmann et al. 2022, Eq. 4, closed form)."""
  C = np.asarray(C, np.float64)
  f = parametric.frontier(P["A"], P["B"], P["alpha"], P["beta"], C)
  N, D = f["N_opt"], f["D_opt"]
  return {"N": N, "D": D, "L": loss(P, N, D), "C": 6.0 * N * D}


def at_target_loss(P, L) -> Dict[str, np.ndarray]:
  """The Chinchilla-optimal N, D reaching loss L (least 6ND for L).

  On the Eq. 4 frontier alpha A N^-alpha = beta B D^-beta (the first-order
  condition of min L s.t. 6ND = C), so L - E = A N^-alpha (1 + alpha/beta):
  N = (A (alpha + beta) / (beta (L - E)))^(1/alpha). NaN where L <= E.
  """
  L = np.asarray(L, np.float64)
  with np.errstate(invalid="ignore", divide="ignore"):
    gap = np.where(L > P["E"], L - P["E"], np.nan)
    N = (P["A"] * (P["alpha"] + P["beta"]) / (P["beta"] * gap))**(
        1.0 / P["alpha"])
    D = d_train(P, N, L)
  return {"N": N, "D": D, "L": np.broadcast_to(L, np.shape(N)),
          "C": 6.0 * N * D}


def d_train(P, N, L):
  """Tokens D with L(N, D) = L: (B / (L - E - A N^-alpha))^(1/beta); NaN when
  N alone cannot reach L."""
  with np.errstate(invalid="ignore", divide="ignore"):
    g = L - P["E"] - P["A"] * np.asarray(N, np.float64)**(-P["alpha"])
    return np.where(g > 0, (P["B"] / np.where(g > 0, g, 1.0))**(
        1.0 / P["beta"]), np.nan)
