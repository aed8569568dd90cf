"""Fitting a schedule-aware loss law to one model's curves, with bootstrap.

Objective (Luo et al. 2025, Sec. 4 / their src/models.py): sum over logged
points of Huber_delta(log loss - log prediction), delta = 1e-3, minimised by
the project's batched L-BFGS (``scaling.numerics.lbfgs``, float64, jitted, lanes
vmapped) in log-parameters (every parameter is positive; Tissue's lambda
through a logit). Starts: the authors' two-stage recipe (their
src/fitting.py) -- a grid over (L0, A, alpha, B) of the cheap surrogate
L0 + A S1^-alpha - B (eta_max - eta_t), then the full law from the best
surrogate with a small grid over the remaining parameters; the lowest
objective wins.

Bootstrap (intervals over ``curves`` or ``points``): replicate weights are
multinomial counts of the curves (every point of a drawn curve counts once
per draw) or of the logged points; every replicate restarts from the full
fit. Prediction bands are percentiles of the replicates' predictions.
"""
from __future__ import annotations

import dataclasses
import itertools
import time
from typing import Any, Dict, List, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from scaling.io.types import ScalingDataError
from scaling.numerics import lbfgs
from scaling.numerics.huber import huber
from scaling.loss_curve import laws as laws_lib

DELTA = 1e-3           # Luo et al. 2025: Huber delta on log loss
LAMBDA = 0.999         # Tissue et al. 2024's default annealing momentum
_STOP = lbfgs.StopRule(max_iter=2000, gtol=1e-14, ftol=1e-12, pred_tol=1e-13)


@dataclasses.dataclass(frozen=True)
class FitOptions:
  """Options of a loss_curve fit (flags: scaling.loss_curve.cli)."""
  fit_curves: Optional[Sequence[str]] = None    # None: every curve
  bootstrap_unit: str = "curves"                # 'curves' | 'points'
  max_bootstrap: int = 100                      # cap on replicates
  fit_lambda: bool = False                      # tissue: fit lambda too
  lam: float = LAMBDA                           # tissue: fixed lambda
  block: int = laws_lib.BLOCK                   # see scaling.loss_curve.laws
  window: int = laws_lib.WINDOW
  level: float = 0.95


@dataclasses.dataclass(frozen=True)
class LossCurveFit:
  """A fitted law.

  Attributes:
    law: the registry entry's name.
    params: fitted parameters under the paper's names.
    objective: Huber objective at the fit.
    n_points / n_pairs: logged points fitted and (point, change) pairs.
    fit_seconds: wall time of the fit (starts + refinement, compile incl.).
    converged: L-BFGS stopped by a tolerance.
    samples: bootstrap replicates' parameters (name -> array), may be empty.
    bootstrap_unit: 'curves' or 'points'.
    n_bootstrap / n_failed: replicates asked for and discarded.
  """
  law: str
  params: Dict[str, float]
  objective: float
  n_points: int
  n_pairs: int
  fit_seconds: float
  converged: bool
  samples: Dict[str, np.ndarray]
  bootstrap_unit: str
  n_bootstrap: int
  n_failed: int
  level: float
  fixed: Dict[str, float]

  def ci(self) -> Dict[str, tuple]:
    if not self.samples:
      return {}
    q = (50 * (1 - self.level), 50 * (1 + self.level))
    return {k: tuple(np.percentile(v, q)) for k, v in self.samples.items()}


def _to_params(law: str, x, fixed):
  """Unconstrained x -> paper parameters (exp; lambda through a logit)."""
  names = laws_lib.LAWS[law].params
  free = [n for n in names if n not in fixed]
  p = {}
  for i, n in enumerate(free):
    p[n] = jax.nn.sigmoid(x[i]) if n == "lambda" else jnp.exp(x[i])
  for n, v in fixed.items():
    p[n] = jnp.asarray(v, x.dtype)
  return p


def _to_x(law: str, params: Dict[str, float], fixed) -> np.ndarray:
  names = [n for n in laws_lib.LAWS[law].params if n not in fixed]
  return np.array([np.log(params[n] / (1 - params[n])) if n == "lambda"
                   else np.log(params[n]) for n in names])


