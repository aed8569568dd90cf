"""Speed of the Approach-3 fit: our batched JAX L-BFGS vs a scipy loop.

Runs, in one process and on the same data:
  1. scaling.parametric.fit_parametric over Hoffmann's 4500-point grid
     (cold = including JIT compilation, then warm);
  2. scaling.bootstrap.bootstrap_parametric with --n-resamples refits;
  3. scipy.optimize.minimize(L-BFGS-B, analytic gradient) from each grid
     start, one at a time (the procedure of Besiroglu et al. 2024). With
     --scipy-starts K < 4500 it runs K evenly spaced starts and extrapolates
     the time linearly to 4500 (stated in the output).

Usage:
  python -m benchmarks.fit_speed [--dataset chinchilla_epoch]
      [--n-resamples 4000] [--scipy-starts 300]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from scaling import bootstrap
from scaling import data as data_lib
from scaling import parametric
from scaling import scipy_reference


def _timed(fn):
  t = time.perf_counter()
  out = fn()
  return out, time.perf_counter() - t


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--dataset", default="chinchilla_epoch")
  p.add_argument("--n-resamples", type=int, default=4000)
  p.add_argument("--method", default="huber_grid",
                 choices=("huber_grid", "mle"))
  p.add_argument("--scipy-starts", type=int, default=300,
                 help="grid starts for scipy (4500 = all; fewer are "
                      "extrapolated linearly)")
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
  print(f"jax grid fit ({args.method}, 4500 starts): cold {t_cold:.2f} s, "
        f"warm {t_warm:.2f} s; alpha={fit.alpha:.4f} beta={fit.beta:.4f} "
        f"E={fit.E:.4f} objective={fit.objective:.7g}")
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
  print(f"scipy L-BFGS-B grid fit (sum of Huber): {t_sp_full:.1f} s for "
        f"4500 starts{note}; best objective {ref['f']:.7g}")
  if args.method == "huber_grid":
    print(f"ratio scipy / jax: {t_sp_full / t_warm:.1f}x warm, "
          f"{t_sp_full / t_cold:.1f}x cold")
  return 0


if __name__ == "__main__":
  sys.exit(main())
