"""Chinchilla Approach 1: minimum over training curves (Hoffmann et al. 2022,
Sec. 3.1).

Procedure (every choice explicit):
  1. Smoothing: each curve's loss is a centred moving average over
     ``smooth_window`` consecutive records (the window shrinks at the ends);
     curves with fewer than 2 * smooth_window records are not smoothed.
  2. Interpolation: loss is linearly interpolated in log C (and log D in
     log C) onto ``n_grid`` log-spaced FLOP values (1500, as Hoffmann) spanning
     all curves; a curve is only defined between its first and last record
     (no extrapolation).
  3. Envelope: at each grid C, the lowest loss over the runs defined there;
     the winning run gives N (its size) and D (its tokens at that C).
  4. A grid C is ignored when (a) fewer than 2 runs are defined there, (b) the
     winner has seen less than ``min_token_fraction`` of its final tokens (its
     very first points: warm-up transients, and under a decaying schedule far
     from its end-of-schedule loss), or (c) ``drop_edge_sizes`` and the winner
     is the smallest or largest model among the runs defined at that C (the
     true optimum may lie outside the sampled sizes).
  5. N* = k_N C^a and D* = k_D C^b by ordinary least squares of log N_env and
     log D_env on log C over the kept grid points (uniform weight per grid
     point, i.e. per unit of log C).
  6. Optional bootstrap over runs (resample runs with replacement, redo 3-5;
     percentile interval), vectorised in chunks.
"""
from __future__ import annotations

import dataclasses
import warnings
from typing import Any, Dict, Tuple

import numpy as np

from scaling.io.curves import Curves
from scaling.io.loaders import ScalingDataError
from scaling.numerics import loglinear
from scaling.numerics.loglinear import wls_line

_CHUNK = 16


@dataclasses.dataclass(frozen=True)
class EnvelopeFit:
  """Result of Approach 1. N* = k_N C^a, D* = k_D C^b."""
  a: float
  b: float
  k_N: float
  k_D: float
  ci: Dict[str, Tuple[float, float]]
  samples: Dict[str, np.ndarray]
  C_grid: np.ndarray          # (G,)
  L_env: np.ndarray           # (G,) envelope loss (NaN where < 1 run)
  N_env: np.ndarray           # (G,) size of the winning run
  D_env: np.ndarray           # (G,) tokens of the winning run at C
  winner: np.ndarray          # (G,) index into curves (-1 where none)
  valid: np.ndarray           # (G,) bool: grid points used in the fit
  run_ids: Tuple[str, ...]
  settings: Dict[str, Any]
  n_failed_replicates: int = 0  # bootstrap replicates with no usable fit.

  def predict(self, C) -> Dict[str, np.ndarray]:
    return loglinear.power_law_predict(self.k_N, self.a, self.k_D, self.b, C)

  def predict_ci(self, C) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    """Percentile bands of N*, D*, D*/N* at C from the bootstrap draws."""
    return loglinear.power_law_bands(self.samples, self.settings["ci_level"],
                                       C)

  def to_dict(self) -> Dict[str, Any]:
    won = self.winner[self.valid]
    ids, counts = np.unique(won, return_counts=True)
    Cv = self.C_grid[self.valid]
    return {
        "a": self.a, "b": self.b, "k_N": self.k_N, "k_D": self.k_D,
        "ci": {k: [float(v[0]), float(v[1])] for k, v in self.ci.items()},
        "n_bootstrap": int(self.samples["a"].size),
        "n_bootstrap_requested": int(self.settings.get("bootstrap", 0)),
        "n_failed_replicates": self.n_failed_replicates,
        "n_curves": len(self.run_ids), "n_grid": int(self.C_grid.size),
        "n_grid_used": int(self.valid.sum()),
        "C_range_used": [float(Cv.min()), float(Cv.max())],
        "winners": [{"run_id": self.run_ids[i],
                     "N": float(self.N_env[self.winner == i][0]),
                     "n_grid_points": int(c)} for i, c in zip(ids, counts)],
        "settings": self.settings,
    }


