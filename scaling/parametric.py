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
* ``method='vpnls'`` (:mod:`scaling.vpnls`): the ``grid_lbfgs`` objective
  by variable projection: (E, A, B) >= 0 solved for fixed (alpha, beta),
  only the two exponents searched.

The solver is :mod:`scaling.lbfgs` (vmapped, jitted, float64 in a scoped
``x64`` block, exact gradients by ``jax.grad``).
"""
from __future__ import annotations

import dataclasses
import itertools
from typing import Any, Dict, Optional

import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from scaling import huber as huber_lib
from scaling import lbfgs


class ParametricFitError(ValueError):
  """Bad input to an Approach-3 fit; the message is one actionable line."""


# Hoffmann et al. 2022, App. D.2: alpha, beta in {0, .5, ..., 2},
# e in {-1, -.5, ..., 1}, a, b in {0, 5, ..., 25}; 4500 starts, columns
# (a, b, e, alpha, beta).
HOFFMANN_GRID = np.array(
    [(a, b, e, al, be) for a, b, e, al, be in itertools.product(
        np.arange(0.0, 30.0, 5.0), np.arange(0.0, 30.0, 5.0),
        np.arange(-1.0, 1.5, 0.5), np.arange(0.0, 2.5, 0.5),
        np.arange(0.0, 2.5, 0.5))], dtype=np.float64)

PARAM_NAMES = ("a", "b", "e", "alpha", "beta")

# Approach-3 fit methods (see the module docstring) and the names they had
# before, so stored fit.json files and old calls stay readable.
METHODS = ("grid_lbfgs", "mle", "vpnls")
METHOD_ALIASES = {"huber_grid": "grid_lbfgs"}


def canonical_method(method: str) -> str:
  """The METHODS name of ``method`` (resolving aliases) or an error."""
  m = METHOD_ALIASES.get(method, method)
  if m not in METHODS:
    raise ParametricFitError(
        f"method must be one of {', '.join(METHODS)} (alias: "
        f"{', '.join(METHOD_ALIASES)}), got {method!r}")
  return m


def log_predict(theta, logN, logD):
  """log L(N, D) = LSE(a - alpha log N, b - beta log D, e) (Hoffmann Eq. 10)."""
  a, b, e, alpha, beta = theta[0], theta[1], theta[2], theta[3], theta[4]
  stacked = jnp.stack([a - alpha * logN, b - beta * logD,
                       jnp.broadcast_to(e, logN.shape)])
  return logsumexp(stacked, axis=0)


def predict_loss(params: Dict[str, float], N, D):
  """L(N, D) = E + A/N^alpha + B/D^beta (Hoffmann et al. 2022, Eq. 2)."""
  N = np.asarray(N, np.float64)
  D = np.asarray(D, np.float64)
  return (params["E"] + params["A"] / N**params["alpha"] +
          params["B"] / D**params["beta"])


def huber_objective(theta, w, data):
  """sum_i w_i Huber_delta(log L_hat_i - log L_i) (Hoffmann 2022, Eq. 10).

  data = (logN, logD, logL, delta, mean_flag); mean_flag = 1 divides by
  sum(w) (the 'mean' variant, Besiroglu et al. 2024 Sec. 3 'early stop').
  """
  logN, logD, logL, delta, mean_flag = data
  r = log_predict(theta, logN, logD) - logL
  total = jnp.sum(w * huber_lib.huber(r, delta))
  return jnp.where(mean_flag > 0, total / jnp.sum(w), total)


def mle_negloglik(theta6, w, data):
  """-sum_i w_i log p_Huber(log L_i - log L_hat_i; sigma) (Besiroglu 2024)."""
  logN, logD, logL, delta, _ = data
  r = logL - log_predict(theta6[:5], logN, logD)
  return -jnp.sum(w * huber_lib.huber_logpdf(r, theta6[5], delta))


def frontier(A, B, alpha, beta, C=None, F=None) -> Dict[str, Any]:
  """G, a, b and, at budgets C, N_opt and D_opt (Hoffmann 2022, Eq. 4).

  The one implementation of the compute-optimal frontier; broadcasts like
  NumPy, so parameter arrays (bootstrap samples, shape (S,)) and budgets
  (shape (K, 1)) give (K, S) frontiers. ``F`` is the training FLOPs per
  token of C's convention (``scaling.token_flops``): None or 6N gives Eq. 4
  in closed form, any other F the numeric minimum of L subject to
  F(N) D = C (``scaling.optimum.constrained``). a and b are the law's
  exponents, beta/(alpha+beta) and alpha/(alpha+beta), under any F ∝ N.
  """
  from scaling import optimum  # pylint: disable=g-import-not-at-top
  A, B, alpha, beta = (np.asarray(v, np.float64) for v in (A, B, alpha, beta))
  # Hoffmann et al. 2022, Eq. 4: G = (alpha A / (beta B))^(1/(alpha+beta)),
  # a = beta/(alpha+beta), b = alpha/(alpha+beta).
  G = (alpha * A / (beta * B))**(1.0 / (alpha + beta))
  a = beta / (alpha + beta)
  b = alpha / (alpha + beta)
  out = {"a": a, "b": b, "G": G}
  if C is not None:
    out.update(optimum.constrained(A, B, alpha, beta, C, F))
  return out


def derived(E, A, B, alpha, beta, budgets=(), F=None) -> Dict[str, Any]:
  """Compute-optimal frontier implied by (E, A, B, alpha, beta).

  Works elementwise on arrays (bootstrap samples) as well as scalars;
  ``F`` as in :func:`frontier`.
  """
  E = np.asarray(E, np.float64)
  out = frontier(A, B, alpha, beta)
  for C in budgets:
    C = float(C)
    f = frontier(A, B, alpha, beta, C, F)
    N_opt, D_opt = f["N_opt"], f["D_opt"]
    L_opt = predict_loss(dict(E=E, A=A, B=B, alpha=alpha, beta=beta),
                         N_opt, D_opt)  # Hoffmann 2022, Eq. 2.
    out[f"N_opt@{C:.3g}"] = N_opt
    out[f"D_opt@{C:.3g}"] = D_opt
    out[f"D_over_N@{C:.3g}"] = D_opt / N_opt
    out[f"L_opt@{C:.3g}"] = L_opt
  return out


@dataclasses.dataclass(frozen=True)
class ParametricFit:
  """An Approach-3 fit and its diagnostics."""
  E: float
  A: float
  B: float
  alpha: float
  beta: float
  method: str
  objective: float        # minimised value (Huber sum/mean, or -loglik).
  n_points: int
  loglik: Optional[float] = None    # 'mle' only.
  log_sigma: Optional[float] = None  # 'mle' only.
  n_starts: int = 0
  n_converged: int = 0     # grid starts converged (pruned ones excluded).
  n_pruned: int = 0        # grid starts stopped by successive halving.
  winner_converged: bool = False  # final stage's winner met a tolerance.
  stages: Any = dataclasses.field(default_factory=dict)   # per-stage counts.
  settings: Any = dataclasses.field(default_factory=dict)  # fit options.
  n_iter: int = 0          # iterations of the winning start.
  grad_max: float = float("nan")  # max |gradient| at the solution.
  theta: tuple = ()        # (a, b, e, alpha, beta[, log_sigma]).

  @property
  def params(self) -> Dict[str, float]:
    return dict(E=self.E, A=self.A, B=self.B, alpha=self.alpha,
                beta=self.beta)

  @property
  def a(self) -> float:
    return float(frontier(self.A, self.B, self.alpha, self.beta)["a"])

  @property
  def b(self) -> float:
    return float(frontier(self.A, self.B, self.alpha, self.beta)["b"])

  @property
  def G(self) -> float:
    return float(frontier(self.A, self.B, self.alpha, self.beta)["G"])

  def compute_optimal(self, C, F=None) -> Dict[str, np.ndarray]:
    """N_opt, D_opt, D/N and L at FLOP budget(s) C subject to F(N) D = C.

    F: training FLOPs per token of C's convention (default 6N: Hoffmann
    2022, Eq. 4); see :func:`frontier`.
    """
    C = np.asarray(C, np.float64)
    if np.any(~np.isfinite(C)) or np.any(C <= 0):
      raise ParametricFitError(f"budgets must be positive, got {C}")
    f = frontier(self.A, self.B, self.alpha, self.beta, C, F)
    N_opt, D_opt = f["N_opt"], f["D_opt"]
    return dict(N_opt=N_opt, D_opt=D_opt, tokens_per_param=D_opt / N_opt,
                loss=predict_loss(self.params, N_opt, D_opt))

  def to_dict(self) -> Dict[str, Any]:
    d = dataclasses.asdict(self)
    d["theta"] = list(self.theta)
    d["stages"] = dict(self.stages)
    d["settings"] = dict(self.settings)
    d.update(a=self.a, b=self.b, G=self.G)
    return d


def _validate(N, D, loss):
  arrs = [np.asarray(x, np.float64).ravel() for x in (N, D, loss)]
  if not (arrs[0].shape == arrs[1].shape == arrs[2].shape):
    raise ParametricFitError(
        f"N, D, loss must have the same length, got "
        f"{[a.shape[0] for a in arrs]}")
  if arrs[0].shape[0] < 6:
    raise ParametricFitError(
        f"need at least 6 runs to fit 5 parameters, got {arrs[0].shape[0]}")
  for name, a in zip(("N", "D", "loss"), arrs):
    if not np.all(np.isfinite(a) & (a > 0)):
      raise ParametricFitError(f"{name} must be positive and finite")
  for name, a in zip(("N", "D"), arrs[:2]):
    k = np.unique(a).size
    if k < 3:
      raise ParametricFitError(
          f"need >= 3 distinct {name} values to identify the {name} term of "
          f"L = E + A/N^alpha + B/D^beta, got {k}")
  X = np.stack([np.ones_like(arrs[0]), np.log(arrs[0]), np.log(arrs[1])], 1)
  if np.linalg.matrix_rank(X) < 3:
    raise ParametricFitError(
        "log N and log D are collinear (e.g. a single IsoFLOP budget, where "
        "D = C/(6N)); the N and D terms cannot be separated: add runs at "
        "other budgets or token counts")
  return arrs


def make_data(N, D, loss, delta=huber_lib.HUBER_DELTA, objective="sum"):
  """Validated (logN, logD, logL, delta, mean_flag) tuple for the solvers."""
  if objective not in ("sum", "mean"):
    raise ParametricFitError(f"objective must be 'sum' or 'mean', got "
                             f"{objective!r}")
  if not delta > 0:
    raise ParametricFitError(f"delta must be positive, got {delta}")
  N, D, loss = _validate(N, D, loss)
  return (np.log(N), np.log(D), np.log(loss), np.float64(delta),
          np.float64(objective == "mean"))


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
    from scaling import vpnls  # pylint: disable=g-import-not-at-top
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
