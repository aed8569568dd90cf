"""Muennighoff et al. 2023's data-constrained law and its compute optimum.

  L(N, D, U) = E + A / (U_N + U_N R_N* (1 - exp(-R_N / R_N*)))^alpha
                 + B / (U_D + U_D R_D* (1 - exp(-R_D / R_D*)))^beta,

U_D = U unique tokens, R_D = max(D / U - 1, 0) repetitions, U_N = min(N,
N_opt(U)) with N_opt(D) = G (D G)^(beta/alpha) the Chinchilla-optimal N for D
tokens (G = (alpha A / (beta B))^(1/(alpha+beta)), Hoffmann 2022 Eq. 4), and
R_N = max(N / U_N - 1, 0) (Muennighoff et al. 2023, Eq. 5-7; the formula and
its U <= D requirement as in huggingface/datablations README).

The compute optimum at budget C with U unique tokens minimises L(N, C/(6N),
min(U, D)) over N (a run of D < U tokens sees D unique tokens). Where U
exceeds the Chinchilla D* the answer is the Chinchilla optimum itself: the
law is never below Chinchilla's E + A/N^alpha + B/D^beta (each effective
count is at most N, resp. D) and equals it at N* = N_opt(D*).
"""
from __future__ import annotations

from typing import Dict

import numpy as np

from scaling.allocation import chinchilla
from scaling.allocation import numerics
from scaling.allocation.errors import AllocationError


def n_opt_for_tokens(P, D):
  """Chinchilla-optimal N for D tokens: G (D G)^(beta/alpha) (Eq. 4 inverted;
  datablations' D_to_N)."""
  G = ((P["alpha"] * P["A"]) / (P["beta"] * P["B"]))**(
      1.0 / (P["alpha"] + P["beta"]))
  return (D * G)**(P["beta"] / P["alpha"]) * G


def _loss(P, N, D, U):
  """The law (module docstring) without input checks; U <= D assumed."""
  rn, rd = P["R_N_star"], P["R_D_star"]
  R_D = np.maximum(D / U - 1.0, 0.0)
  U_N = np.minimum(N, n_opt_for_tokens(P, U))
  R_N = np.maximum(N / U_N - 1.0, 0.0)
  return (P["E"]
          + P["A"] / (U_N + U_N * rn * (1.0 - np.exp(-1.0 * R_N / rn)))**P["alpha"]
          + P["B"] / (U + U * rd * (1.0 - np.exp(-1.0 * R_D / rd)))**P["beta"])


def loss(P, N, D, U=None):
  """L(N, D, U) (Muennighoff et al. 2023); U=None: fresh data (U = D).

  Raises AllocationError when U > D: D training tokens contain at most D
  unique ones (datablations asserts U <= D).
  """
  N, D = np.asarray(N, np.float64), np.asarray(D, np.float64)
  U = D if U is None else np.asarray(U, np.float64)
  if np.any(U > D):
    raise AllocationError(
        f"unique_tokens U={float(np.max(U)):.4g} > D={float(np.min(D)):.4g}: "
        "a run of D tokens sees at most D unique tokens; give U <= D (or "
        "leave --unique_tokens out for fresh data)")
  return _loss(P, N, D, U)


def optimum(P, C, U, *, numeric_only: bool = False) -> Dict[str, np.ndarray]:
  """N, D, L, epochs of the least-loss allocation of C = 6ND with U unique
  tokens, and the loss given up against unlimited data.

  numeric_only: skip the exact Chinchilla answer where U >= D* (tests use it
  to check the numeric search against Eq. 4).
  """
  C, U = np.float64(C), np.float64(U)
  chin = chinchilla.optimum(P, C)
  Pe = {k: np.asarray(v)[..., None] for k, v in P.items()}

  def g(u):
    N = np.exp(u)
    D = C / (6.0 * N)
    return _loss(Pe, N, D, np.minimum(U, D))

  with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
    u = numerics.minimize_u(g, np.log(chin["N"]), half_span=8.0)
  N = np.exp(u)
  if not numeric_only:
    N = np.where(chin["D"] <= U, chin["N"], N)
  D = C / (6.0 * N)
  L = _loss(P, N, D, np.minimum(U, D))
  return {"N": N, "D": D, "L": L, "epochs": D / U, "C": 6.0 * N * D,
          "L_unlimited": chin["L"], "N_unlimited": chin["N"],
          "D_unlimited": chin["D"], "loss_given_up": L - chin["L"]}
