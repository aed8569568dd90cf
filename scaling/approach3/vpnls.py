"""Approach 3 by variable projection (VPNLS): search (alpha, beta) only.

For fixed exponents the Chinchilla law L = E + A N^-alpha + B D^-beta
(Hoffmann et al. 2022, Eq. 2) is linear in theta = (E, A, B) >= 0, so the
fit separates (Golub & Pereyra 1973, variable projection):

  f(alpha, beta) = min_{theta >= 0} h(theta; alpha, beta),
  h = sum_i w_i Huber_delta(log(x_i . theta) - log L_i),
  x_i = (1, N_i^-alpha, D_i^-beta).

**Objective.** h is the *same* objective as ``method='grid_lbfgs'``
(Hoffmann 2022, Eq. 10: Huber, delta = 1e-3, on the log-loss residual), so
both methods estimate the same thing; only the solver differs. Because
log(x . theta) is not linear in theta, the inner problem is solved exactly
(to a KKT point of h) by Gauss-Newton iteratively reweighted NNLS:
linearising log u ~ log u0 + (u - u0)/u0 at u0 = x . theta0 and majorising
the Huber term by its IRLS quadratic (weight min(1, delta/|r|), Huber 1964)
gives a weighted non-negative least-squares problem in theta,

  min_{theta >= 0} sum_i w_i min(1, delta/|r_i|) / u0_i^2
                   (x_i . theta - u0_i (1 - r_i))^2,

whose fixed point satisfies sum_i w_i psi_delta(r_i) x_i / u_i = 0 on the
free coordinates (the KKT conditions of h; psi = Huber'). Each step solves
that NNLS exactly (all 7 supports, the best feasible kept), tries several
step lengths along it and semismooth Newton steps, and keeps the best if
it lowers h (:func:`solve_linear`); h never increases. The first iterate
is the 1/L^2-weighted linear least-squares solution (the first-order
log-residual approximation). The outer gradient is exact by the envelope
theorem (Danskin): theta is held fixed when h is differentiated in (alpha,
beta). :func:`kkt_residual` measures how exactly an inner solve ended.

**Search.** A coarse (alpha, beta) grid (VP_GRID, 24 x 24), then L-BFGS
(:mod:`scaling.numerics.lbfgs`) from its best VP_REFINE local minima; the lowest
objective wins. Bootstrap refits start from the point estimate's (alpha,
beta), all resamples in one vmapped batch.

**Conditioning.** :func:`scaling.diagnostics.conditioning.conditioning` compares the
Hessian of the 5-parameter problem with that of the profiled 2-parameter
one (Open-Athena's scaling-law-analysis, experiment 8).
"""
from __future__ import annotations

import dataclasses
import itertools
from typing import Dict, Optional

import jax
import jax.numpy as jnp
import numpy as np

from scaling.numerics import huber as huber_lib
from scaling.numerics import lbfgs
from scaling.approach3 import law as parametric

# Coarse grid over the exponents (Hoffmann 2022 App. D.2 searches alpha,
# beta in [0, 2] in steps of 0.5); 0 is left out (the N or D term would be
# a constant). 24 x 24 cells (steps of 0.085): on Epoch's data, the
# quickstart sweep and a synthetic one, grids of 16, 24 and 40 values all
# found the same minimum (alpha within 1e-7).
VP_GRID = np.linspace(0.05, 2.0, 24)
VP_REFINE = 4        # grid cells refined by L-BFGS (best distinct minima).
# Inner steps (IRLS-NNLS / Newton) stop once one lowers h by <= INNER_FTOL
# relative, or after INNER_ITERS. Epoch's resamples stop within ~5 steps;
# on 16-run sweeps about 1% of resamples need 40-1000 (measured: at 40
# steps 1.1% of 1000 quickstart resamples were > 1e-10 above the minimum,
# at 200 0.2%, at 1000 none).
INNER_ITERS = 1000
INNER_FTOL = 1e-15
# Steps tried along each IRLS-NNLS direction: IRLS alone converges slowly
# (sublinearly) when few residuals sit in the Huber core, as on 16-run
# sweeps, and moves along nearly the same direction each step, so longer
# (extrapolated) steps are tried too.
IRLS_STEPS = (0.5, 1.0, 3.0, 9.0, 27.0)
VP_STOP = lbfgs.StopRule(max_iter=400, gtol=1e-11, ftol=1e-14, pred_tol=1e-14,
                          unit_restart=True)