def _objective(law, fixed):
  predict = laws_lib.LAWS[law].predict
  fixed = dict(fixed)

  def f(x, w_M, d):
    pred = predict(_to_params(law, x, fixed), d)
    ok = pred > 0
    r = d["logloss_M"] - jnp.log(jnp.where(ok, pred, 1.0))
    return jnp.where(jnp.all(ok | (w_M == 0)),
                     jnp.sum(w_M * huber(r, DELTA)), jnp.inf)
  return f


def _surrogate(x, w_M, d):
  """Stage-1 surrogate L0 + A S1^-alpha - B (eta_max - eta_t) (Luo et al.)."""
  L0, A, alpha, B = jnp.exp(x)
  pred = L0 + A * d["S1_M"] ** (-alpha) - B * d["drop_M"]
  ok = pred > 0
  r = d["logloss_M"] - jnp.log(jnp.where(ok, pred, 1.0))
  return jnp.where(jnp.all(ok), jnp.sum(w_M * huber(r, DELTA)), jnp.inf)


def _data(curves, opts: FitOptions):
  d = laws_lib.design(curves, opts.block, opts.window)
  arr = d.arrays()
  loss = np.concatenate([c.loss_M for c in curves])
  arr["logloss_M"] = np.log(loss)
  return d, arr, loss


def _surrogate_start(curves, arr, loss) -> np.ndarray:
  """Best (L0, A, alpha, B) of the surrogate over the authors' grid."""
  eta_max = max(float(c.lr_T.max()) for c in curves)
  drop = np.concatenate([eta_max - c.lr_T[c.step_M] for c in curves])
  data = {"S1_M": arr["S1_M"], "drop_M": drop, "logloss_M": arr["logloss_M"]}
  lmin = float(loss.min())
  slope, icpt = np.polyfit(np.log(arr["S1_M"]), np.log(loss - lmin + 0.01), 1)
  grid = list(itertools.product(
      np.linspace(lmin - 0.2, lmin + 0.2, 5)[np.linspace(lmin - 0.2, lmin + 0.2, 5) > 0],
      np.maximum(np.exp(icpt) + np.array([-0.1, 0.0, 0.1]), 0.02),
      np.maximum(-slope + np.array([-0.1, 0.0, 0.1]), 0.02),
      (100.0, 550.0, 1000.0)))
  x0 = np.log(np.array(grid))
  w = np.ones((x0.shape[0], loss.size))
  out = lbfgs.run(_surrogate, x0, w, data, stop=_STOP)
  return np.exp(out["x"][int(np.argmin(out["f"]))])


def _starts(law: str, s0: np.ndarray, fixed) -> np.ndarray:
  L0, A, alpha, B = s0
  if law == "multipower":
    # Luo et al.'s start (C, beta, gamma) = (1, 0.5, 0.5) and one more.
    grid = [dict(L0=L0, A=A, alpha=alpha, B=B * b, C=C, beta=be, gamma=g)
            for b, C, be, g in ((1.0, 1.0, 0.5, 0.5), (2.0, 2.0, 0.3, 0.7))]
  else:
    grid = [dict(L0=L0, A=A, alpha=alpha, C=C, **{"lambda": LAMBDA})
            for C in (0.3, 3.0)]
  return np.array([_to_x(law, g, fixed) for g in grid])


def _fixed(law: str, opts: FitOptions) -> Dict[str, float]:
  return {"lambda": float(opts.lam)} if law == "tissue" and not opts.fit_lambda else {}


