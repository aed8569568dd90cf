"""Power laws: y = a x^b, y = c + a x^b and y = a prod_k x_k^b_k.

The most basic scaling law is performance as a power of scale (Kaplan et
al. 2020, Eqs. 1.1-1.3: L(N) = (N_c/N)^alpha_N, and likewise in D and C):

* no offset, one or several x (``offset=False``): ordinary least squares of
  log y on (1, log x_1, ..., log x_k), i.e. y = a prod_k x_k^b_k (exact,
  closed form; weighted when weights are given);
* with an irreducible offset, one x (``offset=True``; Henighan et al. 2020,
  Eq. 1.1: y = y_inf + (x_0/x)^alpha): y = c + a x^b, a, c > 0, fitted by
  least squares on log y, sum_i w_i (log y_hat_i - log y_i)^2 / 2, with
  L-BFGS (:mod:`scaling.numerics.lbfgs`) from a grid of starts (OFFSET_B_GRID x
  OFFSET_C_FRACS); :mod:`scaling.loss_vs_compute.saturation` uses the same fitter with a
  Huber loss.

Intervals: bootstrap over rows (Efron 1979; resampling with replacement),
refitted in one batch (closed form, or vmapped L-BFGS from the point
estimate), percentile intervals.
"""
from __future__ import annotations

import dataclasses
import itertools
from typing import Any, Dict, Optional, Sequence, Tuple

import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from scaling.numerics import huber as huber_lib
from scaling.numerics import intervals
from scaling.numerics import lbfgs

CITATION = "Kaplan et al. 2020, arXiv:2001.08361, Eqs. 1.1-1.3"
CITATION_OFFSET = "Henighan et al. 2020, arXiv:2010.14701, Eq. 1.1"
OBJECTIVES = {
    False: "least squares of log y on (1, log x_1, ..., log x_k)",
    True: "sum_i w_i (log(c + a x_i^b) - log y_i)^2 / 2, a, c > 0, L-BFGS "
          "from a grid of starts",
}
# Starts of the offset fit: exponents b and offsets c = frac * min(y); a is
# then the least-squares value of log(y - c) - b log x.
OFFSET_B_GRID = tuple(s * v for s in (-1.0, 1.0)
                      for v in (0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0,
                                1.5))
OFFSET_C_FRACS = (0.01, 0.25, 0.5, 0.75, 0.9, 0.97, 0.995)
OFFSET_STOP = lbfgs.StopRule(max_iter=2000, gtol=1e-12, ftol=1e-14)
OFFSET_BLOCK = 64   # one lane shape for starts and refits: one compilation.


class PowerLawError(ValueError):
  """Bad power-law input; the message is one actionable line."""


