"""Bootstrap intervals for Approach 3 (and everything derived from it).

Two schemes:

* ``'epoch'`` (Besiroglu et al. 2024, Sec. 4): resample the runs with
  replacement (default 4000 times), refit, and report percentile 95%
  intervals.
* ``'hoffmann'`` (Hoffmann et al. 2022, Table 2 caption): 100 subsamples of
  80% of the runs without replacement, refit, and report the 10th and 90th
  percentiles.

A resample is a weight vector (multiplicity of each run), so all resamples
share one data array and are refitted together by the vmapped solver in
:mod:`scaling.numerics.lbfgs`.

Starting points: each refit starts from the full-data point estimate (plus,
with ``extra_starts=k``, the k next-best distinct grid solutions, keeping
the lower objective; grid_lbfgs and mle). ``method='vpnls'`` refits only
(alpha, beta) from the point estimate's exponents, (E, A, B) solved
exactly for each resample (:func:`scaling.approach3.vpnls.refit_resamples`). Rerunning the 4500-point grid per resample would cost
~4500x more; a resample perturbs the objective slightly, so its minimum lies
in the basin of the full-data minimum. ``tests/test_bootstrap.py`` checks
this against full-grid refits of a few resamples.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from scaling.numerics import huber as huber_lib
from scaling.numerics import intervals
from scaling.numerics import lbfgs
from scaling.approach3 import parametric
from scaling.approach3 import vpnls


class BootstrapError(ValueError):
  """Bad bootstrap settings; the message is one actionable line."""


@dataclasses.dataclass(frozen=True)
class BootstrapResult:
  """Bootstrap distribution of an Approach-3 fit.

  Attributes:
    point: the full-data fit.
    samples: name -> array over successful resamples (E, A, B, alpha, beta,
      a, b, G and per-budget N_opt@C, D_opt@C, D_over_N@C, L_opt@C).
    ci: name -> (lo, hi) percentile interval.
    interval: how ci was formed, e.g. 'percentile 2.5-97.5% (95%)'.
    scheme, n_resamples, seed, method: the settings.
    n_not_converged: refits that hit the iteration cap (kept).
    n_failed: refits dropped: a non-finite objective, or a line search that
      failed before any step (the refit would just return its start).
    percentiles: the (lo, hi) percentiles behind ci.
  """
  point: parametric.ParametricFit
  samples: Dict[str, np.ndarray]
  ci: Dict[str, Tuple[float, float]]
  interval: str
  scheme: str
  n_resamples: int
  seed: int
  method: str
  n_not_converged: int
  n_failed: int
  percentiles: Tuple[float, float] = (2.5, 97.5)

  @property
  def n_ok(self) -> int:
    return self.n_resamples - self.n_failed

  def to_dict(self) -> Dict[str, Any]:
    return dict(point=self.point.to_dict(),
                ci={k: [float(v[0]), float(v[1])] for k, v in self.ci.items()},
                interval=self.interval, scheme=self.scheme,
                n_resamples=self.n_resamples, seed=self.seed,
                method=self.method, n_not_converged=self.n_not_converged,
                n_failed=self.n_failed, n_ok=self.n_ok,
                percentiles=list(self.percentiles))


def resample_weights(n: int, n_resamples: int, scheme: str,
                     seed: int) -> np.ndarray:
  """(n_resamples, n) multiplicities of each run in each resample."""
  rng = np.random.default_rng(seed)
  if scheme == "epoch":
    # With replacement, n draws (Efron 1979; Besiroglu et al. 2024).
    return rng.multinomial(n, np.full(n, 1.0 / n), size=n_resamples).astype(
        np.float64)
  if scheme == "hoffmann":
    # 80% of the runs without replacement (Hoffmann et al. 2022, Table 2).
    k = int(round(0.8 * n))
    w = np.zeros((n_resamples, n))
    for i in range(n_resamples):
      w[i, rng.choice(n, size=k, replace=False)] = 1.0
    return w
  raise BootstrapError(f"scheme must be 'epoch' or 'hoffmann', got {scheme!r}")


def bootstrap_parametric(N, D, loss, *, n_resamples: Optional[int] = None,
                         scheme: str = "epoch", seed: int = 0,
                         budgets: Sequence[float] = (5.76e23,),
                         method: str = "grid_lbfgs",
                         delta: float = huber_lib.HUBER_DELTA,
                         extra_starts: int = 0,
                         point: Optional[parametric.ParametricFit] = None
                         ) -> BootstrapResult:
  """Bootstraps an Approach-3 fit.

  Args:
    N, D, loss: the runs.
    n_resamples: default 4000 ('epoch') or 100 ('hoffmann').
    scheme: 'epoch' (95% percentile interval, resampling with replacement)
      or 'hoffmann' (10th-90th percentile, 80% subsamples).
    seed: NumPy seed of the resampling; the result is reproducible.
    budgets: FLOP budgets for the derived N_opt, D_opt, D/N and L_opt.
    method: one of parametric.METHODS or an alias (as in fit_parametric).
    delta: Huber threshold.
    extra_starts: also start each refit from this many next-best grid
      solutions of the full-data fit (costs (1 + k)x); not for 'vpnls'.
    point: a precomputed full-data fit with the same method (optional).

  Returns:
    BootstrapResult.
  """
  if scheme not in ("epoch", "hoffmann"):
    raise BootstrapError(
        f"scheme must be 'epoch' or 'hoffmann', got {scheme!r}")
  if n_resamples is None:
    n_resamples = 4000 if scheme == "epoch" else 100
  if n_resamples < 2:
    raise BootstrapError(f"n_resamples must be >= 2, got {n_resamples}")
  if extra_starts < 0:
    raise BootstrapError(f"extra_starts must be >= 0, got {extra_starts}")
  method = _canonical(method)
  if extra_starts and method == "vpnls":
    raise BootstrapError("extra_starts applies to grid_lbfgs and mle; vpnls "
                         "refits (alpha, beta) from the point estimate")
  data = parametric.make_data(N, D, loss, delta, "sum")
  n = data[0].shape[0]
  if point is None:
    point = parametric.fit_parametric(N, D, loss, method=method, delta=delta)
  elif point.method != method:
    raise BootstrapError(f"point was fitted with {point.method!r}, not "
                         f"{method!r}")
  w = resample_weights(n, n_resamples, scheme, seed)
  best = _REFIT[method](method, point, w, data, extra_starts)
  ok = np.isfinite(best["f"]) & ~best["failed"]
  theta = best["x"][ok]
  E, A, B = np.exp(theta[:, 2]), np.exp(theta[:, 0]), np.exp(theta[:, 1])
  alpha, beta = theta[:, 3], theta[:, 4]
  samples = dict(E=E, A=A, B=B, alpha=alpha, beta=beta)
  samples.update(parametric.derived(E, A, B, alpha, beta, budgets))
  if scheme == "epoch":
    q, interval = (2.5, 97.5), "percentile 2.5-97.5% (95%)"
  else:
    q, interval = (10.0, 90.0), "percentile 10-90% (Hoffmann et al. 2022)"
  ci = intervals.percentile_intervals(samples, q=q)
  return BootstrapResult(
      point=point, samples=samples, ci=ci, interval=interval, scheme=scheme,
      n_resamples=n_resamples, seed=seed, method=method,
      n_not_converged=int(np.sum(ok & ~best["converged"])),
      n_failed=int(np.sum(~ok)), percentiles=q)


def _canonical(method: str) -> str:
  try:
    return parametric.canonical_method(method)
  except parametric.ParametricFitError as e:
    raise BootstrapError(str(e)) from None


def _refit_lbfgs(method, point, w, data, extra_starts):
  """grid_lbfgs / mle refits from the point (and extra) starts, best kept."""
  starts = [np.asarray(point.theta)]
  if extra_starts:
    starts += list(_extra_starts(data, point, extra_starts))
  objective = (parametric.huber_objective if method == "grid_lbfgs"
               else parametric.mle_negloglik)
  best = None
  for x0 in starts:
    # Same stop rule and chunk as the point fit: reuses its compilations.
    out = lbfgs.run(objective, np.tile(x0, (w.shape[0], 1)), w, data,
                    parametric.GRID_STOP, chunk=parametric.PRUNE_EVERY)
    if best is None:
      best = out
    else:
      better = out["f"] < best["f"]
      best = {k: np.where(better[:, None] if v.ndim == 2 else better, out[k],
                          v) for k, v in best.items()}
  return best


def _refit_vpnls(method, point, w, data, extra_starts):
  """vpnls refits of (alpha, beta) from the point estimate."""
  del method, extra_starts
  out = vpnls.refit_resamples(point, w, data)
  out["x"] = out.pop("theta")
  return out


# Refit procedure of each parametric.METHODS entry.
_REFIT = {"grid_lbfgs": _refit_lbfgs, "mle": _refit_lbfgs,
          "vpnls": _refit_vpnls}


def _extra_starts(data, point, k):
  """The k best grid solutions that differ from the point estimate."""
  n = data[0].shape[0]
  out = lbfgs.run(parametric.huber_objective, parametric.HOFFMANN_GRID,
                  np.ones((parametric.HOFFMANN_GRID.shape[0], n)), data,
                  parametric.GRID_STOP, chunk=parametric.PRUNE_EVERY,
                  keep=parametric._halving)  # pylint: disable=protected-access
  order = np.argsort(out["f"])
  p5 = np.asarray(point.theta[:5])
  chosen = []
  for i in order:
    x = out["x"][i]
    if np.all(np.isfinite(x)) and np.max(np.abs(x - p5)) > 1e-3 and all(
        np.max(np.abs(x - c[:5])) > 1e-3 for c in chosen):
      extra = [] if len(point.theta) == 5 else [point.theta[5]]
      chosen.append(np.concatenate([x, extra]))
    if len(chosen) == k:
      break
  return chosen
