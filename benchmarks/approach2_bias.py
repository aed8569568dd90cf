r"""Simulation study: bias, RMSE and interval coverage of Approach-2 estimators.

Synthetic IsoFLOP sweeps are drawn from known laws L = E + A/N^alpha +
B/D^beta (Hoffmann et al. 2022 Eq. 2) with D = C/(6N) on every run, so the
true exponent is a = beta/(alpha+beta) (Eq. 4). For every estimator of
``scaling.approach2.estimators`` and every cell (law x grid design x sweep
size x noise) it fits ``scaling.approach2.isoflop.fit_isoflop`` to ``--replicates``
noisy copies and reports bias and RMSE of a, and the coverage of its 95 %
interval (Porian et al. 2024's seed-noise bootstrap with the true sigma
stated, weighted fit; ``--scheme runs`` for run resampling instead).

Estimand: along an isoFLOP line D = C/(6N) the loss is minimised exactly at
N*(C) = G (C/6)^a (Eq. 4), at every budget, so at any finite grid the
per-budget minima lie on a power law of slope a: estimator error is the only
source of bias. ``estimand_check`` confirms it numerically (dense 1-D
minimisation of the true law). Moreover, with x = ln(N/N*) the isoFLOP
profile is L - E = A N*^-alpha (e^(-alpha x) + (alpha/beta) e^(beta x)): the
same shape at every budget up to a scale, so an estimator's error in ln N*
is the same at every budget when the grid sits at the same place relative to
N* (centred, or off by a constant factor), and a is then unbiased without
noise. Exponent bias needs a grid whose offset drifts with C, which is what
the off-centre designs below do.

  python -m benchmarks.approach2_bias [--replicates 200] [--bootstrap 200]
      [--estimators parabola,local_parabola,akima,huber_parabola]
      [--laws epoch,chinchilla,asymmetric] [--designs ...] [--json out.json]

Takes ~20-40 min on 2 shared CPU cores at the defaults; ``--quick`` runs a
reduced version (the one tests/test_approach2_bias.py uses).
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
import sys
import time
import warnings
from typing import Dict, List, Sequence

import numpy as np

from lm import safe_io
from scaling.approach2 import isoflop
from scaling.approach2 import estimators as est_lib
from scaling.io.loaders import ScalingDataError

# (E, A, B, alpha, beta). epoch: Besiroglu et al. 2024 (arXiv:2404.10102)
# headline fit; chinchilla: Hoffmann et al. 2022 Eq. 10; asymmetric:
# alpha - beta = 0.15 (a = 0.4), made up for this study.
LAWS: Dict[str, tuple] = {
    "epoch": (1.817, 482.01, 2085.43, 0.3478, 0.3658),
    "chinchilla": (1.69, 406.4, 410.7, 0.34, 0.28),
    "asymmetric": (1.8, 1000.0, 800.0, 0.45, 0.30),
}
# name -> (grid centre / true N* at the largest budget, span in decades of
# N). The offset drifts log-linearly in C from 1 at the smallest budget (a
# prior calibrated on small runs but extrapolated with the wrong exponent):
# a CONSTANT offset only moves k_N, never a (see the module docstring).
DESIGNS: Dict[str, tuple] = {
    "centred": (1.0, 1.5), "off_x3": (3.0, 1.5), "off_div3": (1 / 3, 1.5),
    "narrow": (1.0, 1.0), "wide": (1.0, 2.4), "wide_off_x3": (3.0, 2.4),
}
# (sizes per budget, budgets over 1e18..1e21).
SWEEPS = ((5, 4), (8, 6), (12, 8))
SIGMAS = (0.0, 0.005, 0.02)


def law_a(law) -> float:
  _, _, _, alpha, beta = law
  return beta / (alpha + beta)  # Hoffmann 2022 Eq. 4.


def law_N_opt(law, C):
  _, A, B, alpha, beta = law
  G = (alpha * A / (beta * B))**(1.0 / (alpha + beta))  # Hoffmann 2022 Eq. 4.
  return G * (np.asarray(C) / 6.0)**law_a(law)


def law_loss(law, N, D):
  E, A, B, alpha, beta = law
  return E + A / N**alpha + B / D**beta  # Hoffmann 2022 Eq. 2.


def budgets(n_budgets: int) -> np.ndarray:
  return np.logspace(18.0, 21.0, n_budgets)


def synthetic(law, design, n_sizes, n_budgets, sigma, rng) -> Dict[str, np.ndarray]:
  """One sweep: n_sizes log-spaced sizes per budget, loss + N(0, sigma^2)."""
  shift_end, span = DESIGNS[design] if isinstance(design, str) else design
  N, C = [], []
  Cs = budgets(n_budgets)
  for t, c in zip(np.linspace(0.0, 1.0, n_budgets), Cs):
    N.append(law_N_opt(law, c) * shift_end**t *
             10**np.linspace(-span / 2, span / 2, n_sizes))
    C.append(np.full(n_sizes, c))
  N, C = np.concatenate(N), np.concatenate(C)
  D = C / (6.0 * N)
  loss = law_loss(law, N, D) + sigma * rng.standard_normal(N.size)
  return dict(N=N, D=D, C=C, loss=loss, budget=C)


def estimand_check(law, n_budgets: int = 8) -> Dict[str, float]:
  """Dense minimisation of the true law along each isoFLOP line."""
  C = budgets(n_budgets)
  ln_N = []
  for c in C:
    x = np.log(law_N_opt(law, c)) + np.linspace(-3, 3, 200001)
    N = np.exp(x)
    ln_N.append(x[np.argmin(law_loss(law, N, c / (6 * N)))])
  slope = np.polyfit(np.log(C), ln_N, 1)[0]
  return {"a_true": law_a(law), "a_dense_minima": float(slope),
          "max_abs_ln_N_error": float(np.max(np.abs(
              np.array(ln_N) - np.log(law_N_opt(law, C)))))}


@dataclasses.dataclass
class Cell:
  law: str
  design: str
  n_sizes: int
  n_budgets: int
  sigma: float
  estimator: str
  n_ok: int
  n_failed: int
  bias: float
  rmse: float
  coverage: float
  mean_width: float
  mean_dropped: float


def run_cell(law_name, design, n_sizes, n_budgets, sigma, estimator, *,
             replicates, bootstrap, scheme="seed_noise", seed=0) -> Cell:
  law = LAWS[law_name]
  a_true = law_a(law)
  rng = np.random.default_rng(seed)
  reps = 1 if sigma == 0 else replicates
  a_hat, covered, width, dropped, failed = [], [], [], [], 0
  for r in range(reps):
    d = synthetic(law, design, n_sizes, n_budgets, sigma, rng)
    kw = dict(bootstrap=0) if sigma == 0 else dict(
        bootstrap=bootstrap, scheme=scheme, seed=seed + r,
        seed_noise_std=sigma if scheme == "seed_noise" else None)
    try:
      with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = isoflop.fit_isoflop(d, estimator=estimator, **kw)
    except ScalingDataError:
      failed += 1
      continue
    a_hat.append(fit.a)
    dropped.append(len(fit.dropped))
    if "a" in fit.ci:
      lo, hi = fit.ci["a"]
      covered.append(lo <= a_true <= hi)
      width.append(hi - lo)
  err = np.array(a_hat) - a_true
  nan = float("nan")
  return Cell(law_name, design, n_sizes, n_budgets, sigma, estimator,
              len(a_hat), failed, float(err.mean()) if err.size else nan,
              float(np.sqrt(np.mean(err**2))) if err.size else nan,
              float(np.mean(covered)) if covered else nan,
              float(np.mean(width)) if width else nan,
              float(np.mean(dropped)) if dropped else nan)


def run_study(laws, designs, sweeps, sigmas, estimators, *, replicates,
              bootstrap, scheme="seed_noise", progress=True) -> List[Cell]:
  cells = []
  combos = list(itertools.product(laws, designs, sweeps, sigmas, estimators))
  t0 = time.time()
  for i, (law, design, (n, K), sigma, est) in enumerate(combos):
    cells.append(run_cell(law, design, n, K, sigma, est, replicates=replicates,
                          bootstrap=bootstrap, scheme=scheme, seed=1000 * i))
    if progress:
      c = cells[-1]
      print(f"[{i + 1}/{len(combos)} {time.time() - t0:.0f}s] {law} {design} "
            f"n={n} K={K} sigma={sigma} {est}: bias={c.bias:+.4f} "
            f"rmse={c.rmse:.4f} cover={c.coverage:.3f}", file=sys.stderr)
  return cells


def _fmt(v, spec):
  return "-" if v != v else format(v, spec)


def markdown(cells: Sequence[Cell], estimators: Sequence[str]) -> str:
  """One row per (law, design, sweep, sigma); bias/RMSE/coverage per estimator."""
  head = ["law", "design", "sizes x budgets", "σ"] + [
      f"{e}: bias / RMSE / cover" for e in estimators]
  out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
  keyed = {(c.law, c.design, c.n_sizes, c.n_budgets, c.sigma, c.estimator): c
           for c in cells}
  rows = sorted({k[:5] for k in keyed}, key=lambda k: (
      list(LAWS).index(k[0]), list(DESIGNS).index(k[1]), k[2], k[4]))
  for k in rows:
    vals = []
    for e in estimators:
      c = keyed.get(k + (e,))
      vals.append("-" if c is None else (
          f"{_fmt(c.bias, '+.3f')} / {_fmt(c.rmse, '.3f')} / "
          f"{_fmt(c.coverage, '.2f')}" + (f" ({c.n_failed} failed)"
                                          if c.n_failed else "")))
    out.append(f"| {k[0]} | {k[1]} | {k[2]} x {k[3]} | {k[4]:g} | "
               + " | ".join(vals) + " |")
  return "\n".join(out) + "\n"


def summary(cells: Sequence[Cell], estimators: Sequence[str]) -> str:
  """Worst |bias| and coverage range per estimator, by noise level."""
  lines = ["| estimator | σ | max abs bias | mean RMSE | coverage min-max |",
           "|---|---|---|---|---|"]
  for e in estimators:
    for s in sorted({c.sigma for c in cells}):
      cs = [c for c in cells if c.estimator == e and c.sigma == s]
      cov = [c.coverage for c in cs if c.coverage == c.coverage]
      lines.append(
          f"| {e} | {s:g} | {max(abs(c.bias) for c in cs):.4f} | "
          f"{np.mean([c.rmse for c in cs]):.4f} | "
          + (f"{min(cov):.2f}-{max(cov):.2f}" if cov else "-") + " |")
  return "\n".join(lines) + "\n"


def by_design(cells: Sequence[Cell], estimators: Sequence[str]) -> str:
  """Per (design, sigma): max |bias|, mean RMSE and coverage range over laws
  and sweep sizes, one column per estimator."""
  head = ["design", "σ"] + [f"{e}: max abs bias / mean RMSE / coverage"
                            for e in estimators]
  out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
  for s in sorted({c.sigma for c in cells}):
    for d in [d for d in DESIGNS if any(c.design == d for c in cells)]:
      vals = []
      for e in estimators:
        cs = [c for c in cells if (c.design, c.sigma, c.estimator) == (d, s, e)]
        cov = [c.coverage for c in cs if c.coverage == c.coverage]
        vals.append("-" if not cs else (
            f"{max(abs(c.bias) for c in cs):.4f} / "
            f"{np.mean([c.rmse for c in cs]):.4f} / "
            + (f"{min(cov):.2f}-{max(cov):.2f}" if cov else "-")))
      out.append(f"| {d} | {s:g} | " + " | ".join(vals) + " |")
  return "\n".join(out) + "\n"


QUICK = dict(laws=("epoch", "asymmetric"), designs=("off_x3", "wide"), sweeps=((8, 6),),
             sigmas=(0.005,), replicates=200, bootstrap=100)


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--replicates", type=int, default=200)
  p.add_argument("--bootstrap", type=int, default=200)
  p.add_argument("--estimators", default=",".join(est_lib.ESTIMATORS))
  p.add_argument("--laws", default=",".join(LAWS))
  p.add_argument("--designs", default=",".join(DESIGNS))
  p.add_argument("--sigmas", default=",".join(str(s) for s in SIGMAS))
  p.add_argument("--scheme", default="seed_noise", choices=isoflop.SCHEMES)
  p.add_argument("--quick", action="store_true", help="reduced study")
  p.add_argument("--json", default=None, help="write every cell here")
  args = p.parse_args(argv)
  ests = args.estimators.split(",")
  for name in LAWS:
    print(f"estimand {name}: {estimand_check(LAWS[name])}")
  if args.quick:
    cfg = dict(QUICK)
  else:
    cfg = dict(laws=args.laws.split(","), designs=args.designs.split(","),
               sweeps=SWEEPS, sigmas=[float(s) for s in args.sigmas.split(",")],
               replicates=args.replicates, bootstrap=args.bootstrap)
  cells = run_study(cfg.pop("laws"), cfg.pop("designs"), cfg.pop("sweeps"),
                    cfg.pop("sigmas"), ests, scheme=args.scheme, **cfg)
  print(markdown(cells, ests))
  print(by_design(cells, ests))
  print(summary(cells, ests))
  if args.json:
    safe_io.atomic_write_json(args.json,
                              [dataclasses.asdict(c) for c in cells], indent=1)
  return 0


if __name__ == "__main__":
  sys.exit(main())
