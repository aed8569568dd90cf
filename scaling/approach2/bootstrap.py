"""Replicate per-budget minima for Approach-2 intervals and weights.

Two schemes, each re-running the budget's estimator on every replicate:

* ``runs``: resample the runs of each budget with replacement. A replicate
  minimum is kept wherever it falls (a vertex slightly outside the sampled
  sizes is honest sampling spread); the fraction outside is recorded per
  budget. A replicate in which any budget has no minimum (fewer than 3
  distinct sizes drawn, or a concave fit) is discarded and counted.
* ``seed_noise`` (Porian et al. 2024, arXiv:2406.19146, App., their
  ``vectorized_interp_with_seed_noise``): every loss gets independent
  Gaussian noise of the run-to-run sigma (``scaling.approach2.seed_noise``). A
  replicate whose minimum falls at the edge of the sampled sizes is invalid
  for that budget (as theirs); a budget with fewer than half valid
  replicates is unusable. Valid replicates of the budgets are paired by
  index up to the smallest valid count (their ``maybe_get_item``), so every
  replicate fit uses every budget.

``power_laws`` then fits N* = k_N C^a and D* = k_D C^b to the point
estimates and to every replicate (same weights), giving the percentile
intervals.

Each budget's replicate L* spread (``L_opt_sd``, the std over the replicates
kept) is recorded too: the noise of its minimum loss, for fits of L*(C).

Per-budget spread (the weights of the weighted fit, Porian et al.):
sigma_b = max(std(ln N*_b), 0.33 x mean ln-spacing of the budget's sizes) x
R / n_valid; the floor and the inflation are theirs (min_std_factor=0.33).
"""
from __future__ import annotations

import dataclasses
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from scaling.io.loaders import ScalingDataError
from scaling.numerics.intervals import percentile_interval
from scaling.numerics.loglinear import wls_line

_WARN_FRACTION = 0.05   # warn when more replicates than this fail / lie off-grid.
MIN_STD_FACTOR = 0.33   # Porian et al. 2024 min_std_factor.
LN10 = np.log(10.0)


@dataclasses.dataclass(frozen=True)
class Replicates:
  """Replicate ln N* per budget, aligned into (R', K) rows."""
  ln_N: np.ndarray            # (R', K)
  spread: np.ndarray          # (K,) sigma_b of ln N* (Porian floor/inflation)
  floor: np.ndarray           # (K,) the spread floor of each budget
  inflation: np.ndarray       # (K,) R / n_valid of each budget
  n_requested: int
  n_failed: int               # replicates discarded (runs) / unpaired (seed)
  edge_fraction: np.ndarray   # (K,) replicate minima outside/at the edge
  fail_fraction: np.ndarray   # (K,) replicates with no minimum
  unusable: List[int]         # budgets with < R/2 valid (seed_noise)
  L_opt_sd: np.ndarray        # (K,) std of the replicate L* over the kept ones


def _floor(x_sizes: np.ndarray) -> float:
  xs = np.unique(np.round(x_sizes, 9))
  return MIN_STD_FACTOR * float(np.mean(np.diff(xs))) * LN10 if xs.size > 1 else 0.0


def spread(values: np.ndarray, floor: float, inflation: float) -> float:
  """Porian et al.'s sigma_b: max(std, floor) x R / n_valid."""
  sd = float(np.std(values)) if values.size > 1 else float("nan")
  return max(sd, floor) * inflation


