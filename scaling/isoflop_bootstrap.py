"""Replicate per-budget minima for Approach-2 intervals and weights.

Two schemes, each re-running the budget's estimator on every replicate:

* ``runs``: resample the runs of each budget with replacement. A replicate
  minimum is kept wherever it falls (a vertex slightly outside the sampled
  sizes is honest sampling spread); the fraction outside is recorded per
  budget. A replicate in which any budget has no minimum (fewer than 3
  distinct sizes drawn, or a concave fit) is discarded and counted.
* ``seed_noise`` (Porian et al. 2024, arXiv:2406.19146, App., their
  ``vectorized_interp_with_seed_noise``): every loss gets independent
  Gaussian noise of the run-to-run sigma (``scaling.seed_noise``). A
  replicate whose minimum falls at the edge of the sampled sizes is invalid
  for that budget (as theirs); a budget with fewer than half valid
  replicates is unusable. Valid replicates of the budgets are paired by
  index up to the smallest valid count (their ``maybe_get_item``), so every
  replicate fit uses every budget.

Per-budget spread (the weights of the weighted fit, Porian et al.):
sigma_b = max(std(ln N*_b), 0.33 x mean ln-spacing of the budget's sizes) x
R / n_valid; the floor and the inflation are theirs (min_std_factor=0.33).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

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
  vals, oks, edges = [], [], []
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
    oks.append(out["ok"])
    edges.append(out["ok"] & ~out["inside"])
  ok = np.stack(oks, 1) if K else np.zeros((R, 0), bool)
  edge = np.stack(edges, 1) if K else np.zeros((R, 0), bool)
  ln = np.stack(vals, 1) if K else np.zeros((R, 0))
  fail_fraction = (~ok).mean(0)
  floor = np.array([_floor(b["x"]) for b in budgets])
  if scheme == "runs":
    rows = ok.all(1)
    infl = np.ones(K)
    sp = np.array([spread(ln[rows, k], floor[k], 1.0) for k in range(K)])
    edge_fraction = (edge[rows].mean(0) if rows.any()
                     else np.full(K, np.nan))
    return Replicates(ln[rows], sp, floor, infl, R, int((~rows).sum()),
                      edge_fraction, fail_fraction, [])
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
                    fail_fraction, unusable)


def summary(rep: Replicates) -> Dict[str, Any]:
  return {"n_bootstrap_requested": rep.n_requested,
          "n_bootstrap_ok": int(rep.ln_N.shape[0]),
          "n_bootstrap_failed": rep.n_failed}
