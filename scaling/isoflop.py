"""Chinchilla Approach 2: IsoFLOP profiles (Hoffmann et al. 2022, Sec. 3.2).

For every compute budget C a parabola is fitted to the final loss as a
function of log10 N (and, separately, of log10 D); its vertex gives N*(C),
D*(C) and L*(C). The power laws N* = k_N C^a and D* = k_D C^b are then fitted
by least squares in log space.

Rules (all explicit, none silent):
  * A budget with fewer than 3 distinct sizes, non-positive curvature, or a
    vertex outside the open interval (smallest, largest sampled size) of its
    parabola (in N or in D) is dropped with a ``warnings.warn`` naming it
    (``on_edge='keep'`` keeps off-grid vertices, as the plain Hoffmann recipe
    does). A budget is dropped for a and b alike so both use the same set.
  * Fewer than 2 usable budgets is an error; fewer than 3 warns that the
    interval is not meaningful.
  * Budgets come from ``budget`` when every value is finite; otherwise runs
    are grouped by gaps in log10 C (``scaling.budgets.group_budgets``, whose
    docstring gives the rule and its justification) and a warning says so.

Intervals (percentile, ``ci_level``, seeded):
  * ``scheme='runs'``: resample runs with replacement within each budget,
    refit every parabola and the power law (the same estimator, drop rules
    included, except as described under "Replicates" below).
  * ``scheme='seed_noise'`` (in the spirit of Porian et al. 2024, "Resolving
    discrepancies in compute-optimal scaling of language models",
    arXiv:2406.19146, which bootstraps with seed-noise-perturbed losses and
    weights budgets by the uncertainty of N*; they locate N* by interpolation,
    we keep the parabola vertex): every loss gets independent Gaussian noise
    of std ``seed_noise_std`` (default: pooled residual std of the point-
    estimate parabolas, sqrt(sum r^2 / sum (n_b - 3)), an upper bound on seed
    noise when the parabola is misspecified), and parabolas are refit.
  * ``weighted=True`` (either scheme): the power law is fitted by weighted
    least squares with budget weights 1 / Var(log N*_b) (1 / Var(log D*_b) for
    b), the variances taken over the bootstrap replicates; the same weights are
    used for the point estimate and every replicate.
  * Replicates use exactly the budgets kept by the point fit, with their
    vertices kept wherever they fall (on_edge='keep'): a replicate vertex
    slightly outside the sampled sizes is honest sampling spread, and
    dropping it would change the budget set between replicates. The fraction
    of replicates whose vertex (in N or D) fell outside the grid is recorded
    per budget as ``bootstrap_edge_fraction`` (warned above 5%). A replicate
    in which any kept budget has no convex parabola (fewer than 3 distinct
    sizes drawn, or curvature <= 0) is discarded and counted in
    ``n_failed_replicates``.
"""
from __future__ import annotations

import dataclasses
import warnings
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from scaling.budgets import GAP_DECADES, group_budgets  # noqa: F401 (re-export)
from scaling.data import ScalingDataError, complete_6nd

_MIN_BOOTSTRAP_FOR_WEIGHTS = 20
_WARN_FRACTION = 0.05   # warn when more replicates than this fail / lie off-grid.


def power_law_predict(k_N, a, k_D, b, C) -> Dict[str, np.ndarray]:
  """N* = k_N C^a, D* = k_D C^b and D*/N* (Hoffmann 2022 Eq. 3 form)."""
  C = np.asarray(C, dtype=np.float64)
  N_opt, D_opt = k_N * C**a, k_D * C**b
  return {"N_opt": N_opt, "D_opt": D_opt, "tokens_per_param": D_opt / N_opt}


def power_law_bands(samples: Dict[str, np.ndarray], ci_level: float, C
                    ) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
  """Percentile bands of N*, D*, D*/N* at C from bootstrap draws of
  (a, log k_N, b, log k_D); NaN bands when there are no draws."""
  if samples["a"].size == 0:
    nan = np.full(np.shape(C), np.nan)
    return {k: (nan, nan) for k in ("N_opt", "D_opt", "tokens_per_param")}
  logC = np.log(np.asarray(C, dtype=np.float64))[..., None]
  q = 50.0 * (1.0 - ci_level), 50.0 * (1.0 + ci_level)
  draws = {name: np.exp(samples[icpt] + samples[slope] * logC)
           for name, slope, icpt in (("N_opt", "a", "log_k_N"),
                                     ("D_opt", "b", "log_k_D"))}
  draws["tokens_per_param"] = draws["D_opt"] / draws["N_opt"]
  return {k: tuple(np.nanpercentile(v, q, axis=-1)) for k, v in draws.items()}