@dataclasses.dataclass(frozen=True)
class PowerLawFit:
  """A fitted power law and its bootstrap distribution.

  Attributes:
    x_names, y_name: the columns fitted.
    a: prefactor; b: exponent per x; c: offset (None without one).
    offset: whether c was fitted.
    objective: what was minimised (OBJECTIVES).
    n_points: rows fitted.
    rmse_log: root mean square of log y_hat - log y.
    samples: 'a', 'b[<name>]', 'c' -> arrays over successful resamples.
    ci: the same names -> (lo, hi); interval: how ci was formed.
    n_bootstrap, n_failed, seed: bootstrap settings and outcome.
  """
  x_names: Tuple[str, ...]
  y_name: str
  a: float
  b: Tuple[float, ...]
  c: Optional[float]
  offset: bool
  objective: str
  n_points: int
  rmse_log: float
  samples: Dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
  ci: Dict[str, Tuple[float, float]] = dataclasses.field(default_factory=dict)
  interval: Optional[str] = None
  n_bootstrap: int = 0
  n_failed: int = 0
  seed: int = 0

  @property
  def citation(self) -> str:
    return CITATION_OFFSET if self.offset else CITATION

  def formula(self) -> str:
    """e.g. 'loss = 1.69 + 406 * N^-0.34'."""
    terms = " * ".join(f"{n}^{b:.4g}" for n, b in zip(self.x_names, self.b))
    lead = f"{self.c:.4g} + " if self.c is not None else ""
    return f"{self.y_name} = {lead}{self.a:.4g} * {terms}"

  def predict(self, X) -> np.ndarray:
    """y at X (shape (n,) for one x, or (n, k))."""
    logX = _log_matrix(X, len(self.b))
    y = self.a * np.exp(logX @ np.asarray(self.b))
    return y + (self.c or 0.0)

  def band(self, X, level: float = 0.95) -> Optional[Tuple[np.ndarray,
                                                           np.ndarray]]:
    """Pointwise percentile band of the prediction at X (None: no samples)."""
    if not self.samples:
      return None
    logX = _log_matrix(X, len(self.b))
    B = np.stack([self.samples[f"b[{n}]"] for n in self.x_names], 1)
    y = self.samples["a"][:, None] * np.exp(B @ logX.T)
    if self.c is not None:
      y = y + self.samples["c"][:, None]
    q = 50.0 * (1.0 - level), 50.0 * (1.0 + level)
    return np.percentile(y, q[0], axis=0), np.percentile(y, q[1], axis=0)

  def to_dict(self) -> Dict[str, Any]:
    return dict(
        formula=self.formula(), x=list(self.x_names), y=self.y_name,
        a=self.a, b=dict(zip(self.x_names, self.b)), c=self.c,
        offset=self.offset, objective=self.objective, citation=self.citation,
        n_points=self.n_points, rmse_log=self.rmse_log,
        ci={k: [float(v[0]), float(v[1])] for k, v in self.ci.items()},
        ci_interval=self.interval, n_bootstrap=self.n_bootstrap,
        n_bootstrap_failed=self.n_failed, seed=self.seed)


def _log_matrix(X, k: int) -> np.ndarray:
  X = np.asarray(X, np.float64)
  X = X[:, None] if X.ndim == 1 else X
  if X.ndim != 2 or X.shape[1] != k:
    raise PowerLawError(f"X must have {k} column(s), got shape {X.shape}")
  if not np.all(np.isfinite(X) & (X > 0)):
    raise PowerLawError("x values must be positive and finite for a power "
                        "law")
  return np.log(X)


def _validate(X, y, weights, names):
  y = np.asarray(y, np.float64).ravel()
  X = np.asarray(X, np.float64)
  X = X[:, None] if X.ndim == 1 else X
  names = tuple(names) if names is not None else tuple(
      f"x{i}" for i in range(X.shape[1]))
  if X.ndim != 2 or X.shape[0] != y.shape[0] or len(names) != X.shape[1]:
    raise PowerLawError(f"x has shape {X.shape}, y {y.shape} and names "
                        f"{names}: need one row per y and one name per column")
  if not np.all(np.isfinite(y) & (y > 0)):
    raise PowerLawError("y must be positive and finite for a log-space fit")
  logX = _log_matrix(X, X.shape[1])
  w = np.ones_like(y) if weights is None else np.asarray(weights,
                                                         np.float64).ravel()
  if w.shape != y.shape or not np.all(np.isfinite(w) & (w >= 0)) or \
      not w.sum() > 0:
    raise PowerLawError("weights must be finite, >= 0, one per row, not all 0")
  return logX, np.log(y), w, names


def _loglinear(logX, logy, W_BxN):
  """Weighted least squares of log y on [1, log x]: coefficients (B, k+1)."""
  Z = np.column_stack([np.ones(logX.shape[0]), logX])
  M = np.einsum("bn,ni,nj->bij", W_BxN, Z, Z)
  v = np.einsum("bn,ni,n->bi", W_BxN, Z, logy)
  ok = np.linalg.cond(M) < 1e12
  coef = np.full(v.shape, np.nan)
  if ok.any():
    coef[ok] = np.linalg.solve(M[ok], v[ok][..., None])[..., 0]
  return coef


