"""Loss against compute with saturation: L*(C) = E + A C^-gamma.

Porian et al. 2024 (arXiv:2406.19146, "Resolving discrepancies in
compute-optimal scaling of language models") fit the per-budget minimum
loss of their IsoFLOP sweeps with a saturating power law, minimising a
Huber loss on log-loss residuals from a grid of starts. Here:

  min_{E, A, gamma} sum_i w_i Huber_delta(log(E + A C_i^-gamma) - log L*_i),
  delta = 1e-3 (Hoffmann et al. 2022 Eq. 10's threshold), E, A > 0,

by L-BFGS in (log A, log E, -gamma) from a grid of starts (gamma in
powerlaw.OFFSET_B_GRID's decreasing half, E = frac * min L*), the shared
fitter :func:`scaling.powerlaw.law.fit_offset_law`. Inputs are arrays (C, L*)
and optional per-point sigma of L* (e.g. the per-budget Approach-2
minima and their seed noise), or plain weights.

Intervals: ``scheme='noise'`` (needs sigma; Porian et al.'s seed-noise
bootstrap, a parametric bootstrap): refit L*_i + N(0, sigma_i^2);
``scheme='resample'``: the points resampled with replacement. Percentile
intervals; :meth:`SaturationFit.predict` gives L* with bands at any C.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, Optional, Tuple

import numpy as np

from scaling.numerics import huber as huber_lib
from scaling.numerics import intervals
from scaling.powerlaw import law as powerlaw

CITATION = "Porian et al. 2024, arXiv:2406.19146 (saturating loss-compute fit)"
OBJECTIVE = ("sum_i w_i Huber_delta(log(E + A C_i^-gamma) - log L*_i), "
             "delta=1e-3, E, A > 0, L-BFGS from a grid of starts")
SCHEMES = ("noise", "resample")
E_ZERO = 1e-6   # E below E_ZERO x min L*: at its bound 0 (SaturationFit.E_at_zero)


class SaturationError(ValueError):
  """Bad saturation-fit input; the message is one actionable line."""


@dataclasses.dataclass(frozen=True)
class SaturationFit:
  """L*(C) = E + A C^-gamma and its bootstrap distribution.

  Attributes:
    E, A, gamma: the fit; objective: its minimised value.
    n_points: budgets fitted; weights: how points were weighted.
    samples, ci: 'E', 'A', 'gamma' over successful resamples / intervals.
    scheme, n_bootstrap, n_failed, seed, level, interval: bootstrap record.
    settings: delta and the objective definition.
  """
  E: float
  A: float
  gamma: float
  objective: float
  n_points: int
  weights: str
  samples: Dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
  ci: Dict[str, Tuple[float, float]] = dataclasses.field(default_factory=dict)
  scheme: Optional[str] = None
  n_bootstrap: int = 0
  n_failed: int = 0
  seed: int = 0
  level: float = 0.95
  interval: Optional[str] = None
  settings: Dict[str, Any] = dataclasses.field(default_factory=dict)
  # E ran to its bound 0 (E < E_ZERO x min L*): no saturation is visible in
  # these budgets, L* is a pure power law, and E has no interval (replicates
  # started there stay there: the objective is flat in log E).
  E_at_zero: bool = False

  def predict(self, C) -> Dict[str, np.ndarray]:
    """L* at budgets C, with a pointwise band when bootstrapped."""
    C = np.asarray(C, np.float64)
    if np.any(~np.isfinite(C)) or np.any(C <= 0):
      raise SaturationError(f"budgets must be positive, got {C}")
    out = {"C": C, "L_opt": self.E + self.A * C**-self.gamma}
    if self.samples:
      s = self.samples
      L = s["E"][:, None] + s["A"][:, None] * C.ravel()[None] ** -s["gamma"][
          :, None]
      q = intervals.central_percentiles(self.level)
      out["L_opt_ci"] = (np.percentile(L, q[0], 0).reshape(C.shape),
                         np.percentile(L, q[1], 0).reshape(C.shape))
    return out

  def to_dict(self) -> Dict[str, Any]:
    return dict(E=self.E, A=self.A, gamma=self.gamma,
                formula=f"L*(C) = {self.E:.4g} + {self.A:.4g} C^-{self.gamma:.4g}",
                objective=self.objective, n_points=self.n_points,
                weights=self.weights, citation=CITATION,
                ci={k: [float(v[0]), float(v[1])] for k, v in self.ci.items()},
                ci_interval=self.interval, ci_scheme=self.scheme,
                n_bootstrap=self.n_bootstrap, n_bootstrap_failed=self.n_failed,
                seed=self.seed, settings=dict(self.settings),
                E_at_zero=self.E_at_zero)


def _inputs(C, L, sigma, weights):
  C = np.asarray(C, np.float64).ravel()
  L = np.asarray(L, np.float64).ravel()
  if C.shape != L.shape:
    raise SaturationError(f"C and L* must have the same length, got "
                          f"{C.size} and {L.size}")
  for name, v in (("C", C), ("L*", L)):
    if not np.all(np.isfinite(v) & (v > 0)):
      raise SaturationError(f"{name} must be positive and finite")
  if np.unique(C).size < 4:
    raise SaturationError(
        f"need >= 4 distinct budgets to fit E, A and gamma of L*(C) = E + "
        f"A C^-gamma (and leave one degree of freedom), got {np.unique(C).size}")
  if sigma is not None and weights is not None:
    raise SaturationError("give sigma or weights, not both")
  if sigma is not None:
    sigma = np.asarray(sigma, np.float64).ravel()
    if sigma.shape != L.shape or not np.all(np.isfinite(sigma) & (sigma > 0)):
      raise SaturationError("sigma must be positive and finite, one per point")
    # Inverse variance of log L* to first order: var(log L*) ~ (sigma/L*)^2.
    w = (L / sigma)**2
    return C, L, sigma, w / w.mean(), "1/var(log L*) ~ (L*/sigma)^2, mean 1"
  if weights is not None:
    w = np.asarray(weights, np.float64).ravel()
    if w.shape != L.shape or not np.all(np.isfinite(w) & (w >= 0)) or \
        not w.sum() > 0:
      raise SaturationError("weights must be finite, >= 0, one per point")
    return C, L, None, w, "given"
  return C, L, None, np.ones_like(L), "equal"


def _starts(logC, logL):
  """The decreasing half of powerlaw's grid of starts (b = -gamma < 0)."""
  s = powerlaw.offset_starts(logC - logC.mean(), logL)
  s[:, 0] -= s[:, 2] * logC.mean()    # back to the original units of C.
  return s[s[:, 2] < 0]


