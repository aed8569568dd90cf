"""The Approach-3 law L(N, D) = E + A/N^alpha + B/D^beta and its fit record.

Shared by the solvers (:mod:`scaling.approach3.parametric` for grid L-BFGS
and MLE, :mod:`scaling.approach3.vpnls`): the solver names, the
prediction, the objectives, the compute-optimal frontier (Hoffmann et al.
2022, Eq. 4), the ``ParametricFit`` record and the data packing. Imports no
solver, so every solver may import it.
"""
from __future__ import annotations

import dataclasses
import itertools
from typing import Any, Dict, Optional

import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from scaling.numerics import huber as huber_lib
from scaling.approach3 import optimum


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
  token of C's convention (``scaling.numerics.token_flops``): None or 6N gives Eq. 4
  in closed form, any other F the numeric minimum of L subject to
  F(N) D = C (``scaling.approach3.optimum.constrained``). a and b are the law's
  exponents, beta/(alpha+beta) and alpha/(alpha+beta), under any F ∝ N.
  """
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