VP_CHUNK = 5
# Lanes per jitted L-BFGS call: each inner solve is costly and a vmapped
# line search costs a block its slowest lane (1024 bootstrap refits of
# Epoch's data, process CPU seconds on the loaded shared machine: 37 in
# blocks of 64, 17 of 16, 10.5 of 8; smaller blocks cost more host round
# trips).
VP_BLOCK = 8
OBJECTIVE_NAME = ("sum_i Huber_delta(log L_hat_i - log L_i), delta=1e-3 "
                  "(Hoffmann 2022 Eq. 10; the grid_lbfgs objective), "
                  "(E, A, B) >= 0 by Gauss-Newton IRLS-NNLS, (alpha, beta) "
                  "by grid + L-BFGS")

# Supports of the 3-variable NNLS: every non-empty subset of (E, A, B).
_SUPPORTS = np.array([[i in s for i in range(3)] for k in (1, 2, 3)
                      for s in itertools.combinations(range(3), k)],
                     dtype=np.float64)


def _design(eta, logN, logD):
  """x_i = (1, N_i^-alpha, D_i^-beta) as an (n, 3) matrix."""
  return jnp.stack([jnp.ones_like(logN), jnp.exp(-eta[0] * logN),
                    jnp.exp(-eta[1] * logD)], axis=1)


def _solve3(M_kx3x3, v_kx3):
  """Batched 3x3 solves by the adjugate (Cramer's rule): elementwise ops,
  cheap to compile and run; the matrices here are column-scaled."""
  a, b, c = M_kx3x3[..., 0, :], M_kx3x3[..., 1, :], M_kx3x3[..., 2, :]
  bc, ca, ab = jnp.cross(b, c), jnp.cross(c, a), jnp.cross(a, b)
  det = jnp.sum(a * bc, axis=-1)
  # inv(M) = [b x c, c x a, a x b]^T / det (rows of M are a, b, c).
  return (bc * v_kx3[..., :1] + ca * v_kx3[..., 1:2] + ab * v_kx3[..., 2:]
          ) / det[..., None]


def _nnls3(X_nx3, t_n, c_n):
  """argmin_{theta >= 0} sum_i c_i (X_i . theta - t_i)^2, exactly.

  Solves the normal equations on each of the 7 supports (columns scaled to
  unit weighted norm) and keeps the feasible solution of least residual.
  """
  s = jnp.sqrt(jnp.sum(c_n[:, None] * X_nx3 * X_nx3, axis=0))
  Xs = X_nx3 / s
  M = (Xs * c_n[:, None]).T @ Xs
  v = (Xs * c_n[:, None]).T @ t_n
  m = jnp.asarray(_SUPPORTS)                       # (7, 3)
  Mk = M[None] * m[:, :, None] * m[:, None, :] + jax.vmap(jnp.diag)(1.0 - m)
  th = _solve3(Mk, v[None] * m) * m
  q = jnp.einsum("ki,ij,kj->k", th, M, th) - 2.0 * th @ v
  ok = jnp.all(th >= 0.0, axis=1) & jnp.isfinite(q)
  k = jnp.argmin(jnp.where(ok, q, jnp.inf))
  return th[k] / s, jnp.any(ok)


def _h(theta, X_nx3, w, logL, delta):
  """sum_i w_i Huber_delta(log(x_i . theta) - log L_i) (Hoffmann Eq. 10)."""
  u = X_nx3 @ theta
  r = jnp.log(jnp.where(u > 0, u, jnp.nan)) - logL
  return jnp.sum(w * huber_lib.huber(r, delta))