def fit(law: str, curves: Sequence, opts: FitOptions = FitOptions(),
        bootstrap: int = 0, seed: int = 0, progress=None) -> LossCurveFit:
  """Fits ``law`` to ``curves`` (LossCurve list) and bootstraps it."""
  if law not in laws_lib.LAWS:
    raise ScalingDataError(f"unknown loss-curve law {law!r} (valid: "
                           f"{', '.join(laws_lib.LAWS)})")
  if opts.bootstrap_unit not in ("curves", "points"):
    raise ScalingDataError("loss-curve bootstrap unit must be 'curves' or "
                           f"'points', got {opts.bootstrap_unit!r}")
  names = laws_lib.LAWS[law].params
  fixed = _fixed(law, opts)
  t0 = time.perf_counter()
  d, arr, loss = _data(curves, opts)
  n_free = len(names) - len(fixed)
  if loss.size <= n_free:
    raise ScalingDataError(f"{law}: {loss.size} logged points for {n_free} "
                           "parameters")
  s0 = _surrogate_start(curves, arr, loss)
  x0 = _starts(law, s0, fixed)
  obj = _objective(law, fixed)
  ones = np.ones((x0.shape[0], loss.size))
  out = lbfgs.run(obj, x0, ones, arr, stop=_STOP, block=x0.shape[0])
  best = int(np.argmin(out["f"]))
  if not np.isfinite(out["f"][best]):
    raise ScalingDataError(f"{law}: no start reached a finite objective")
  x_best = out["x"][best]
  with lbfgs.x64():
    params = {k: float(v) for k, v in _to_params(
        law, jnp.asarray(x_best), fixed).items()}
  fit_seconds = time.perf_counter() - t0
  samples, n_failed = {}, 0
  B = min(int(bootstrap), int(opts.max_bootstrap))
  if B >= 2:
    rng = np.random.default_rng(seed)
    cid = d.curve_M
    if opts.bootstrap_unit == "curves":
      counts = rng.multinomial(len(curves), np.full(len(curves), 1 / len(curves)),
                               size=B)
      w = counts[:, cid].astype(np.float64)
    else:
      w = rng.multinomial(loss.size, np.full(loss.size, 1 / loss.size),
                          size=B).astype(np.float64)
    res = lbfgs.run(obj, np.tile(x_best, (B, 1)), w, arr, stop=_STOP,
                    block=min(B, 16))
    good = np.isfinite(res["f"]) & ~res["failed"]
    n_failed = int((~good).sum())
    with lbfgs.x64():
      ps = jax.vmap(lambda x: _to_params(law, x, fixed))(
          jnp.asarray(res["x"][good]))
      samples = {k: np.asarray(ps[k]) for k in names if k not in fixed}
  return LossCurveFit(law, params, float(out["f"][best]), int(loss.size),
                      d.n_pairs, fit_seconds, bool(out["converged"][best]),
                      samples, opts.bootstrap_unit, B if B >= 2 else 0,
                      n_failed, opts.level, fixed)


def predict(fit_: LossCurveFit, curves: Sequence, opts: FitOptions = FitOptions()
            ) -> List[np.ndarray]:
  """The fitted law's loss at each curve's logged steps."""
  return laws_lib.predict(laws_lib.LAWS[fit_.law], fit_.params, curves,
                          opts.block, opts.window)


def predict_band(fit_: LossCurveFit, curves: Sequence,
                 opts: FitOptions = FitOptions()):
  """(lo, hi) percentile band of the replicates' predictions per curve, or
  None without replicates."""
  if not fit_.samples:
    return None
  law = laws_lib.LAWS[fit_.law]
  d = laws_lib.design(curves, opts.block, opts.window)
  with lbfgs.x64():
    arr = {k: jnp.asarray(v) for k, v in d.arrays().items()}
    keys = list(fit_.samples)
    P = jnp.asarray(np.stack([fit_.samples[k] for k in keys], 1))
    fixed = {k: jnp.asarray(v, jnp.float64) for k, v in fit_.fixed.items()}
    f = jax.jit(lambda row: law.predict(
        dict(zip(keys, row), **fixed), arr))
    L = np.stack([np.asarray(f(P[i])) for i in range(P.shape[0])])
  q = (50 * (1 - fit_.level), 50 * (1 + fit_.level))
  lo, hi = np.percentile(L, q, axis=0)
  return [(lo[d.curve_M == i], hi[d.curve_M == i]) for i in range(len(curves))]


def metrics(pred: np.ndarray, loss: np.ndarray) -> Dict[str, float]:
  """Luo et al.'s src/evaluation.py: PredE (mean), WorstE (max) of
  |pred - loss| / loss, with R2, MAE, RMSE of the loss."""
  rel = np.abs(pred - loss) / loss
  ss = ((loss - loss.mean()) ** 2).sum()
  return {"PredE": float(rel.mean()), "WorstE": float(rel.max()),
          "MAE": float(np.abs(pred - loss).mean()),
          "RMSE": float(np.sqrt(((pred - loss) ** 2).mean())),
          "R2": float(1 - ((loss - pred) ** 2).sum() / ss) if ss > 0 else None}