def _lsq_objective(theta, wy, data):
  """sum_i w_i (log y_hat_i - log y_i)^2 / 2; wy = (w, log y) per lane."""
  lx, _ = data
  n = lx.shape[0]
  r = _log_offset_law(theta, lx) - wy[n:]
  return 0.5 * jnp.sum(wy[:n] * r * r)


def _huber_objective(theta, wy, data):
  """sum_i w_i Huber_delta(log y_hat_i - log y_i) (Hoffmann 2022, Eq. 10)."""
  lx, delta = data
  n = lx.shape[0]
  return jnp.sum(wy[:n] * huber_lib.huber(_log_offset_law(theta, lx) - wy[n:],
                                          delta))


def _log_offset_law(theta, lx):
  """log(c + a x^b) = LSE(log a + b log x, log c); theta = (log a, log c, b)."""
  return logsumexp(jnp.stack([theta[0] + theta[2] * lx,
                              jnp.broadcast_to(theta[1], lx.shape)]), axis=0)


def offset_starts(lx, ly) -> np.ndarray:
  """Grid of starts (log a, log c, b) for y = c + a x^b (lx centred)."""
  y_min = np.exp(ly.min())
  starts = []
  for b, frac in itertools.product(OFFSET_B_GRID, OFFSET_C_FRACS):
    c = frac * y_min
    la = np.mean(np.log(np.exp(ly) - c) - b * lx)
    starts.append((la, np.log(c), b))
  return np.array(starts)


def fit_offset_law(logx, logy, w, *, delta: Optional[float] = None,
                   starts: Optional[np.ndarray] = None,
                   W_BxN: Optional[np.ndarray] = None,
                   logy_BxN: Optional[np.ndarray] = None) -> Dict[str, Any]:
  """Fits y = c + a x^b in log space (least squares, or Huber delta).

  logx is centred internally (x / geometric-mean x) for conditioning;
  starts and results are in the original units. Batch refits: W_BxN
  (bootstrap multiplicities) and/or logy_BxN (perturbed log y) give one
  lane each, all started from the best of ``starts`` and solved in one
  vmapped batch.

  Returns:
    dict with 'theta' (B, 3) = (log a, log c, b) in original units and
    lbfgs.run's 'f', 'converged', 'failed' (B = 1 without a batch).
  """
  lx0 = float(np.mean(logx))
  lx = logx - lx0
  objective = _lsq_objective if delta is None else _huber_objective
  data = (lx, np.float64(huber_lib.HUBER_DELTA if delta is None else delta))
  if starts is None:
    x0 = offset_starts(lx, logy)
  else:
    x0 = np.array(starts, np.float64)
    x0[:, 0] += x0[:, 2] * lx0          # a x^b = (a x0^b) (x/x0)^b.
  x0 = x0[np.all(np.isfinite(x0), axis=1)]
  wy = np.concatenate([w, logy])
  out = lbfgs.run(objective, x0, np.tile(wy, (x0.shape[0], 1)), data,
                  OFFSET_STOP, chunk=50, block=OFFSET_BLOCK)
  i = int(np.argmin(out["f"]))
  if W_BxN is None and logy_BxN is None:
    out = {k: v[i:i + 1] for k, v in out.items()}
  else:
    B = (W_BxN if W_BxN is not None else logy_BxN).shape[0]
    W = np.ones((B, w.size)) if W_BxN is None else np.asarray(W_BxN, float)
    ly = np.tile(logy, (B, 1)) if logy_BxN is None else np.asarray(logy_BxN)
    out = lbfgs.run(objective, np.tile(out["x"][i], (B, 1)),
                    np.concatenate([W * w[None], ly], axis=1), data,
                    OFFSET_STOP, chunk=50, block=OFFSET_BLOCK)
  theta = np.array(out["x"], np.float64)
  theta[:, 0] -= theta[:, 2] * lx0      # a x~^b = (a x0^-b) x^b.
  return dict(theta=theta, f=out["f"], converged=out["converged"],
              failed=out["failed"])