def _newton(theta, X_nx3, r, w, delta, core):
  """Semismooth Newton step on h over the free coordinates (theta > 0).

  With the Huber zones fixed (``core``: residuals treated as in the
  quadratic zone), grad h = sum_i w_i psi(r_i) x_i / u_i and its Jacobian
  is sum_i w_i c_i x_i x_i^T / u_i^2, c_i = 1 - r_i in the core and
  -delta sign(r_i) outside.
  """
  u = X_nx3 @ theta
  psi = jnp.where(core, r, delta * jnp.sign(r))
  xu = X_nx3 / u[:, None]
  grad = xu.T @ (w * psi)
  c = w * jnp.where(core, 1.0 - r, -psi)
  J = (xu * c[:, None]).T @ xu
  free = (theta > 0).astype(theta.dtype)
  J = J * free[:, None] * free[None, :] + jnp.diag(1.0 - free)
  s = jnp.sqrt(jnp.abs(jnp.diag(J)))
  step = _solve3(J / (s[:, None] * s[None, :]), grad * free / s) / s
  return jnp.maximum(theta - step, 0.0)


def _newton_candidates(theta, X_nx3, r, w, delta):
  """Newton steps for two guesses of the Huber core at the solution.

  (1) the current zones |r| <= delta; (2) the k smallest |r| among the
  weighted runs, k = free coordinates: with delta far below the typical
  residual the minimiser interpolates about k runs (as an L1 fit does),
  which IRLS approaches only slowly.
  """
  abs_r = jnp.where(w > 0, jnp.abs(r), jnp.inf)
  k = jnp.sum(theta > 0)
  kth = jnp.sort(abs_r)[jnp.maximum(k - 1, 0)]
  return jnp.stack([_newton(theta, X_nx3, r, w, delta, abs_r <= delta),
                    _newton(theta, X_nx3, r, w, delta, abs_r <= kth)])


def solve_linear(eta, w, data):
  """theta = (E, A, B) >= 0 minimising h at eta = (alpha, beta).

  data = (logN, logD, logL, delta, mean_flag) as parametric.make_data.
  Each step takes the best candidate if it lowers h: points along the
  IRLS-NNLS direction (IRLS_STEPS times the step to the weighted NNLS
  solution, clipped at 0; the NNLS handles the bounds), and semismooth
  Newton steps (quadratic convergence once the Huber zones settle, see
  _newton_candidates). It
  stops when a step gains <= INNER_FTOL relative, or after INNER_ITERS.
  """
  logN, logD, logL, delta, _ = data
  X = _design(eta, logN, logD)
  L = jnp.exp(logL)
  h = lambda th: _h(th, X, w, logL, delta)
  # First-order log residual: log(u/L) ~ (u - L)/L, i.e. 1/L^2-weighted
  # linear least squares.
  theta0, _ = _nnls3(X, L, w / (L * L))
  steps = jnp.asarray(IRLS_STEPS)

  def body(carry):
    theta, f, k, _ = carry
    u = X @ theta
    r = jnp.log(u) - logL
    omega = jnp.minimum(1.0, delta / jnp.maximum(jnp.abs(r), 1e-300))
    irls, _ = _nnls3(X, u * (1.0 - r), w * omega / (u * u))
    ext = jnp.maximum(theta[None] + steps[:, None] * (irls - theta)[None], 0.)
    cand = jnp.concatenate([ext, _newton_candidates(theta, X, r, w, delta)])
    fc = jax.vmap(h)(cand)
    fc = jnp.where(jnp.isfinite(fc), fc, jnp.inf)
    j = jnp.argmin(fc)
    better = fc[j] < f
    moving = better & (f - fc[j] > INNER_FTOL * fc[j])
    return (jnp.where(better, cand[j], theta), jnp.where(better, fc[j], f),
            k + 1, moving)

  cond = lambda c: c[3] & (c[2] < INNER_ITERS)
  theta, _, _, _ = jax.lax.while_loop(
      cond, body, (theta0, h(theta0), 0, True))
  return theta