def replicate_minima(locate, budgets: Sequence[Dict[str, np.ndarray]],
                     scheme: str, R: int, rng: np.random.Generator,
                     sigma: Optional[float] = None) -> Replicates:
  """Replicates of every kept budget's ln N* (see module docstring).

  Args:
    locate: ``(x, y, w) -> dict(x_opt, ok, inside, ...)`` with options bound.
    budgets: per kept budget, dict(x=log10 N (n,), loss=(n,)).
    scheme: 'runs' or 'seed_noise'.
    R: replicates requested.
    sigma: loss noise std (seed_noise).
  """
  K = len(budgets)
  vals, oks, edges, Ls = [], [], [], []
  for b in budgets:
    n = b["x"].size
    if scheme == "runs":
      w = rng.multinomial(n, np.full(n, 1.0 / n), size=R).astype(np.float64)
      y = np.broadcast_to(b["loss"], (R, n))
    else:
      w = np.ones((R, n))
      y = b["loss"] + sigma * rng.standard_normal((R, n))
    out = locate(b["x"], y, w)
    vals.append(out["x_opt"] * LN10)
    Ls.append(out["L_opt"])
    oks.append(out["ok"])
    edges.append(out["ok"] & ~out["inside"])
  ok = np.stack(oks, 1) if K else np.zeros((R, 0), bool)
  edge = np.stack(edges, 1) if K else np.zeros((R, 0), bool)
  ln = np.stack(vals, 1) if K else np.zeros((R, 0))
  L = np.stack(Ls, 1) if K else np.zeros((R, 0))
  sd = lambda v: float(np.std(v)) if v.size > 1 else float("nan")
  fail_fraction = (~ok).mean(0)
  floor = np.array([_floor(b["x"]) for b in budgets])
  if scheme == "runs":
    rows = ok.all(1)
    infl = np.ones(K)
    sp = np.array([spread(ln[rows, k], floor[k], 1.0) for k in range(K)])
    edge_fraction = (edge[rows].mean(0) if rows.any()
                     else np.full(K, np.nan))
    return Replicates(ln[rows], sp, floor, infl, R, int((~rows).sum()),
                      edge_fraction, fail_fraction, [],
                      np.array([sd(L[rows, k]) for k in range(K)]))
  valid = ok & ~edge
  n_valid = valid.sum(0)
  unusable = [k for k in range(K) if n_valid[k] < R / 2]
  infl = R / np.maximum(n_valid, 1)
  sp = np.array([spread(ln[valid[:, k], k], floor[k], infl[k])
                 for k in range(K)])
  keep = [k for k in range(K) if k not in unusable]
  m = int(min((n_valid[k] for k in keep), default=0))
  paired = np.full((m, K), np.nan)
  for k in keep:
    paired[:, k] = ln[valid[:, k], k][:m]
  return Replicates(paired, sp, floor, infl, R, R - m, edge.mean(0),
                    fail_fraction, unusable,
                    np.array([sd(L[valid[:, k], k]) for k in range(K)]))


def drop_unusable(rows, dropped, rep):
  """Drops budgets the seed-noise bootstrap could not locate (< R/2 valid)."""
  if not rep.unusable:
    return rows, rep
  for k in rep.unusable:
    label = f"{rows[k]['C']:.3g}"
    dropped[label] = ("seed-noise bootstrap: fewer than half the replicates "
                      "have a minimum inside the sampled sizes")
    warnings.warn(f"IsoFLOP: dropping budget C={label}: {dropped[label]}.")
  keep = [k for k in range(len(rows)) if k not in rep.unusable]
  rows = [rows[k] for k in keep]
  rep = dataclasses.replace(
      rep, ln_N=rep.ln_N[:, keep], spread=rep.spread[keep],
      floor=rep.floor[keep], inflation=rep.inflation[keep],
      edge_fraction=rep.edge_fraction[keep],
      fail_fraction=rep.fail_fraction[keep], unusable=[],
      L_opt_sd=rep.L_opt_sd[keep])
  return rows, rep


