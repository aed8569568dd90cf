"""Plain scipy L-BFGS-B fits of Approach 3, one start at a time.

A reference for :mod:`scaling.approach3.parametric` (benchmarks, cross-checks) and the
procedure of Besiroglu et al. 2024's notebook: ``scipy.optimize.minimize``
with method L-BFGS-B and default tolerances, analytic gradient in NumPy.
"""
from __future__ import annotations

from typing import Dict

import numpy as np
from scipy import optimize
from scipy.special import logsumexp, softmax

from scaling.numerics import huber as huber_lib


def objective_and_grad(theta, logN, logD, logL, delta=huber_lib.HUBER_DELTA,
                       mean=False):
  """sum (or mean) of Huber_delta(LSE(...) - log L) and its exact gradient."""
  a, b, e, alpha, beta = theta
  # Hoffmann et al. 2022, Eq. 10 (log-space LSE form).
  t = np.stack([a - alpha * logN, b - beta * logD, np.full_like(logN, e)])
  r = logsumexp(t, axis=0) - logL
  abs_r = np.abs(r)
  h = np.where(abs_r <= delta, 0.5 * r * r, delta * (abs_r - 0.5 * delta))
  dh = np.clip(r, -delta, delta)            # Huber'(r).
  p = softmax(t, axis=0)                    # d LSE / d t.
  grad = np.array([np.sum(dh * p[0]), np.sum(dh * p[1]), np.sum(dh * p[2]),
                   -np.sum(dh * p[0] * logN), -np.sum(dh * p[1] * logD)])
  scale = 1.0 / logN.size if mean else 1.0
  return scale * np.sum(h), scale * grad


def fit_from(x0, N, D, loss, *, mean=False, delta=huber_lib.HUBER_DELTA
             ) -> Dict[str, object]:
  """One scipy L-BFGS-B run from x0 = (a, b, e, alpha, beta)."""
  logN, logD, logL = (np.log(np.asarray(v, np.float64)) for v in (N, D, loss))
  res = optimize.minimize(objective_and_grad, np.asarray(x0, np.float64),
                          args=(logN, logD, logL, delta, mean), jac=True,
                          method="L-BFGS-B")
  return dict(x=res.x, f=float(res.fun), nit=int(res.nit),
              message=str(res.message), success=bool(res.success))


def fit_grid(starts, N, D, loss, *, mean=False,
             delta=huber_lib.HUBER_DELTA) -> Dict[str, object]:
  """Runs fit_from from every start; returns the best and all objectives."""
  best, fs = None, []
  for x0 in np.asarray(starts, np.float64):
    out = fit_from(x0, N, D, loss, mean=mean, delta=delta)
    fs.append(out["f"] if np.isfinite(out["f"]) else np.inf)
    if best is None or fs[-1] < best["f"]:
      best = out
  best = dict(best)
  best["all_f"] = np.array(fs)
  return best