def _smooth(loss: np.ndarray, window: int) -> np.ndarray:
  if window <= 1 or loss.size < 2 * window:
    return loss
  half = window // 2
  csum = np.r_[0.0, np.cumsum(loss)]
  i = np.arange(loss.size)
  lo, hi = np.maximum(i - half, 0), np.minimum(i + half + 1, loss.size)
  return (csum[hi] - csum[lo]) / (hi - lo)  # centred moving average


def _grid_matrices(curves: Curves, n_grid: int, smooth_window: int):
  """Interpolated loss, log D and token fraction, each (R, G), NaN outside."""
  first = np.array([np.log(c.C[0]) for c in curves])
  last = np.array([np.log(c.C[-1]) for c in curves])
  logG = np.linspace(first.min(), last.max(), n_grid)
  R = len(curves)
  L = np.full((R, n_grid), np.nan)
  logD = np.full((R, n_grid), np.nan)
  for r, c in enumerate(curves):
    logC = np.log(c.C)
    keep = np.r_[True, np.diff(logC) > 0]  # strictly increasing C for interp
    inside = (logG >= logC[0]) & (logG <= logC[-1])
    smooth = _smooth(c.loss, smooth_window)
    L[r, inside] = np.interp(logG[inside], logC[keep], smooth[keep])
    logD[r, inside] = np.interp(logG[inside], logC[keep], np.log(c.D)[keep])
  frac = np.exp(logD - np.array([np.log(c.D[-1]) for c in curves])[:, None])
  return logG, L, logD, frac


def _envelope(L, frac, logN, include, min_token_fraction, drop_edge_sizes):
  """Envelope for a batch of run subsets.

  Args: L, frac (R, G); logN (R,); include (B, R) bool.
  Returns: winner (B, G) int, valid (B, G) bool.
  """
  present = np.isfinite(L)[None] & include[:, :, None]           # (B, R, G)
  Lb = np.where(present, L[None], np.inf)
  winner = np.argmin(Lb, axis=1)                                  # (B, G)
  cols = np.arange(L.shape[1])
  valid = present.sum(1) >= 2
  valid &= frac[winner, cols] >= min_token_fraction
  if drop_edge_sizes:
    nb = np.where(present, logN[None, :, None], np.nan)
    with warnings.catch_warnings():
      warnings.simplefilter("ignore", RuntimeWarning)
      lo, hi = np.nanmin(nb, 1), np.nanmax(nb, 1)
    valid &= (logN[winner] > lo) & (logN[winner] < hi)
  return winner, valid


def _distinct_winners(winner: np.ndarray, valid: np.ndarray) -> np.ndarray:
  """(B,) number of distinct winning runs over each replicate's valid points."""
  w = np.where(valid, winner, -1)
  w.sort(axis=1)
  new = (np.diff(w, axis=1) != 0) & (w[:, 1:] >= 0)
  return new.sum(1) + (w[:, :1] >= 0).sum(1)


def _bootstrap(L, frac, logN, logD, logG, bootstrap: int, seed: int,
               ci_level: float, min_token_fraction: float,
               drop_edge_sizes: bool):
  """Step 6: (samples, ci, n_failed) of ``bootstrap`` replicates that resample
  the runs with replacement and redo steps 3-5 (``_CHUNK`` replicates at a
  time); percentile intervals at ``ci_level``. Replicates without a usable
  envelope are discarded with a warning."""
  samples = {k: np.empty(0) for k in ("a", "b", "log_k_N", "log_k_D")}
  ci: Dict[str, Tuple[float, float]] = {}
  if not bootstrap > 0:
    return samples, ci, 0
  R, cols = L.shape[0], np.arange(L.shape[1])
  rng = np.random.default_rng(seed)
  draws = {k: [] for k in samples}
  for start in range(0, bootstrap, _CHUNK):
    B = min(_CHUNK, bootstrap - start)
    idx = rng.integers(0, R, size=(B, R))
    include = np.zeros((B, R), bool)
    include[np.arange(B)[:, None], idx] = True
    wb, vb = _envelope(L, frac, logN, include, min_token_fraction,
                       drop_edge_sizes)
    # As the point fit: an envelope won by fewer than 2 distinct runs
    # determines no power law (its slope would be 0 by construction).
    vb &= (_distinct_winners(wb, vb) >= 2)[:, None]
    vw = vb.astype(np.float64)
    sa, si_N = wls_line(logG, logN[wb], vw)
    sb, si_D = wls_line(logG, logD[wb, cols], vw)
    for k, v in zip(samples, (sa, sb, si_N, si_D)):
      draws[k].append(v)
  samples = {k: np.concatenate(v) for k, v in draws.items()}
  ok = np.isfinite(samples["a"]) & np.isfinite(samples["b"])
  n_failed = int((~ok).sum())
  if n_failed:
    warnings.warn(
        f"Approach 1 bootstrap: {n_failed}/{bootstrap} replicates had no "
        "usable envelope (fewer than 2 valid grid points, or won by fewer "
        "than 2 distinct runs) and were discarded.")
  samples = {k: v[ok] for k, v in samples.items()}
  q = 50.0 * (1.0 - ci_level), 50.0 * (1.0 + ci_level)
  if ok.any():
    for name, s in (("a", samples["a"]), ("b", samples["b"]),
                    ("k_N", np.exp(samples["log_k_N"])),
                    ("k_D", np.exp(samples["log_k_D"]))):
      lo, hi = np.percentile(s, q)
      ci[name] = (float(lo), float(hi))
  return samples, ci, n_failed