def fit_saturation(C, L, *, sigma=None, weights=None,
                   delta: float = huber_lib.HUBER_DELTA, bootstrap: int = 0,
                   scheme: Optional[str] = None, seed: int = 0,
                   level: float = 0.95) -> SaturationFit:
  """Fits L*(C) = E + A C^-gamma (see the module docstring).

  Args:
    C, L: budgets and their minimum losses (>= 4 distinct budgets).
    sigma: optional standard deviation of each L* (weights 1/var(log L*)
      and the 'noise' bootstrap); weights: optional plain weights instead.
    delta: Huber threshold on log-loss residuals.
    bootstrap: replicates (0 = none, else >= 2).
    scheme: 'noise' (default when sigma is given) or 'resample'.
    seed, level: resampling seed and central interval level.
  """
  C, L, sigma, w, w_note = _inputs(C, L, sigma, weights)
  if not delta > 0:
    raise SaturationError(f"delta must be positive, got {delta}")
  if bootstrap < 0 or bootstrap == 1:
    raise SaturationError(f"bootstrap must be 0 or >= 2, got {bootstrap}")
  scheme = scheme or ("noise" if sigma is not None else "resample")
  if scheme not in SCHEMES or (scheme == "noise" and sigma is None):
    raise SaturationError(f"scheme must be one of {SCHEMES} ('noise' needs "
                          f"sigma), got {scheme!r}")
  logC, logL = np.log(C), np.log(L)
  point = powerlaw.fit_offset_law(logC, logL, w, delta=delta,
                                  starts=_starts(logC, logL))
  th = point["theta"][0]
  samples, n_failed = {}, 0
  if bootstrap:
    samples, n_failed = _bootstrap(logC, L, sigma, w, th, delta, bootstrap,
                                   scheme, seed)
  E_at_zero = bool(np.exp(th[1]) < E_ZERO * L.min())
  ci, interval = (powerlaw.percentile_cis(
      {k: v for k, v in samples.items() if not (E_at_zero and k == "E")},
      level) if bootstrap else ({}, None))
  return SaturationFit(
      E=0.0 if E_at_zero else float(np.exp(th[1])), A=float(np.exp(th[0])),
      gamma=float(-th[2]),
      objective=float(point["f"][0]), n_points=int(C.size), weights=w_note,
      samples=samples, ci=ci, scheme=scheme if bootstrap else None,
      n_bootstrap=int(bootstrap), n_failed=n_failed, seed=seed, level=level,
      interval=interval,
      settings=dict(delta=float(delta), objective=OBJECTIVE),
      E_at_zero=E_at_zero)


def _bootstrap(logC, L, sigma, w, theta, delta, n, scheme, seed):
  rng = np.random.default_rng(seed)
  if scheme == "resample":
    W = rng.multinomial(L.size, np.full(L.size, 1.0 / L.size),
                        size=n).astype(np.float64)
    out = powerlaw.fit_offset_law(logC, np.log(L), w, delta=delta,
                                  starts=theta[None], W_BxN=W)
  else:
    Lb = L[None] + sigma[None] * rng.standard_normal((n, L.size))
    # A replicate with a non-positive loss has no log: clip it at the
    # smallest observed loss / 10 (it stays far from the data).
    Lb = np.maximum(Lb, L.min() / 10)
    out = powerlaw.fit_offset_law(logC, np.log(L), w, delta=delta,
                                  starts=theta[None], logy_BxN=np.log(Lb))
  theta_B, ok = out["theta"], np.isfinite(out["f"]) & ~out["failed"]
  th = theta_B[ok]
  return ({"E": np.exp(th[:, 1]), "A": np.exp(th[:, 0]), "gamma": -th[:, 2]},
          int(np.sum(~ok)))
