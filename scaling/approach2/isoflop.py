"""Chinchilla Approach 2: IsoFLOP profiles (Hoffmann et al. 2022, Sec. 3.2).

For every compute budget C a registered estimator
(``scaling.approach2.estimators``: parabola, local_parabola, akima,
huber_parabola) locates the minimum of loss against log N, giving N*(C) and
L*(C); then D*(C) = C / F(N*) with F the training FLOPs per token under the
data's own convention (``scaling.numerics.token_flops``), so F(N*) D* = C holds on
every budget. The power laws N* = k_N C^a and D* = k_D C^b are fitted by
(weighted) least squares in log space.

Rules (all explicit, none silent):
  * A budget with fewer than 3 distinct sizes, no located minimum (e.g. a
    concave parabola), or a minimum not strictly inside the sampled sizes
    (the edge rule) is dropped with a ``warnings.warn`` naming it
    (``on_edge='keep'`` keeps edge minima, as the plain Hoffmann recipe does).
  * Fewer than 2 usable budgets is an error; fewer than 3 warns that the
    interval is not meaningful.
  * Budgets come from ``budget`` when every value is finite; otherwise runs
    are grouped by gaps in log10 C (``scaling.numerics.budgets.group_budgets``).

Intervals (percentile at ``ci_level``, seeded): see
``scaling.approach2.bootstrap`` for the two schemes (``runs``: resampling runs
within budgets; ``seed_noise``: Porian et al. 2024's perturbation by the
run-to-run sigma, measured from seed repeats when the data has them, see
``scaling.approach2.seed_noise``). ``weighted`` (default: on for ``seed_noise``, as
Porian et al., off for ``runs``) fits the power laws by weighted least
squares with budget weights 1 / sigma_b^2, sigma_b the replicate spread of
ln N*_b (ln D*_b for b); point estimate and every replicate use the same
weights.
"""
from __future__ import annotations

import dataclasses
import warnings
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from scaling.approach2 import bootstrap as boot_lib
from scaling.approach2 import estimators as est_lib
from scaling.approach2 import seed_noise as noise_lib
from scaling.numerics import token_flops as flops_lib
from scaling.numerics.budgets import GAP_DECADES, group_budgets  # noqa: F401 (re-export)
from scaling.io.loaders import ScalingDataError, complete_6nd
from scaling.numerics.intervals import percentile_bands

_MIN_BOOTSTRAP_FOR_WEIGHTS = 20
SCHEMES = ("runs", "seed_noise")