@dataclasses.dataclass(frozen=True)
class IsoflopFit:
  """Result of Approach 2. Exponents: N* = k_N C^a, D* = k_D C^b."""
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
  seed_noise_std: Optional[float]
  n_failed_replicates: int
  filled_6nd: Dict[str, int] = dataclasses.field(default_factory=dict)

  def predict(self, C) -> Dict[str, np.ndarray]:
    """N*, D*, D*/N* at budgets C from the fitted power laws."""
    return power_law_predict(self.k_N, self.a, self.k_D, self.b, C)

  def predict_ci(self, C) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    """Percentile bands of N*, D*, D*/N* at C from the bootstrap draws."""
    return power_law_bands(self.samples, self.ci_level, C)

  def to_dict(self) -> Dict[str, Any]:
    return {
        "a": self.a, "b": self.b, "k_N": self.k_N, "k_D": self.k_D,
        "ci": {k: [float(v[0]), float(v[1])] for k, v in self.ci.items()},
        "ci_level": self.ci_level, "scheme": self.scheme,
        "weighted": self.weighted, "n_bootstrap": int(self.samples["a"].size),
        "n_failed_replicates": self.n_failed_replicates,
        "filled_6nd": dict(self.filled_6nd),
        "seed_noise_std": self.seed_noise_std,
        "budget_rule": self.budget_rule,
        "minima": self.minima, "dropped": self.dropped,
    }


def _column(data, name: str) -> Optional[np.ndarray]:
  if isinstance(data, dict):
    value = data.get(name)
  else:
    value = getattr(data, name, None)
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


def _parabolas(x: np.ndarray, y: np.ndarray, w: np.ndarray):
  """Weighted quadratic least squares for many replicates at once.

  Args:
    x: (n,) log10 sizes of one budget; y: (R, n) or (n,) losses;
    w: (R, n) replicate weights (bootstrap counts).
  Returns:
    coef (R, 3) [c2, c1, c0] in uncentred x, vertex (R,), L_min (R,),
    ok (R,) (>= 3 distinct sizes, curvature > 0), inside (R,) (vertex strictly
    within the sampled range).
  """
  xbar = x.mean()
  xc = x - xbar
  y = np.broadcast_to(y, w.shape)
  S = np.stack([(w * xc**k).sum(-1) for k in range(5)], -1)        # (R, 5)
  T = np.stack([(w * xc**k * y).sum(-1) for k in (2, 1, 0)], -1)  # (R, 3)
  M = np.stack([S[:, [4, 3, 2]], S[:, [3, 2, 1]], S[:, [2, 1, 0]]], -2)
  _, inv_sizes = np.unique(np.round(x, 9), return_inverse=True)
  present = np.zeros((w.shape[0], inv_sizes.max() + 1))
  np.add.at(present.T, inv_sizes, (w > 0).T.astype(np.float64))
  enough = (present > 0).sum(-1) >= 3
  M = np.where(enough[:, None, None], M, np.eye(3))
  c = np.linalg.solve(M, T[..., None])[..., 0]                    # centred
  c2, c1, c0 = c[:, 0], c[:, 1], c[:, 2]
  ok = enough & (c2 > 0)
  safe_c2 = np.where(ok, c2, 1.0)
  # Hoffmann 2022 Sec. 3.2: a parabola per IsoFLOP profile, optimum at vertex.
  v_c = -c1 / (2.0 * safe_c2)  # vertex of c2 x^2 + c1 x + c0
  L_min = c0 - c1**2 / (4.0 * safe_c2)
  xs = np.where(w > 0, x, np.nan)
  inside = (v_c + xbar > np.nanmin(xs, -1)) & (v_c + xbar < np.nanmax(xs, -1))
  coef = np.stack([c2, c1 - 2 * c2 * xbar, c0 - c1 * xbar + c2 * xbar**2], -1)
  return coef, v_c + xbar, L_min, ok, inside


def wls_line(x: np.ndarray, y: np.ndarray, w: np.ndarray):
  """Weighted least-squares line y = icpt + slope x, batched over rows of y, w.

  Entries with w == 0 are ignored (they may be NaN); a row with no weight
  gives NaN. Shared by Approaches 1 and 2.
  """
  with np.errstate(divide="ignore", invalid="ignore"):  # empty replicates -> NaN
    sw = w.sum(-1)
    xm = (w * x).sum(-1) / sw
    ym = (w * np.where(w > 0, y, 0.0)).sum(-1) / sw
    dx = x - xm[..., None]
    dy = np.where(w > 0, y - ym[..., None], 0.0)
    slope = (w * dx * dy).sum(-1) / (w * dx**2).sum(-1)
    return slope, ym - slope * xm


