"""Chinchilla Approach 3: fit L(N, D) = E + A/N^alpha + B/D^beta.

Three estimators (``METHODS``; docs/approach3.md compares them):

* ``method='grid_lbfgs'`` (Hoffmann et al. 2022, Sec. 3.3 and App. D.2):
  minimise sum_i Huber_delta(LSE(a - alpha log N_i, b - beta log D_i, e)
  - log L_i), delta = 1e-3, over (a, b, e, alpha, beta) with A = e^a,
  B = e^b, E = e^e; L-BFGS from every point of Hoffmann's 4500-point grid,
  keep the lowest objective. ``'huber_grid'`` (its name before) is an alias.
* ``method='mle'`` (Besiroglu et al. 2024, arXiv:2404.10102): maximise the
  Huber likelihood of the log-loss residuals with a free scale log sigma,
  started from the best ``grid_lbfgs`` solutions.
* ``method='vpnls'`` (:mod:`scaling.approach3.vpnls`): the ``grid_lbfgs`` objective
  by variable projection: (E, A, B) >= 0 solved for fixed (alpha, beta),
  only the two exponents searched.

The solver is :mod:`scaling.numerics.lbfgs` (vmapped, jitted, float64 in a scoped
``x64`` block, exact gradients by ``jax.grad``).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, Optional

import numpy as np

from scaling.numerics import huber as huber_lib
from scaling.numerics import lbfgs

from scaling.approach3 import vpnls
from scaling.approach3.law import (  # noqa: F401 (the public names of Approach 3)
    ParametricFitError,
    HOFFMANN_GRID,
    PARAM_NAMES,
    METHODS,
    METHOD_ALIASES,
    canonical_method,
    log_predict,
    predict_loss,
    huber_objective,
    mle_negloglik,
    frontier,
    derived,
    ParametricFit,
    make_data,
)


GRID_STOP = lbfgs.StopRule()
# Successive halving over the grid (see _fit_from): every PRUNE_EVERY
# iterations the running starts are cut to the best PRUNE_FRAC of them, but
# never below PRUNE_MIN.
PRUNE_EVERY, PRUNE_FRAC, PRUNE_MIN = 10, 0.25, 32


def _best_of(out, k):
  order = np.argsort(np.where(np.isfinite(out["f"]), out["f"], np.inf))
  return order[:k]


def _halving(f, it):
  """Keeps the best PRUNE_FRAC of the running starts (at least PRUNE_MIN)."""
  del it
  k = max(PRUNE_MIN, int(np.ceil(PRUNE_FRAC * f.size)))
  if f.size <= k:
    return np.ones(f.size, bool)
  return f <= np.partition(f, k - 1)[k - 1]


def _fit_from(obj, starts, data, n, prune=True):
  """Runs L-BFGS from every start; returns the solver output over starts.

  With prune=True (default) the starts still running every PRUNE_EVERY
  iterations are cut by successive halving on their current objective;
  starts that stop earlier are kept as they are. Far-off starts wander for
  thousands of iterations on the flat, linear part of the Huber loss, and
  the winning basin is reached by many starts, so this keeps the winner
  at ~1/30 of the cost (2.4 s vs 91 s on Epoch's data on 2 loaded CPU
  cores; tests/test_parametric.py compares the two).
  """
  w = np.ones((starts.shape[0], n))
  return lbfgs.run(obj, starts, w, data, GRID_STOP, chunk=PRUNE_EVERY,
                   keep=_halving if prune else None)


def fit_parametric(N, D, loss, *, method: str = "grid_lbfgs",
                   delta: float = huber_lib.HUBER_DELTA,
                   grid: Optional[np.ndarray] = None,
                   objective: str = "sum", prune: bool = True
                   ) -> ParametricFit:
  """Fits Approach 3 to runs (N, D, loss).

  Args:
    N, D, loss: 1-D arrays of parameters, tokens and final loss (nats).
    method: one of METHODS ('grid_lbfgs', Hoffmann 2022; 'mle', Besiroglu
      et al. 2024; 'vpnls', variable projection) or an alias.
    delta: Huber threshold on the log-loss residual.
    grid: grid_lbfgs / mle: (k, 5) starts (a, b, e, alpha, beta), default
      HOFFMANN_GRID; vpnls: 1-D exponent values (default vpnls.VP_GRID).
    objective: 'sum' (Hoffmann) or 'mean' of the Huber terms; our solver's
      stopping rule is scale free, so both give the same minimiser here.
    prune: grid_lbfgs / mle: successive halving over the starts (see
      _fit_from); False runs every start to its own stop (slow, exact
      Hoffmann procedure).

  Returns:
    ParametricFit (its ``method`` is the canonical name).
  """
  method = canonical_method(method)
  if method == "vpnls":
    return vpnls.fit_vpnls(N, D, loss, delta=delta, objective=objective,
                           grid=grid)
  data = make_data(N, D, loss, delta, objective)
  n = data[0].shape[0]
  starts = HOFFMANN_GRID if grid is None else np.asarray(grid, np.float64)
  if starts.ndim != 2 or starts.shape[1] != 5:
    raise ParametricFitError(
        f"grid must have shape (k, 5) = (a, b, e, alpha, beta), got "
        f"{starts.shape}")
  pol = _fit_from(huber_objective, starts, data, n, prune)
  i = _best_of(pol, 1)[0]
  stages = {"grid": _stage_counts(pol, i)}
  settings = dict(
      delta=float(delta), objective=objective,
      objective_definition=OBJECTIVE_DEFINITION[method], prune=bool(prune),
      prune_rule=(f"successive halving every {PRUNE_EVERY} iterations to the "
                  f"best {PRUNE_FRAC:g} (at least {PRUNE_MIN})" if prune
                  else "none"),
      grid=("Hoffmann 2022 App. D.2 (4500 starts)" if grid is None
            else f"custom ({starts.shape[0]} starts)"),
      stop=dataclasses.asdict(GRID_STOP))
  info = dict(n_starts=starts.shape[0],
              n_converged=stages["grid"]["n_converged"],
              n_pruned=stages["grid"]["n_pruned"],
              winner_converged=stages["grid"]["winner_converged"],
              stages=stages, settings=settings,
              n_iter=int(pol["n_iter"][i]), grad_max=float(pol["grad_max"][i]))
  if method == "grid_lbfgs":
    return _make_fit(pol["x"][i], method, float(pol["f"][i]), n, **info)
  return _fit_mle(pol, data, delta, n, info)


# What each method minimises (recorded in fit.json settings).
OBJECTIVE_DEFINITION = {
    "grid_lbfgs": "sum_i Huber_delta(log L_hat_i - log L_i), delta=1e-3 "
                  "(Hoffmann 2022 Eq. 10), over (log A, log B, log E, alpha, "
                  "beta) by L-BFGS from Hoffmann's grid",
    "mle": "-sum_i log p_Huber(log L_i - log L_hat_i; sigma), sigma free "
           "(Besiroglu et al. 2024), from the best grid_lbfgs solutions",
}


def _fit_mle(pol, data, delta, n, info) -> ParametricFit:
  """MLE stage: from the best Huber solutions, sigma = delta * mean |r|.

  When most |r| > delta sigma the Huber density is Laplace with scale
  sigma / delta, whose MLE is mean |r|.
  """
  stages = info["stages"]
  top = _best_of(pol, 4)
  x0 = []
  with lbfgs.x64():
    for j in top:
      r = data[2] - np.asarray(log_predict(pol["x"][j], data[0], data[1]))
      x0.append(np.append(pol["x"][j], np.log(delta * np.mean(np.abs(r)))))
  x0 = np.array(x0)
  mle = lbfgs.run(mle_negloglik, x0, np.ones((x0.shape[0], n)), data,
                  GRID_STOP)
  k = _best_of(mle, 1)[0]
  stages["mle"] = _stage_counts(mle, k)
  info.update(n_iter=int(mle["n_iter"][k]), grad_max=float(mle["grad_max"][k]),
              winner_converged=stages["mle"]["winner_converged"])
  return _make_fit(mle["x"][k], "mle", float(mle["f"][k]), n,
                   loglik=-float(mle["f"][k]), log_sigma=float(mle["x"][k][5]),
                   **info)


def _stage_counts(out, winner) -> Dict[str, Any]:
  """Start counts of one solver stage; converged counts unpruned starts."""
  return dict(n_starts=int(out["f"].size), n_pruned=int(out["pruned"].sum()),
              n_unpruned=int((~out["pruned"]).sum()),
              n_converged=int(out["converged"].sum()),
              n_failed=int(out["failed"].sum()),
              winner_converged=bool(out["converged"][winner]))


def _make_fit(theta, method, objective, n, **kw) -> ParametricFit:
  theta = np.asarray(theta, np.float64)
  return ParametricFit(
      E=float(np.exp(theta[2])), A=float(np.exp(theta[0])),
      B=float(np.exp(theta[1])), alpha=float(theta[3]), beta=float(theta[4]),
      method=method, objective=objective, n_points=n,
      theta=tuple(float(t) for t in theta), **kw)
