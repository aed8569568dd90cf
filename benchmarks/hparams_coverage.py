r"""Simulation study: recovery and interval coverage of the hparams fit (scaling/hparams).

Synthetic tuned grids (``synthetic``) are drawn from a known law -- Step
Law's published coefficients lr* = 1.7973 N^-0.7129 D^0.3075, B* = 0.5807
D^0.5709 (Li et al. 2025, arXiv:2503.04715) -- with a loss bowl in ln lr and
ln B around them; for each (noise, band) setting it fits
``scaling.hparams.estimate.fit_hparams`` to ``--replicates`` grids and
reports the mean and sd of alpha, beta, gamma, the coverage of their
intervals and the mean interval width (docs/hparams.md, "Measured").

  python -m benchmarks.hparams_coverage [--replicates 100] [--bootstrap 200]

About 30 s on 2 shared CPU cores at the defaults.
"""
from __future__ import annotations

import argparse
import math
import time
import warnings

import numpy as np

from scaling.hparams import estimate
from scaling.hparams.inputs import HparamRuns

TRUE = dict(c=1.7973, alpha=-0.7129, beta=0.3075, k=0.5807, gamma=0.5709)
SETTINGS = ((0.0, 0.0025), (0.001, 0.0025), (0.003, 0.0025), (0.003, 0.01))


def synthetic(sigma=0.0, seed=0, n_sizes=4, n_tokens=4, lr_steps=9,
              batch_steps=5, kappa_lr=0.01, kappa_B=0.005, offset=0.35
              ) -> HparamRuns:
  """Tuned grids of (N, D) cells, N in [1e7, 1e9], D in [1e9, 1e11]:
  loss = L(N, D) (1 + kappa_lr ln^2(lr / lr*) + kappa_B ln^2(B / B*))
  (1 + sigma eps), L(N, D) Chinchilla's fit (Hoffmann et al. 2022, Eq. 10);
  lr and B grids of factor sqrt(2) and 2 whose centres miss the optimum by a
  random factor up to e^offset (per cell)."""
  rng = np.random.default_rng(seed)
  rows = []
  for N in np.geomspace(1e7, 1e9, n_sizes):
    for D in np.geomspace(1e9, 1e11, n_tokens):
      eta = TRUE["c"] * N**TRUE["alpha"] * D**TRUE["beta"]
      B_opt = TRUE["k"] * D**TRUE["gamma"]
      L0 = 1.69 + 406.4 / N**0.34 + 410.7 / D**0.28
      u, v = rng.uniform(-offset, offset, 2)
      for i in range(lr_steps):
        lr = eta * math.exp(u) * 2.0**((i - (lr_steps - 1) / 2) / 2)
        for j in range(batch_steps):
          B = B_opt * math.exp(v) * 2.0**(j - (batch_steps - 1) / 2)
          L = L0 * (1 + kappa_lr * math.log(lr / eta)**2
                    + kappa_B * math.log(B / B_opt)**2)
          rows.append((N, D, lr, B, L * (1 + sigma * rng.standard_normal())))
  a = np.array(rows)
  return HparamRuns.from_columns(dict(N=a[:, 0], D=a[:, 1], lr=a[:, 2],
                                      batch_tokens=a[:, 3], loss=a[:, 4]))


def study(sigma: float, band: float, replicates: int, bootstrap: int):
  """{exponent: (mean, sd, coverage, mean width)} over ``replicates`` grids."""
  est = {k: [] for k in ("alpha", "beta", "gamma")}
  hit = {k: [] for k in est}
  width = {k: [] for k in est}
  for r in range(replicates):
    fit = estimate.fit_hparams(synthetic(sigma=sigma, seed=1000 + r),
                               band=band, bootstrap=bootstrap, seed=r)
    for law_name, key in (("eta_ND", "alpha"), ("eta_ND", "beta"),
                          ("B_D", "gamma")):
      law = fit.laws[law_name]
      v = dict(zip(law.exponent_names, law.exponents))[key]
      lo, hi = law.ci[key]
      est[key].append(v)
      hit[key].append(lo <= TRUE[key] <= hi)
      width[key].append(hi - lo)
  return {k: (float(np.mean(est[k])), float(np.std(est[k])),
              float(np.mean(hit[k])), float(np.mean(width[k]))) for k in est}


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--replicates", type=int, default=100)
  p.add_argument("--bootstrap", type=int, default=200)
  args = p.parse_args()
  warnings.simplefilter("ignore")
  for sigma, band in SETTINGS:
    t = time.time()
    res = study(sigma, band, args.replicates, args.bootstrap)
    print(f"sigma={sigma} band={band} replicates={args.replicates}: " + "; ".join(
        f"{k}: mean {m:.4f} (true {TRUE[k]}), sd {s:.4f}, coverage {c:.2f}, "
        f"mean width {w:.4f}" for k, (m, s, c, w) in res.items())
          + f"  [{time.time() - t:.0f} s]", flush=True)


if __name__ == "__main__":
  main()