def fit_envelope(curves: Curves, *, n_grid: int = 1500, smooth_window: int = 5,
                 min_token_fraction: float = 0.1, drop_edge_sizes: bool = True,
                 bootstrap: int = 0, seed: int = 0,
                 ci_level: float = 0.95) -> EnvelopeFit:
  """Approach 1 on a set of training curves (see module docstring)."""
  if len(curves) < 2:
    raise ScalingDataError("Approach 1 needs at least 2 training curves.")
  if len({c.N for c in curves}) < 2 + 2 * bool(drop_edge_sizes):
    raise ScalingDataError(
        "Approach 1 needs curves of at least "
        f"{2 + 2 * bool(drop_edge_sizes)} distinct model sizes.")
  logG, L, logD, frac = _grid_matrices(curves, n_grid, smooth_window)
  logN = np.log(np.array([c.N for c in curves]))
  R = len(curves)
  cols = np.arange(n_grid)
  winner, valid = _envelope(L, frac, logN, np.ones((1, R), bool),
                            min_token_fraction, drop_edge_sizes)
  winner, valid = winner[0], valid[0]
  if len(np.unique(winner[valid])) < 2:
    raise ScalingDataError(
        "Approach 1: the envelope is won by fewer than 2 distinct runs over "
        "the usable FLOP range; the curves cannot determine a power law.")
  y_N = logN[winner]
  y_D = logD[winner, cols]
  w = valid.astype(np.float64)
  a, icpt_N = wls_line(logG, y_N, w)  # Hoffmann 2022 Sec. 3.1: N_opt ∝ C^a
  b, icpt_D = wls_line(logG, y_D, w)  # Hoffmann 2022 Sec. 3.1: D_opt ∝ C^b

  samples, ci, n_failed = _bootstrap(
      L, frac, logN, logD, logG, bootstrap, seed, ci_level,
      min_token_fraction, drop_edge_sizes)

  any_run = np.isfinite(L).any(0)
  L_env = np.where(any_run, np.where(np.isfinite(L), L, np.inf).min(0), np.nan)
  return EnvelopeFit(
      a=float(a), b=float(b), k_N=float(np.exp(icpt_N)), k_D=float(np.exp(icpt_D)),
      ci=ci, samples=samples, C_grid=np.exp(logG), L_env=L_env,
      N_env=np.where(any_run, np.exp(y_N), np.nan),
      D_env=np.where(any_run, np.exp(y_D), np.nan),
      winner=np.where(any_run, winner, -1), valid=valid,
      run_ids=tuple(c.run_id for c in curves),
      settings={"n_grid": n_grid, "smooth_window": smooth_window,
                "min_token_fraction": min_token_fraction,
                "drop_edge_sizes": drop_edge_sizes, "ci_level": ci_level,
                "seed": seed, "bootstrap": int(bootstrap)},
      n_failed_replicates=n_failed)
