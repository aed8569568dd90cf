"""Speed of the Approach-3 fit: our batched JAX L-BFGS vs a scipy loop.

Runs, in one process and on the same data:
  1. scaling.approach3.parametric.fit_parametric over Hoffmann's 4500-point grid
     (cold = including JIT compilation, then warm). It prunes the starts by
     successive halving (parametric._fit_from), so it is NOT like-for-like
     with scipy, which runs every start to its own stop; --no-prune-too also
     times prune=False (every start run to its own stop, as scipy does);
  2. scaling.approach3.bootstrap.bootstrap_parametric with --n-resamples refits;
  3. scipy.optimize.minimize(L-BFGS-B, analytic gradient) from each grid
     start, one at a time (the procedure of Besiroglu et al. 2024). With
     --scipy-starts K < 4500 it runs K evenly spaced starts and extrapolates
     the time linearly to 4500 (stated in the output).

The best objectives of JAX and scipy are compared: JAX over the full grid
must be no worse than scipy by more than 1e-6 relative (exit code 1 if it
is); if scipy ran all 4500 starts they must agree to 1e-6 relative.

Usage:
  python -m benchmarks.fit_speed [--dataset chinchilla_epoch]
      [--n-resamples 4000] [--scipy-starts 300] [--no-prune-too]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

_REL_TOL = 1e-6  # agreement of the best objectives (relative).

from scaling.approach3 import bootstrap
from scaling.io import loaders as data_lib
from scaling.approach3 import parametric
from scaling.diagnostics import scipy_reference


def _timed(fn):
  t = time.perf_counter()
  out = fn()
  return out, time.perf_counter() - t


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--dataset", default="chinchilla_epoch")
  p.add_argument("--n-resamples", type=int, default=4000)
  p.add_argument("--method", default="grid_lbfgs",
                 choices=("grid_lbfgs", "huber_grid", "mle"),
                 help="huber_grid: the old name of grid_lbfgs (vpnls: see "
                      "benchmarks/approach3_methods.py)")
  p.add_argument("--scipy-starts", type=int, default=300,
                 help="grid starts for scipy (4500 = all; fewer are "
                      "extrapolated linearly)")
  p.add_argument("--no-prune-too", action="store_true",
                 help="also time the JAX grid fit with prune=False (every "
                      "start to its own stop, like scipy; ~100 s on 2 CPUs)")
  args = p.parse_args(argv)
  try:
    runs = data_lib.load_runs(args.dataset)
  except data_lib.ScalingDataError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  N, D, L = runs.N, runs.D, runs.loss
  print(f"data: {args.dataset} ({len(runs)} runs); CPU cores visible: "
        f"{os.cpu_count()}")

  fit, t_cold = _timed(lambda: parametric.fit_parametric(
      N, D, L, method=args.method))
  fit, t_warm = _timed(lambda: parametric.fit_parametric(
      N, D, L, method=args.method))
  print(f"jax grid fit ({args.method}, 4500 starts, WITH pruning: "
        f"successive halving, {fit.n_pruned} starts pruned): cold "
        f"{t_cold:.2f} s, warm {t_warm:.2f} s; alpha={fit.alpha:.4f} "
        f"beta={fit.beta:.4f} E={fit.E:.4f} objective={fit.objective:.10g}")
  t_full = None
  if args.no_prune_too:
    full, t_full = _timed(lambda: parametric.fit_parametric(
        N, D, L, method=args.method, prune=False))
    print(f"jax grid fit ({args.method}, 4500 starts, NO pruning, warm): "
          f"{t_full:.2f} s; objective={full.objective:.10g}")
  boot, t_bcold = _timed(lambda: bootstrap.bootstrap_parametric(
      N, D, L, n_resamples=args.n_resamples, method=args.method, point=fit))
  boot, t_bwarm = _timed(lambda: bootstrap.bootstrap_parametric(
      N, D, L, n_resamples=args.n_resamples, method=args.method, point=fit))
  print(f"jax bootstrap ({args.n_resamples} refits): cold {t_bcold:.2f} s, "
        f"warm {t_bwarm:.2f} s; alpha 95% {boot.ci['alpha']}, beta 95% "
        f"{boot.ci['beta']}")
  print(f"jax grid + bootstrap: cold {t_cold + t_bcold:.2f} s, warm "
        f"{t_warm + t_bwarm:.2f} s")

  grid = parametric.HOFFMANN_GRID
  k = min(args.scipy_starts, grid.shape[0])
  idx = np.linspace(0, grid.shape[0] - 1, k).round().astype(int)
  ref, t_sp = _timed(lambda: scipy_reference.fit_grid(grid[idx], N, D, L))
  t_sp_full = t_sp * grid.shape[0] / k
  note = "" if k == grid.shape[0] else (
      f" (measured on {k} evenly spaced starts: {t_sp:.2f} s, extrapolated "
      "linearly)")
  print(f"scipy L-BFGS-B grid fit (sum of Huber, no pruning): "
        f"{t_sp_full:.1f} s for 4500 starts{note}; best objective "
        f"{ref['f']:.10g}")
  rc = 0
  if parametric.canonical_method(args.method) == "grid_lbfgs":
    print(f"ratio scipy / jax (jax pruned, scipy not: not like-for-like): "
          f"{t_sp_full / t_warm:.1f}x warm, {t_sp_full / t_cold:.1f}x cold")
    if t_full is not None:
      print(f"ratio scipy / jax without pruning (like-for-like): "
            f"{t_sp_full / t_full:.1f}x warm")
    rel = (fit.objective - ref["f"]) / abs(ref["f"])
    print(f"best objective, (jax - scipy) / scipy = {rel:.2e} (scipy over "
          f"{k} starts)")
    if rel > _REL_TOL or (k == grid.shape[0] and abs(rel) > _REL_TOL):
      print(f"error: best objectives disagree by more than {_REL_TOL:g} "
            "relative", file=sys.stderr)
      rc = 1
    elif rel < -_REL_TOL:
      print("note: scipy's subset of starts missed the grid's best basin")
  return rc


if __name__ == "__main__":
  sys.exit(main())