def fit_isoflop(data, *, bootstrap: int = 1000, seed: int = 0,
                scheme: str = "runs", weighted: bool = False,
                seed_noise_std: Optional[float] = None,
                on_edge: str = "drop", ci_level: float = 0.95,
                gap_decades: float = GAP_DECADES) -> IsoflopFit:
  """Approach 2 on a Runs object or anything with N, loss, C and/or D (budget).

  Args:
    data: ``scaling.data.Runs`` or a dict / object with arrays N, loss, C and/or
      D, and optionally budget (NaN = unknown).
    bootstrap: number of bootstrap replicates (0 = no intervals).
    seed: RNG seed for the bootstrap.
    scheme: 'runs' or 'seed_noise' (see module docstring).
    weighted: inverse-variance weighted power-law fit (needs bootstrap >= 20).
    seed_noise_std: loss noise std for scheme='seed_noise' (default estimated).
    on_edge: 'drop' (default) or 'keep' budgets whose vertex is off-grid.
    ci_level: central percentile interval level.
    gap_decades: grouping gap (decades of C) when no budget column exists.
  """
  if scheme not in ("runs", "seed_noise"):
    raise ScalingDataError(f"scheme must be 'runs' or 'seed_noise', got {scheme!r}.")
  if on_edge not in ("drop", "keep"):
    raise ScalingDataError(f"on_edge must be 'drop' or 'keep', got {on_edge!r}.")
  if bootstrap < 0:
    raise ScalingDataError(f"bootstrap must be >= 0, got {bootstrap}.")
  if weighted and bootstrap < _MIN_BOOTSTRAP_FOR_WEIGHTS:
    raise ScalingDataError(
        f"weighted=True needs bootstrap >= {_MIN_BOOTSTRAP_FOR_WEIGHTS} to "
        f"estimate per-budget variances; got {bootstrap}.")
  N, D, C, loss, budget, filled = _prepare(data)
  C_b, rule = group_budgets(C, budget, gap_decades)
  if budget is None:
    warnings.warn(f"IsoFLOP: {rule}.")
  xN, xD = np.log10(N), np.log10(D)

  # Point estimate, budget by budget.
  rows, dropped, keep_idx = [], {}, []
  sq_resid, dof = 0.0, 0
  for cb in np.unique(C_b):
    idx = np.flatnonzero(C_b == cb)
    label = f"{cb:.3g}"
    one = np.ones((1, idx.size))
    fN = _parabolas(xN[idx], loss[idx], one)
    fD = _parabolas(xD[idx], loss[idx], one)
    n_sizes = np.unique(np.round(xN[idx], 9)).size
    if n_sizes < 3:
      dropped[label] = f"only {n_sizes} distinct model size(s); need >= 3"
    elif not (fN[3][0] and fD[3][0]):
      dropped[label] = "parabola has non-positive curvature"
    elif on_edge == "drop" and not (fN[4][0] and fD[4][0]):
      dropped[label] = "vertex outside the sampled size range"
    if label in dropped:
      warnings.warn(f"IsoFLOP: dropping budget C={label}: {dropped[label]}.")
      continue
    keep_idx.append(idx)
    resid = loss[idx] - np.polyval(fN[0][0], xN[idx])
    sq_resid += float(resid @ resid)
    dof += idx.size - 3
    rows.append({
        "C": float(cb), "n_runs": int(idx.size), "n_sizes": int(n_sizes),
        "N_opt": float(10**fN[1][0]), "D_opt": float(10**fD[1][0]),
        "L_opt": float(fN[2][0]), "L_opt_D": float(fD[2][0]),
        "coef_log10N": [float(v) for v in fN[0][0]],
        "coef_log10D": [float(v) for v in fD[0][0]],
        "N_range": [float(N[idx].min()), float(N[idx].max())],
        "D_range": [float(D[idx].min()), float(D[idx].max())],
        "vertex_inside_N": bool(fN[4][0]), "vertex_inside_D": bool(fD[4][0]),
    })
  if not rows:
    raise ScalingDataError(
        "IsoFLOP: no usable budget (each needs >= 3 distinct sizes and a "
        f"convex parabola with its vertex inside the grid); dropped: {dropped}.")
  if len(rows) < 2:
    raise ScalingDataError(
        f"IsoFLOP: only one usable budget (C={rows[0]['C']:.3g}); a power law "
        "in C needs >= 2 budgets (>= 3 for a meaningful interval).")
  if len(rows) < 3:
    warnings.warn("IsoFLOP: fewer than 3 usable budgets; the exponents are "
                  "exactly determined and their intervals are not meaningful.")

  logC = np.log(np.array([r["C"] for r in rows]))
  logN = np.log(np.array([r["N_opt"] for r in rows]))
  logD = np.log(np.array([r["D_opt"] for r in rows]))
  sigma = None
  if scheme == "seed_noise":
    if seed_noise_std is None and dof == 0:
      raise ScalingDataError(
          "scheme='seed_noise' cannot estimate the noise from budgets with "
          "exactly 3 runs each; pass seed_noise_std.")
    # Pooled residual variance of the per-budget quadratic fits (n_b - 3 dof).
    sigma = (float(seed_noise_std) if seed_noise_std is not None
             else float(np.sqrt(sq_resid / dof)))

  # Bootstrap: replicate vertices per budget, (R, K) arrays.
  R, K = int(bootstrap), len(rows)
  rep_N = np.full((R, K), np.nan)
  rep_D = np.full((R, K), np.nan)
  off_grid = np.zeros((R, K), bool)
  not_convex = np.zeros((R, K), bool)
  rng = np.random.default_rng(seed)
  for k, idx in enumerate(keep_idx):
    if R == 0:
      break
    n = idx.size
    if scheme == "runs":
      w = rng.multinomial(n, np.full(n, 1.0 / n), size=R).astype(np.float64)
      y = loss[idx]
    else:
      w = np.ones((R, n))
      y = loss[idx] + sigma * rng.standard_normal((R, n))
    for x, out in ((xN[idx], rep_N), (xD[idx], rep_D)):
      # Replicates keep off-grid vertices (see module docstring).
      _, v, _, ok, inside = _parabolas(x, y, w)
      out[:, k] = np.where(ok, v * np.log(10.0), np.nan)
      off_grid[:, k] |= ok & ~inside
      not_convex[:, k] |= ~ok
  rep_ok = np.isfinite(rep_N).all(-1) & np.isfinite(rep_D).all(-1)
  if R > 0:
    for k, row in enumerate(rows):
      frac = float(off_grid[rep_ok, k].mean()) if rep_ok.any() else float("nan")
      row["bootstrap_edge_fraction"] = frac
      row["bootstrap_fail_fraction"] = float(not_convex[:, k].mean())
      if frac > _WARN_FRACTION:
        warnings.warn(
            f"IsoFLOP bootstrap: budget C={row['C']:.3g}: the vertex lies "
            f"outside the sampled sizes in {100 * frac:.0f}% of replicates "
            "(kept; the interval reflects it).")

  wN = np.ones(K)
  wD = np.ones(K)
  if weighted:
    var_N = np.var(rep_N[rep_ok], axis=0, ddof=1)
    var_D = np.var(rep_D[rep_ok], axis=0, ddof=1)
    if not (np.all(np.isfinite(var_N) & (var_N > 0)) and
            np.all(np.isfinite(var_D) & (var_D > 0))):
      raise ScalingDataError(
          "weighted=True: a budget's vertex variance could not be estimated "
          "(too few valid bootstrap replicates); use weighted=False.")
    wN, wD = 1.0 / var_N, 1.0 / var_D
  a, log_k_N = wls_line(logC, logN, wN)   # Hoffmann 2022 Sec. 3.2: N_opt ∝ C^a
  b, log_k_D = wls_line(logC, logD, wD)   # Hoffmann 2022 Sec. 3.2: D_opt ∝ C^b

  samples = {k: np.empty(0) for k in ("a", "b", "log_k_N", "log_k_D")}
  ci: Dict[str, Tuple[float, float]] = {}
  n_failed = 0
  if R > 0:
    sa, si_N = wls_line(logC, rep_N, rep_ok[:, None] * wN)
    sb, si_D = wls_line(logC, rep_D, rep_ok[:, None] * wD)
    valid = rep_ok & np.isfinite(sa) & np.isfinite(sb)
    n_failed = int((~valid).sum())
    if n_failed > _WARN_FRACTION * R:
      warnings.warn(f"IsoFLOP bootstrap: {n_failed}/{R} replicates had a "
                    "budget without a convex parabola and were discarded.")
    samples = {"a": sa[valid], "b": sb[valid],
               "log_k_N": si_N[valid], "log_k_D": si_D[valid]}
    q = 50.0 * (1.0 - ci_level), 50.0 * (1.0 + ci_level)
    if valid.any():
      for name, s in (("a", sa), ("b", sb), ("k_N", np.exp(si_N)),
                      ("k_D", np.exp(si_D))):
        lo, hi = np.percentile(s[valid], q)
        ci[name] = (float(lo), float(hi))

  return IsoflopFit(
      a=float(a), b=float(b), k_N=float(np.exp(log_k_N)),
      k_D=float(np.exp(log_k_D)), minima=rows, dropped=dropped, ci=ci,
      samples=samples, scheme=scheme, weighted=bool(weighted),
      ci_level=float(ci_level), budget_rule=rule, seed_noise_std=sigma,
      n_failed_replicates=n_failed, filled_6nd=filled)