@dataclasses.dataclass(frozen=True)
class IsoflopFit:
  """Result of Approach 2. N* = k_N C^a; D* = C / F(N*) ~ k_D C^b."""
  a: float
  b: float
  k_N: float
  k_D: float
  minima: List[Dict[str, Any]]       # one row per usable budget
  dropped: Dict[str, str]            # budget (as '%.3g') -> reason
  ci: Dict[str, Tuple[float, float]]
  samples: Dict[str, np.ndarray]     # bootstrap draws of a, b, log_k_N, log_k_D
  scheme: str
  weighted: bool
  ci_level: float
  budget_rule: str
  noise: Optional[noise_lib.NoiseLevel]
  n_failed_replicates: int
  estimator: str = est_lib.DEFAULT_ESTIMATOR
  estimator_options: Dict[str, Any] = dataclasses.field(default_factory=dict)
  flops_per_token: flops_lib.TokenFlops = flops_lib.TokenFlops.six_n()
  n_bootstrap_requested: int = 0
  n_eff: float = float("nan")      # effective number of budgets of the weights
  filled_6nd: Dict[str, int] = dataclasses.field(default_factory=dict)
  profiles: Dict[str, Tuple[np.ndarray, np.ndarray]] = dataclasses.field(
      default_factory=dict)          # budget label -> (log10 N, fitted loss)

  @property
  def seed_noise_std(self) -> Optional[float]:
    return None if self.noise is None else self.noise.sigma

  @property
  def interval_procedure(self) -> str:
    """Names the interval's procedure, e.g. for table headers and legends."""
    n = int(self.samples["a"].size)
    if not self.n_bootstrap_requested:
      return "no interval (bootstrap=0)"
    lo, hi = 50.0 * (1.0 - self.ci_level), 50.0 * (1.0 + self.ci_level)
    pct = f"percentile {lo:g}-{hi:g}%"
    if self.scheme == "runs":
      text = f"run resampling within budgets, n={n}"
    else:
      text = (f"seed-noise perturbation, σ={self.noise.sigma:.3g} "
              f"({self.noise.describe()}), n={n}")
    return text + (", WLS 1/σ_b²" if self.weighted else "") + f", {pct}"

  def predict(self, C) -> Dict[str, np.ndarray]:
    """N* = k_N C^a, D* = C / F(N*) and D*/N* at budgets C."""
    C = np.asarray(C, np.float64)
    N_opt = self.k_N * C**self.a
    D_opt = C / self.flops_per_token(N_opt)   # F(N*) D* = C.
    return {"N_opt": N_opt, "D_opt": D_opt, "tokens_per_param": D_opt / N_opt}

  def predict_ci(self, C) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    """Percentile bands of N*, D*, D*/N* at C from the bootstrap draws."""
    C = np.asarray(C, np.float64)
    if self.samples["a"].size == 0:
      nan = np.full(C.shape, np.nan)
      return {k: (nan, nan) for k in ("N_opt", "D_opt", "tokens_per_param")}
    N = np.exp(self.samples["log_k_N"] + self.samples["a"] *
               np.log(C)[..., None])
    D = C[..., None] / self.flops_per_token(N)
    return percentile_bands({"N_opt": N, "D_opt": D,
                             "tokens_per_param": D / N}, self.ci_level)

  def to_dict(self) -> Dict[str, Any]:
    return {
        "a": self.a, "b": self.b, "k_N": self.k_N, "k_D": self.k_D,
        "estimator": self.estimator,
        "estimator_options": dict(self.estimator_options),
        "estimator_label": est_lib.get(self.estimator).describe(
            self.estimator_options),
        "estimator_citation": est_lib.get(self.estimator).citation,
        "ci": {k: [float(v[0]), float(v[1])] for k, v in self.ci.items()},
        "ci_level": self.ci_level, "scheme": self.scheme,
        "weighted": self.weighted, "weights_n_eff": self.n_eff,
        "n_bootstrap": int(self.samples["a"].size),
        "n_failed_replicates": self.n_failed_replicates,
        "interval_procedure": self.interval_procedure,
        "seed_noise_std": self.seed_noise_std,
        "seed_noise": None if self.noise is None else self.noise.to_dict(),
        "flops_per_token": self.flops_per_token.to_dict(),
        "filled_6nd": dict(self.filled_6nd), "budget_rule": self.budget_rule,
        "minima": self.minima, "dropped": self.dropped,
    }


def _column(data, name: str) -> Optional[np.ndarray]:
  value = data.get(name) if isinstance(data, dict) else getattr(data, name, None)
  return None if value is None else np.asarray(value, dtype=np.float64)


def _prepare(data):
  """Returns N, D, C, loss, budget (None if unknown), filled counts.

  Missing (absent or non-finite) D or C entries are filled from C = 6ND,
  only in the rows that lack them, with a warning.
  """
  N, D, C, loss = (_column(data, k) for k in ("N", "D", "C", "loss"))
  budget = _column(data, "budget")
  if N is None or loss is None:
    raise ScalingDataError("IsoFLOP fit needs columns N and loss (and C or D).")
  if D is None and C is None:
    raise ScalingDataError("IsoFLOP fit needs C (training FLOPs) or D (tokens).")
  D, C, fD, fC = complete_6nd(N, D, C)  # Hoffmann 2022 Sec. 3: C ≈ 6ND
  filled = {"D": int(fD.sum()), "C": int(fC.sum())}
  for name, k in filled.items():
    if 0 < k:
      warnings.warn(f"IsoFLOP: {k}/{N.size} run(s) have no {name}; filled "
                    "from C = 6ND for those runs only.")
  if len(N) == 0:
    raise ScalingDataError("IsoFLOP fit got no runs.")
  for name, v in (("N", N), ("D", D), ("C", C), ("loss", loss)):
    bad = ~(np.isfinite(v) & (v > 0))
    if bad.any():
      raise ScalingDataError(
          f"{int(bad.sum())} run(s) have a non-positive or non-finite {name} "
          f"(first at row {int(np.argmax(bad))}); remove or fix them.")
  if budget is not None and not np.all(np.isfinite(budget) & (budget > 0)):
    budget = None
  return N, D, C, loss, budget, filled