def kkt_residual(theta, eta, w, data):
  """Largest violation of the inner KKT conditions, scale free.

  theta_j dh/dtheta_j = dh/dlog theta_j on free coordinates, and
  max(0, -dh/dtheta_j) * scale on bound ones; 0 at an exact solution.
  """
  logN, logD, logL, delta, _ = data
  X = _design(eta, logN, logD)
  g = jax.grad(_h)(theta, X, w, logL, delta)
  scale = jnp.max(jnp.abs(X * theta[None]), axis=0)  # size of each term.
  free = theta > 0
  return jnp.max(jnp.where(free, jnp.abs(g * theta),
                           jnp.maximum(0.0, -g) * scale))


def profile_objective(eta, w, data):
  """f(alpha, beta) = min_theta h; gradient by the envelope theorem.

  With mean_flag = 1 the sum is divided by sum(w) (as
  parametric.huber_objective).
  """
  logN, logD, logL, delta, mean_flag = data
  theta = jax.lax.stop_gradient(solve_linear(eta, w, data))
  total = _h(theta, _design(eta, logN, logD), w, logL, delta)
  return jnp.where(mean_flag > 0, total / jnp.sum(w), total)


@jax.jit
def _solve_batch(eta_Bx2, w_BxM, data):
  return jax.vmap(lambda e, w: solve_linear(e, w, data))(eta_Bx2, w_BxM)


def solve_thetas(eta_Bx2, w_BxM, data) -> np.ndarray:
  """(E, A, B) per lane at its (alpha, beta) and weights, float64.

  Lanes go in blocks of VP_BLOCK (one compiled shape for every call).
  """
  eta = np.asarray(eta_Bx2, np.float64)
  w = np.asarray(w_BxM, np.float64)
  out = np.empty((eta.shape[0], 3))
  with lbfgs.x64():
    d = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), data)
    for i in range(0, eta.shape[0], VP_BLOCK):
      idx = np.arange(i, i + VP_BLOCK) % eta.shape[0]
      th = np.asarray(_solve_batch(jnp.asarray(eta[idx]), jnp.asarray(w[idx]),
                                   d))
      k = min(VP_BLOCK, eta.shape[0] - i)
      out[i:i + k] = th[:k]
  return out


def _grid_starts(f_G, eta_Gx2, k, n):
  """The k best local minima of the coarse n x n grid (8-neighbourhood)."""
  F = np.where(np.isfinite(f_G), f_G, np.inf).reshape(n, n)
  pad = np.pad(F, 1, constant_values=np.inf)
  nb = np.min([pad[1 + di:n + 1 + di, 1 + dj:n + 1 + dj]
               for di in (-1, 0, 1) for dj in (-1, 0, 1)
               if (di, dj) != (0, 0)], axis=0)
  local = np.nonzero(((F <= nb) & np.isfinite(F)).ravel())[0]
  order = local[np.argsort(F.ravel()[local])][:k]
  if order.size == 0:
    raise parametric.ParametricFitError(
        "vpnls: the objective is not finite anywhere on the (alpha, beta) "
        "grid; check that losses are positive")
  return eta_Gx2[order]


