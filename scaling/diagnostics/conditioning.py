"""Conditioning of Approach 3: the 5-parameter problem vs variable projection.

Open-Athena's scaling-law-analysis (experiment 8) explain VPNLS's precision
by the Hessians the two solvers see: that of the 5-parameter least-squares
objective in (E, A, B, alpha, beta) (condition number ~3.5e11 on their
asymmetric synthetic sweep) against that of the profiled objective over
(alpha, beta) alone (~11). :func:`conditioning` computes both, exactly (jax
Hessians in float64), plus the 5-parameter one in grid_lbfgs's own
parametrisation (log A, log B, log E, alpha, beta).
"""
from __future__ import annotations

from typing import Any, Dict

import jax
import jax.numpy as jnp
import numpy as np

from scaling.numerics import lbfgs
from scaling.approach3 import parametric


# Losses whose Hessians :func:`conditioning` compares: least squares in
# linear space (Open-Athena's scaling-law-analysis, experiment 8) and in log
# space (the quadratic branch of Hoffmann 2022's Eq. 10 Huber term).
CONDITIONING_LOSSES = {
    "linear_lsq": lambda Lhat, L: 0.5 * (Lhat - L)**2,
    "log_lsq": lambda Lhat, L: 0.5 * (jnp.log(Lhat) - jnp.log(L))**2,
}


def _kappa(H) -> float:
  """lambda_max / lambda_min of a symmetric matrix (inf unless PD)."""
  ev = np.linalg.eigvalsh(0.5 * (H + H.T))
  return float(ev[-1] / ev[0]) if ev[0] > 0 else float("inf")


def conditioning(N, D, loss, params: Dict[str, float],
                 objective: str = "log_lsq") -> Dict[str, Any]:
  """Condition numbers of the 5- and 2-parameter problems at ``params``.

  kappa_5: Hessian of sum_i loss(L_hat_i, L_i) in (E, A, B, alpha, beta);
  kappa_5_log: the same in grid_lbfgs's (log A, log B, log E, alpha, beta);
  kappa_2: the profiled (alpha, beta) Hessian, the Schur complement
  H_ee - H_et H_tt^-1 H_te of (E, A, B). kappa_2 is the Hessian VPNLS's
  outer search sees when params minimise the objective (then grad = 0
  and the Schur complement is the profile's Hessian exactly).
  """
  if objective not in CONDITIONING_LOSSES:
    raise parametric.ParametricFitError(
        f"objective must be one of {', '.join(CONDITIONING_LOSSES)}, got "
        f"{objective!r}")
  ell = CONDITIONING_LOSSES[objective]
  logN, logD, logL, _, _ = parametric.make_data(N, D, loss)
  p = np.array([params[k] for k in ("E", "A", "B", "alpha", "beta")])
  with lbfgs.x64():
    lN, lD, L = (jnp.asarray(a) for a in (logN, logD, np.exp(logL)))

    def f_nat(q):  # Hoffmann 2022, Eq. 2.
      Lhat = q[0] + q[1] * jnp.exp(-q[3] * lN) + q[2] * jnp.exp(-q[4] * lD)
      return jnp.sum(ell(Lhat, L))

    grad_hess = jax.jit(lambda q: (jax.grad(f_nat)(q), jax.hessian(f_nat)(q)))
    grad, H = (np.asarray(v) for v in grad_hess(jnp.asarray(p)))
  # In (log E, log A, log B, alpha, beta) (chain rule, s_j = dq_j/dt_j):
  # d2f/dt_i dt_j = s_i s_j H_ij + [i == j, log coordinate] s_i grad_i;
  # grid_lbfgs orders them (log A, log B, log E, ...): a permutation, same
  # eigenvalues.
  scale = np.concatenate([p[:3], np.ones(2)])
  H_log = scale[:, None] * H * scale[None, :] + np.diag(
      np.concatenate([p[:3] * grad[:3], np.zeros(2)]))
  S = H[3:, 3:] - H[3:, :3] @ np.linalg.solve(H[:3, :3], H[:3, 3:])
  return dict(objective=objective, kappa_5=_kappa(H),
              kappa_5_log=_kappa(H_log), kappa_2=_kappa(S),
              eig_5=np.linalg.eigvalsh(H).tolist(),
              eig_2=np.linalg.eigvalsh(0.5 * (S + S.T)).tolist(),
              grad_max=float(np.max(np.abs(grad))))