def _budget_minima(est, opts, C_b, xN, N, D, loss, F, on_edge):
  """Point-estimate minimum of every budget; rows, dropped, kept indices."""
  rows, dropped, keep_idx, profiles = [], {}, [], {}
  sq_resid, dof = 0.0, 0
  for cb in np.unique(C_b):
    idx = np.flatnonzero(C_b == cb)
    label = f"{cb:.3g}"
    x, y = xN[idx], loss[idx]
    n_sizes = np.unique(np.round(x, 9)).size
    found = est(x, y, np.ones(idx.size), **opts)
    if n_sizes < 3:
      dropped[label] = f"only {n_sizes} distinct model size(s); need >= 3"
    elif not found["ok"][0]:
      dropped[label] = f"{est.name}: no minimum (e.g. non-positive curvature)"
    elif on_edge == "drop" and not found["inside"][0]:
      dropped[label] = (f"{est.name}: minimum not inside the sampled sizes "
                        f"[{N[idx].min():.3g}, {N[idx].max():.3g}]")
    if label in dropped:
      warnings.warn(f"IsoFLOP: dropping budget C={label}: {dropped[label]}.")
      continue
    par, _, _, _ = est_lib.quadratic_ls(x, y[None], np.ones((1, idx.size)))
    resid = y - np.polyval(par[0], x)
    sq_resid += float(resid @ resid)
    dof += idx.size - 3
    keep_idx.append(idx)
    if est.profile is not None:
      profiles[label] = est.curve(found, x, y)
    N_opt = float(10**found["x_opt"][0])
    D_opt = float(cb / F(N_opt))       # D* = C / F(N*): F(N*) D* = C.
    row = {
        "C": float(cb), "n_runs": int(idx.size), "n_sizes": int(n_sizes),
        "N_opt": N_opt, "D_opt": D_opt, "L_opt": float(found["L_opt"][0]),
        "F_at_N_opt": float(F(N_opt)),
        "compute_residual": float(F(N_opt) * D_opt / cb - 1.0),
        "N_range": [float(N[idx].min()), float(N[idx].max())],
        "D_range": [float(D[idx].min()), float(D[idx].max())],
        "minimum_inside": bool(found["inside"][0]),
    }
    if "coef" in found:
      row["coef_log10N"] = [float(v) for v in found["coef"][0]]
    rows.append(row)
  return rows, dropped, keep_idx, profiles, sq_resid, dof


def _check_args(scheme, on_edge, bootstrap, weighted):
  if scheme not in SCHEMES:
    raise ScalingDataError(f"scheme must be 'runs' or 'seed_noise', got {scheme!r}.")
  if on_edge not in ("drop", "keep"):
    raise ScalingDataError(f"on_edge must be 'drop' or 'keep', got {on_edge!r}.")
  if bootstrap < 0:
    raise ScalingDataError(f"bootstrap must be >= 0, got {bootstrap}.")
  if weighted and bootstrap < _MIN_BOOTSTRAP_FOR_WEIGHTS:
    raise ScalingDataError(
        f"weighted=True needs bootstrap >= {_MIN_BOOTSTRAP_FOR_WEIGHTS} to "
        f"estimate per-budget spreads; got {bootstrap}.")