def record(rows, rep, scheme):
  """Per-budget replicate diagnostics into the minima rows (and warnings)."""
  if rep.n_requested == 0:
    return
  what = ("outside the sampled sizes (kept)" if scheme == "runs"
          else "at the edge of the sampled sizes (replicate discarded)")
  for k, row in enumerate(rows):
    row["bootstrap_edge_fraction"] = float(rep.edge_fraction[k])
    row["bootstrap_fail_fraction"] = float(rep.fail_fraction[k])
    row["ln_N_opt_spread"] = float(rep.spread[k])
    row["L_opt_sd"] = float(rep.L_opt_sd[k])
    if rep.edge_fraction[k] > _WARN_FRACTION:
      warnings.warn(
          f"IsoFLOP bootstrap: budget C={row['C']:.3g}: the minimum lies "
          f"{what} in {100 * rep.edge_fraction[k]:.0f}% of replicates.")
  if rep.n_failed > _WARN_FRACTION * rep.n_requested:
    warnings.warn(f"IsoFLOP bootstrap: {rep.n_failed}/{rep.n_requested} "
                  "replicates had a budget without a usable minimum and were "
                  "discarded.")


def power_laws(rows, rep, F, weighted, ci_level, R) -> Dict[str, Any]:
  """a, b, k_N, k_D, their bootstrap draws and intervals."""
  logC = np.log(np.array([r["C"] for r in rows]))
  logN = np.log(np.array([r["N_opt"] for r in rows]))
  logD = np.log(np.array([r["D_opt"] for r in rows]))
  rep_N = rep.ln_N
  rep_D = logC - np.log(F(np.exp(rep_N))) if rep_N.size else rep_N
  K = len(rows)
  wN = wD = np.ones(K)
  if weighted:
    spread_D = np.array([spread(rep_D[:, k], rep.floor[k], rep.inflation[k])
                         for k in range(K)])
    if not (np.all(np.isfinite(rep.spread) & (rep.spread > 0)) and
            np.all(np.isfinite(spread_D) & (spread_D > 0))):
      raise ScalingDataError(
          "weighted=True: a budget's replicate spread could not be estimated "
          "(too few valid bootstrap replicates); use weighted=False.")
    wN, wD = 1.0 / rep.spread**2, 1.0 / spread_D**2   # Porian et al. 2024.
    for r, w in zip(rows, wN):
      r["weight"] = float(w / wN.sum())
    n_eff = float(wN.sum()**2 / (wN**2).sum())
    if n_eff < K / 2:
      warnings.warn(
          f"IsoFLOP: the weighted fit rests on n_eff = {n_eff:.1f} of {K} "
          "budgets (weights 1/sigma_b^2 differ widely); compare it with the "
          "unweighted fit (weighted=False).")
  a, log_k_N = wls_line(logC, logN, wN)   # Hoffmann 2022 Sec. 3.2: N_opt ∝ C^a
  b, log_k_D = wls_line(logC, logD, wD)   # Hoffmann 2022 Sec. 3.2: D_opt ∝ C^b
  samples = {k: np.empty(0) for k in ("a", "b", "log_k_N", "log_k_D")}
  ci: Dict[str, Tuple[float, float]] = {}
  if rep_N.shape[0]:
    sa, si_N = wls_line(logC, rep_N, np.broadcast_to(wN, rep_N.shape))
    sb, si_D = wls_line(logC, rep_D, np.broadcast_to(wD, rep_D.shape))
    ok = np.isfinite(sa) & np.isfinite(sb)
    samples = {"a": sa[ok], "b": sb[ok], "log_k_N": si_N[ok],
               "log_k_D": si_D[ok]}
    for name, s in (("a", sa), ("b", sb), ("k_N", np.exp(si_N)),
                    ("k_D", np.exp(si_D))):
      ci[name] = percentile_interval(s[ok], ci_level)
  n_failed = R - int(samples["a"].size) if R else 0
  n_eff = float(wN.sum()**2 / (wN**2).sum())
  return dict(a=float(a), b=float(b), k_N=float(np.exp(log_k_N)), n_eff=n_eff,
              k_D=float(np.exp(log_k_D)), samples=samples, ci=ci,
              n_failed_replicates=n_failed)