def fit_vpnls(N, D, loss, *, delta: float = huber_lib.HUBER_DELTA,
              objective: str = "sum", grid: Optional[np.ndarray] = None,
              n_refine: int = VP_REFINE) -> parametric.ParametricFit:
  """Fits Approach 3 by variable projection (see the module docstring).

  Args:
    N, D, loss: 1-D arrays of parameters, tokens and final loss (nats).
    delta: Huber threshold on the log-loss residual.
    objective: 'sum' or 'mean' of the Huber terms (same minimiser).
    grid: optional 1-D array of exponent values; the coarse grid is its
      outer product with itself (default VP_GRID, 24 x 24).
    n_refine: grid minima refined by L-BFGS.

  Returns:
    ParametricFit with method='vpnls'; theta = (log A, log B, log E,
    alpha, beta) (log 0 = -inf where a coefficient sits on its bound).
  """
  data = parametric.make_data(N, D, loss, delta, objective)
  n = data[0].shape[0]
  g = VP_GRID if grid is None else np.asarray(grid, np.float64).ravel()
  if n_refine < 1:
    raise parametric.ParametricFitError(f"n_refine must be >= 1, got "
                                        f"{n_refine}")
  if g.size < 1 or np.any(~np.isfinite(g)) or np.any(g <= 0):
    raise parametric.ParametricFitError(
        f"vpnls grid must be positive exponents, got {g}")
  eta_G = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
  # Same objective and lane blocks as the refinement: one compilation.
  f_G = lbfgs.evaluate(profile_objective, eta_G, np.ones((eta_G.shape[0], n)),
                       data, block=VP_BLOCK)
  starts = _grid_starts(f_G, eta_G, n_refine, g.size)
  out = lbfgs.run(profile_objective, starts, np.ones((starts.shape[0], n)),
                  data, VP_STOP, chunk=VP_CHUNK, block=VP_BLOCK)
  i = int(np.argmin(out["f"]))
  eta = out["x"][i]
  E, A, B = solve_thetas(eta[None], np.ones((1, n)), data)[0]
  with np.errstate(divide="ignore"):
    theta = (np.log(A), np.log(B), np.log(E), eta[0], eta[1])
  settings = dict(
      delta=float(delta), objective=objective, objective_definition=(
          OBJECTIVE_NAME),
      inner=(f"IRLS-NNLS (steps {IRLS_STEPS}) and semismooth Newton from "
             f"the 1/L^2-weighted NNLS, until a step gains <= {INNER_FTOL:g} "
             f"relative (at most {INNER_ITERS} steps)"),
      grid=(f"alpha, beta in linspace({g[0]:g}, {g[-1]:g}, {g.size}) "
            "squared"), n_refine=int(starts.shape[0]),
      stop=dataclasses.asdict(VP_STOP))
  return parametric.ParametricFit(
      E=float(E), A=float(A), B=float(B), alpha=float(eta[0]),
      beta=float(eta[1]), method="vpnls", objective=float(out["f"][i]),
      n_points=n, n_starts=int(starts.shape[0]),
      n_converged=int(out["converged"].sum()),
      winner_converged=bool(out["converged"][i]),
      stages={"grid": dict(n_points=int(eta_G.shape[0])),
              "refine": dict(n_starts=int(starts.shape[0]),
                             n_converged=int(out["converged"].sum()),
                             n_failed=int(out["failed"].sum()))},
      settings=settings, n_iter=int(out["n_iter"][i]),
      grad_max=float(out["grad_max"][i]),
      theta=tuple(float(t) for t in theta))


def refit_resamples(point: parametric.ParametricFit, w_BxM, data
                    ) -> Dict[str, np.ndarray]:
  """Bootstrap refits: L-BFGS over (alpha, beta) from the point estimate.

  Returns lbfgs.run's dict plus 'theta' (B, 5) in parametric's order
  (log A, log B, log E, alpha, beta).
  """
  w = np.asarray(w_BxM, np.float64)
  x0 = np.tile([point.alpha, point.beta], (w.shape[0], 1))
  out = lbfgs.run(profile_objective, x0, w, data, VP_STOP, chunk=VP_CHUNK,
                  block=VP_BLOCK)
  EAB = solve_thetas(out["x"], w, data)
  with np.errstate(divide="ignore"):
    out["theta"] = np.column_stack([np.log(EAB[:, 1]), np.log(EAB[:, 2]),
                                    np.log(EAB[:, 0]), out["x"]])
  return out