def fit_isoflop(data, *, estimator: str = est_lib.DEFAULT_ESTIMATOR,
                estimator_options: Optional[Dict[str, Any]] = None,
                bootstrap: int = 1000, seed: int = 0, scheme: str = "runs",
                weighted: Optional[bool] = None,
                seed_noise_std: Optional[float] = None,
                on_edge: str = "drop", ci_level: float = 0.95,
                gap_decades: float = GAP_DECADES,
                flops_per_token=None) -> IsoflopFit:
  """Approach 2 on a Runs object or anything with N, loss, C and/or D (budget).

  Args:
    data: ``scaling.io.loaders.Runs`` or a dict / object with arrays N, loss, C and/or
      D, and optionally budget (NaN = unknown).
    estimator: a key of ``scaling.approach2.estimators.ESTIMATORS``.
    estimator_options: e.g. {'k': 7} for local_parabola.
    bootstrap: number of bootstrap replicates (0 = no intervals).
    seed: RNG seed for the bootstrap.
    scheme: 'runs' or 'seed_noise' (see module docstring).
    weighted: weighted power-law fit (default: scheme == 'seed_noise').
    seed_noise_std: stated loss-noise std for scheme='seed_noise' (default:
      measured from seed repeats, else residual-based; see scaling.approach2.seed_noise).
    on_edge: 'drop' (default) or 'keep' budgets whose minimum is at the edge.
    ci_level: central percentile interval level.
    gap_decades: grouping gap (decades of C) when no budget column exists.
    flops_per_token: F(N) (a callable or TokenFlops); default from the
      runs' own C / D (scaling.numerics.token_flops).
  """
  weighted = (scheme == "seed_noise") if weighted is None else bool(weighted)
  _check_args(scheme, on_edge, bootstrap, weighted)
  try:
    est = est_lib.get(estimator)
    est(np.zeros(3), np.ones(3), np.ones(3), **(estimator_options or {}))
  except ValueError as e:
    raise ScalingDataError(str(e)) from None
  opts = dict(estimator_options or {})
  N, D, C, loss, budget, filled = _prepare(data)
  F = flops_lib.resolve(flops_per_token, N, D, C)
  C_b, rule = group_budgets(C, budget, gap_decades)
  if budget is None:
    warnings.warn(f"IsoFLOP: {rule}.")
  xN = np.log10(N)
  rows, dropped, keep_idx, profiles, ss, dof = _budget_minima(
      est, opts, C_b, xN, N, D, loss, F, on_edge)
  _check_budget_count(rows, dropped)
  noise = None
  if scheme == "seed_noise":
    measured = noise_lib.pooled_std(noise_lib.repeat_groups(C_b, N, D, loss),
                                    loss)
    noise = noise_lib.resolve(seed_noise_std, measured, ss, dof)
  locate = lambda x, y, w: est(x, y, w, **opts)
  rep = boot_lib.replicate_minima(
      locate, [dict(x=xN[i], loss=loss[i]) for i in keep_idx], scheme,
      int(bootstrap), np.random.default_rng(seed),
      None if noise is None else noise.sigma)
  rows, rep = boot_lib.drop_unusable(rows, dropped, rep)
  _check_budget_count(rows, dropped)
  boot_lib.record(rows, rep, scheme)
  fit = boot_lib.power_laws(rows, rep, F, weighted, ci_level, int(bootstrap))
  return IsoflopFit(
      minima=rows, dropped=dropped, scheme=scheme, weighted=weighted,
      ci_level=float(ci_level), budget_rule=rule, noise=noise,
      estimator=est.name, estimator_options=opts, flops_per_token=F,
      n_bootstrap_requested=int(bootstrap), filled_6nd=filled,
      profiles={k: v for k, v in profiles.items()
                if k in {f"{r['C']:.3g}" for r in rows}}, **fit)


def _check_budget_count(rows, dropped):
  if not rows:
    raise ScalingDataError(
        "IsoFLOP: no usable budget (each needs >= 3 distinct sizes and a "
        f"minimum inside the grid); dropped: {dropped}.")
  if len(rows) < 2:
    raise ScalingDataError(
        f"IsoFLOP: only one usable budget (C={rows[0]['C']:.3g}); a power law "
        "in C needs >= 2 budgets (>= 3 for a meaningful interval).")
  if len(rows) < 3:
    warnings.warn("IsoFLOP: fewer than 3 usable budgets; the exponents are "
                  "exactly determined and their intervals are not meaningful.")