def percentile_cis(samples, level):
  """({name: (lo, hi)}, the interval's text) of bootstrap ``samples``."""
  q = intervals.central_percentiles(level)
  interval = f"percentile {q[0]:g}-{q[1]:g}% ({100 * level:g}%) bootstrap"
  return intervals.percentile_intervals(samples, q=q), interval


def fit_powerlaw(X, y, *, names: Optional[Sequence[str]] = None,
                 y_name: str = "y", offset: bool = False,
                 weights=None, bootstrap: int = 0, seed: int = 0,
                 level: float = 0.95) -> PowerLawFit:
  """Fits y = a prod_k x_k^b_k, or y = c + a x^b with offset=True.

  Args:
    X: (n,) or (n, k) positive x values; names: one per column.
    y: (n,) positive y values (y_name labels it).
    offset: fit the irreducible offset c (one x only).
    weights: optional per-row weights of the squared log residuals.
    bootstrap: resamples of the rows (0 = no intervals, else >= 2).
    seed: NumPy seed of the resampling.
    level: central interval level.

  Returns:
    PowerLawFit.
  """
  logX, logy, w, names = _validate(X, y, weights, names)
  n, k = logX.shape
  if offset and k != 1:
    raise PowerLawError(f"offset=True fits y = c + a x^b to one x; got "
                        f"{k} ({', '.join(names)})")
  if n < k + 1 + int(offset) + 1:
    raise PowerLawError(f"need at least {k + 2 + int(offset)} rows to fit "
                        f"{k + 1 + int(offset)} parameters, got {n}")
  if bootstrap < 0 or bootstrap == 1:
    raise PowerLawError(f"bootstrap must be 0 or >= 2, got {bootstrap}")
  rng = np.random.default_rng(seed)
  W = (rng.multinomial(n, np.full(n, 1.0 / n), size=bootstrap).astype(float)
       if bootstrap else None)
  if offset:
    th, samples = _fit_offset(logX[:, 0], logy, w, W, names[0])
    a, c, b = float(np.exp(th[0])), float(np.exp(th[1])), (float(th[2]),)
    pred = np.log(c + a * np.exp(logX[:, 0] * b[0]))
  else:
    coef = _loglinear(logX, logy, w[None])[0]
    if not np.all(np.isfinite(coef)):
      raise PowerLawError("log x columns are collinear (or constant): the "
                          "exponents are not identified")
    a, b, c = float(np.exp(coef[0])), tuple(float(v) for v in coef[1:]), None
    pred = coef[0] + logX @ coef[1:]
    samples = {}
    if W is not None:
      cb = _loglinear(logX, logy, W * w[None])
      ok = np.all(np.isfinite(cb), axis=1)
      samples = {"a": np.exp(cb[ok, 0])}
      samples.update({f"b[{nm}]": cb[ok, 1 + i] for i, nm in enumerate(names)})
      samples["_failed"] = np.array([np.sum(~ok)])
  n_failed = int(samples.pop("_failed", np.zeros(1))[0])
  ci, interval = percentile_cis(samples, level) if samples else ({}, None)
  return PowerLawFit(
      x_names=names, y_name=y_name, a=a, b=b, c=c, offset=offset,
      objective=OBJECTIVES[offset], n_points=n,
      rmse_log=float(np.sqrt(np.mean((pred - logy)**2))), samples=samples,
      ci=ci, interval=interval, n_bootstrap=int(bootstrap), n_failed=n_failed,
      seed=seed)


def _fit_offset(logx, logy, w, W, name):
  """Point estimate (log a, log c, b) and bootstrap samples of y = c + a x^b."""
  point = fit_offset_law(logx, logy, w)["theta"][0]
  samples = {}
  if W is not None:
    out = fit_offset_law(logx, logy, w, starts=point[None], W_BxN=W)
    ok = np.isfinite(out["f"]) & ~out["failed"]
    th = out["theta"][ok]
    samples = {"a": np.exp(th[:, 0]), "c": np.exp(th[:, 1]),
               "_failed": np.array([np.sum(~ok)])}
    samples[f"b[{name}]"] = th[:, 2]
  return point, samples
