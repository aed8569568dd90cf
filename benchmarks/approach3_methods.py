"""Approach 3 side by side: grid_lbfgs vs vpnls (and mle) on the same data.

Prints, for each method:
  1. Epoch's 240 points: E, A, B, alpha, beta, a and the objective;
  2. the condition numbers of the 5-parameter vs the profiled 2-parameter
     problem (scaling.diagnostics.conditioning): Open-Athena's asymmetric noise-free
     sweep (their experiment 8: ~3.5e11 vs ~11), Epoch's data and the
     quickstart-sized problem, each at its log-space least-squares optimum;
  3. a quickstart-sized problem (16 runs over 3 budgets: --ledger=PATH to a
     sweep's results.jsonl, else a synthetic one from the law the quickstart
     sweep fits): E's and a's 95% intervals from --n-resamples bootstraps;
  4. wall and process-CPU seconds of each fit (cold = with compilation,
     then warm) and of each bootstrap (warm).

Timings on a shared machine are inflated and noisy: compare methods within
one run, not across runs.

Usage:
  python -m benchmarks.approach3_methods [--ledger=runs/quickstart/results.jsonl]
      [--n-resamples 1000] [--methods grid_lbfgs,vpnls]
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from scaling.approach3 import bootstrap
from scaling.diagnostics import conditioning
from scaling.io import loaders as data_lib
from scaling.approach3 import parametric
from scaling.approach3 import vpnls

# What the quickstart sweep's Approach 3 gives (measured on one run of
# experiments/configs/quickstart.py): the law of the synthetic stand-in.
QUICKSTART_LAW = dict(E=1.05, A=72.3, B=837.0, alpha=0.557, beta=0.595)


def _timed(fn):
  t, c = time.perf_counter(), time.process_time()
  out = fn()
  return out, time.perf_counter() - t, time.process_time() - c


def quickstart_like(seed: int = 0, noise: float = 0.01):
  """16 runs over budgets 3e10, 1e11, 3e11 (6, 5, 5 sizes over x12)."""
  rng = np.random.default_rng(seed)
  N, D = [], []
  for C, k in ((3e10, 6), (1e11, 5), (3e11, 5)):
    center = 0.5 * np.sqrt(C / 120.0)
    n = center * np.logspace(-0.54, 0.54, k)
    N.append(n)
    D.append(C / (6 * n))
  N, D = np.concatenate(N), np.concatenate(D)
  L = parametric.predict_loss(QUICKSTART_LAW, N, D) * np.exp(
      noise * rng.standard_normal(N.size))
  return N, D, L


def open_athena_asymmetric():
  """Their asymmetric surface (alpha/beta = 3), 5 budgets x 15 sizes."""
  p = dict(E=1.69, A=406.4, B=410.7, alpha=0.465, beta=0.155)
  G = (p["alpha"] * p["A"] / (p["beta"] * p["B"]))**(1 / 0.62)
  budgets = np.logspace(17, 21, 5)
  N = np.concatenate([G * (C / 6)**0.25 * np.logspace(-np.log10(8),
                                                      np.log10(8), 15)
                      for C in budgets])
  D = np.repeat(budgets, 15) / (6 * N)
  return N, D, parametric.predict_loss(p, N, D), p


def _fit_row(N, D, L, method):
  _, t_cold, c_cold = _timed(lambda: parametric.fit_parametric(
      N, D, L, method=method))
  f, t_warm, c_warm = _timed(lambda: parametric.fit_parametric(
      N, D, L, method=method))
  print(f"  {method:10s} E={f.E:.5f} A={f.A:.2f} B={f.B:.2f} "
        f"alpha={f.alpha:.5f} beta={f.beta:.5f} a={f.a:.4f} "
        f"objective={f.objective:.10g}  fit: cold {t_cold:.1f} s "
        f"(cpu {c_cold:.1f}), warm {t_warm:.2f} s (cpu {c_warm:.2f})")
  return f


def _boot_row(N, D, L, fit, n):
  bootstrap.bootstrap_parametric(N, D, L, method=fit.method, n_resamples=8,
                                 seed=1, point=fit)  # compile
  b, t, c = _timed(lambda: bootstrap.bootstrap_parametric(
      N, D, L, method=fit.method, n_resamples=n, seed=0, point=fit))
  at0 = np.mean(b.samples["E"] < 1e-6)
  print(f"  {fit.method:10s} E {b.ci['E'][0]:.4g}..{b.ci['E'][1]:.4g} "
        f"(E < 1e-6 in {100 * at0:.1f}% of resamples), a "
        f"{b.ci['a'][0]:.4f}..{b.ci['a'][1]:.4f}, alpha "
        f"{b.ci['alpha'][0]:.4f}..{b.ci['alpha'][1]:.4f}; {b.n_ok} ok, "
        f"{b.n_not_converged} not converged; bootstrap {n}: {t:.1f} s "
        f"(cpu {c:.1f})")
  return b


def _conditioning_row(name, N, D, L, params=None, objectives=("log_lsq",)):
  if params is None:  # the log-space least-squares optimum (delta >> |r|).
    params = vpnls.fit_vpnls(N, D, L, delta=10.0).params
  for obj in objectives:
    c = conditioning.conditioning(N, D, L, params, obj)
    print(f"  {name:34s} {obj:10s} kappa_5 = {c['kappa_5']:.3g} "
          f"(log A, log B, log E params: {c['kappa_5_log']:.3g}), "
          f"kappa_2 = {c['kappa_2']:.3g}; |grad| {c['grad_max']:.1e}")


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--ledger", default=None,
                 help="results.jsonl of a quickstart-sized sweep")
  p.add_argument("--n-resamples", type=int, default=1000)
  p.add_argument("--methods", default="grid_lbfgs,vpnls")
  args = p.parse_args(argv)
  methods = args.methods.split(",")
  try:
    for m in methods:
      parametric.canonical_method(m)
    epoch = data_lib.load_runs("chinchilla_epoch")
    if args.ledger:
      qs = data_lib.load_runs(args.ledger)
      qs_data, qs_name = (qs.N, qs.D, qs.loss), f"ledger {args.ledger}"
    else:
      qs_data, qs_name = quickstart_like(), "synthetic quickstart-sized"
  except (ValueError, OSError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print("1. Epoch (chinchilla_epoch, 240 runs); published grid fit: "
        "E=1.8172 alpha=0.3473 beta=0.3672 objective=1.0183e-3")
  fits = {m: _fit_row(epoch.N, epoch.D, epoch.loss, m)
          for m in methods}
  print("\n2. Conditioning (Hessian condition numbers, 5 vs 2 parameters)")
  N, D, L, law = open_athena_asymmetric()
  _conditioning_row("Open-Athena asymmetric, noise-free", N, D, L, law,
                    ("linear_lsq", "log_lsq"))
  _conditioning_row("Epoch 240 runs", epoch.N, epoch.D, epoch.loss)
  _conditioning_row(f"{qs_name} ({qs_data[0].size} runs)", *qs_data)
  print(f"\n3. {qs_name} ({qs_data[0].size} runs): 95% bootstrap intervals")
  for m in methods:
    f = _fit_row(*qs_data, m)
    _boot_row(*qs_data, f, args.n_resamples)
  print(f"\n4. Epoch bootstrap ({args.n_resamples} resamples)")
  for m in methods:
    _boot_row(epoch.N, epoch.D, epoch.loss, fits[m], args.n_resamples)
  return 0


if __name__ == "__main__":
  sys.exit(main())
