r"""Every Approach-2 estimator side by side on the bundled published sweeps.

For each data set (Epoch's Chinchilla isoFLOP points, Llama 3, Marin x 3 and,
with --workdir, a sweep of this package) and each estimator, prints a and b
with their intervals under the run-resampling bootstrap (unweighted, as the
published Chinchilla / Llama 3 fits) and under Porian et al.'s seed-noise
bootstrap (weighted), plus the weights' effective number of budgets
n_eff = (sum w)^2 / sum w^2.

  python -m benchmarks.approach2_datasets [--bootstrap 1000] [--workdir DIR]
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings

import numpy as np

from scaling.io import loaders as data_lib
from scaling.approach2 import isoflop
from scaling.approach2 import estimators as est_lib

DATASETS = ("chinchilla_epoch_isoflop", "llama3_isoflop", "marin_dclm",
            "marin_comma", "marin_nemotron")


def _ci(fit, k):
  lo, hi = fit.ci.get(k, (np.nan, np.nan))
  return f"{getattr(fit, k):.4f} [{lo:.3f}, {hi:.3f}]"


def rows(runs, bootstrap: int, seed_noise_std=None):
  out = []
  for name in est_lib.ESTIMATORS:
    with warnings.catch_warnings():
      warnings.simplefilter("ignore")
      r = isoflop.fit_isoflop(runs, estimator=name, bootstrap=bootstrap)
      s = isoflop.fit_isoflop(runs, estimator=name, bootstrap=bootstrap,
                              scheme="seed_noise", seed_noise_std=seed_noise_std)
    w = np.array([m["weight"] for m in s.minima])
    out.append((name, r, s, float(w.sum()**2 / (w**2).sum())))
  return out


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--bootstrap", type=int, default=1000)
  p.add_argument("--workdir", default=None, help="a sweep (results.jsonl)")
  args = p.parse_args(argv)
  sources = list(DATASETS)
  if args.workdir:
    sources.append(os.path.join(args.workdir, "results.jsonl"))
  print("| data | estimator | runs: a | runs: b | budgets | seed-noise (weighted): a "
        "| b | σ | n_eff |")
  print("|---|---|---|---|---|---|---|---|---|")
  for src in sources:
    runs = data_lib.load_runs(src)
    for name, r, s, n_eff in rows(runs, args.bootstrap):
      label = os.path.basename(os.path.dirname(src)) if src.endswith(".jsonl") else src
      print(f"| {label} | {name}{' (default)' if name == est_lib.DEFAULT_ESTIMATOR else ''}"
            f" | {_ci(r, 'a')} | {_ci(r, 'b')} | {len(r.minima)} of "
            f"{len(r.minima) + len(r.dropped)} | {_ci(s, 'a')} | {_ci(s, 'b')} | "
            f"{s.noise.sigma:.3g} ({s.noise.source}) | {n_eff:.1f} of "
            f"{len(s.minima)} |")
  return 0


if __name__ == "__main__":
  sys.exit(main())
