"""Cells of colab/quickstart.ipynb."""
from __future__ import annotations

from typing import List

from nbsrc.common import INSTALL, INSTALL_NOTE, SHOW_PNG, Cell, code, md

QUICKSTART: List[Cell] = [
    md('''
# scalinglm quickstart: an IsoFLOP sweep, fitted

This notebook trains a family of small decoder-only Transformers on a few
compute budgets *C* (an IsoFLOP sweep, Hoffmann et al. 2022 Sec. 3.2), fits
Chinchilla's Approaches 2 and 3 (and 1, from the training curves) with
bootstrap intervals, and shows the isoFLOP curves, the compute-optimal
frontiers N\\*(C) and D\\*(C), and the fitted exponents.

The data is the embedded default corpus (this Python's standard-library
sources, byte tokenizer), so nothing is downloaded. The same sweep from a
terminal: `python -m experiments.isoflop
--config=experiments/configs/quickstart.py --workdir=runs/quickstart`.
'''),
    INSTALL_NOTE,
    INSTALL,
    md('''
## Runtime and sweep size

`jax.default_backend()` tells CPU, GPU and TPU apart.

* **CPU**: `experiments/configs/quickstart.py` as it is: 6 budgets a factor
  2 apart (1e10 to 3.2e11 FLOPs, counted as 6N per token), 31 results of
  3k-70k-parameter models trained as WSD trunks with cooldown branches
  (about 2/3 of the compute of independent runs), about 3 minutes on 2 CPU
  cores.
* **GPU / TPU**: the same recipe over 3e11-1e13 FLOPs (batch 32, the whole
  ~30 MB corpus). This setting has **not** been run by the project yet (no
  accelerator was available to it), so no timing is claimed; the plan's time
  column below is the 2-core CPU model.
* **SMALL mode** (tests): `experiments/configs/tiny_sweep.py`, 2 budgets x 3
  sizes. Its losses are too noisy for a fit; the fit may be refused below,
  which is the expected outcome there.
'''),
    code('''
import jax

from experiments.configs import quickstart, tiny_sweep

BACKEND = jax.default_backend()  # "cpu", "gpu" or "tpu"
print(f"JAX {jax.__version__}: {jax.device_count()} x "
      f"{jax.devices()[0].device_kind} ({BACKEND})")

if SMALL:
  cfg = tiny_sweep.get_config()
  BOOTSTRAP = 20
elif BACKEND == "cpu":
  cfg = quickstart.get_config()
  BOOTSTRAP = int(cfg.analysis.bootstrap)
else:
  cfg = quickstart.get_config()
  cfg.sweep.budgets = tuple(30 * C for C in cfg.sweep.budgets)  # 3e11-1e13
  cfg.sweep.batch_size = 32               # 2k tokens per step
  cfg.lm.data.max_corpus_bytes = 0        # the whole embedded corpus (~30 MB)
  BOOTSTRAP = 1000
print(f"config {cfg.name!r}: budgets {tuple(cfg.sweep.budgets)}, "
      f"{cfg.sweep.flop_convention} FLOPs, N = {cfg.sweep.param_convention} "
      f"params, {BOOTSTRAP} bootstrap resamples")
'''),
    md('''
## The plan

For each budget the planner centres a log-spaced set of model sizes on a
prior N\\*(C) (on one grid of shapes shared by all budgets), picks the
nearest model shape for each, and sets the number of steps so that the
counted FLOPs match the budget within 1 %. With `sweep.scheme='wsd_trunk'`
each shape trains one constant-learning-rate trunk, and every (shape, budget)
point is a 20 % cooldown branch from the trunk's checkpoint (Hägele et al.
2024); the table's last lines list the trunks and the compute saved. The time
column is a model of a 2-core CPU; on an accelerator it does not apply.
'''),
    code('''
from experiments import planner

plan = planner.make_plan(cfg)
print(planner.format_plan(plan))
WORKDIR = os.path.join("runs", f"{cfg.name}_{plan.config_hash[:8]}")
print("sweep directory:", WORKDIR)
'''),
    md('''
## Run the sweep

Runs execute one after another; each finished run is appended to
`WORKDIR/results.jsonl` (the ledger). Re-running this cell after an
interruption skips finished runs and resumes the unfinished one from its
checkpoint.
'''),
    code('''
from experiments.executor import run_sweep

ledger = run_sweep(cfg, WORKDIR, progress=False)
print(f"{len(ledger)} runs in {WORKDIR}/results.jsonl")
'''),
    md('''
## Fit

`experiments.analyze.analyze` fits Approach 2 (a parabola per budget, then
power laws N\\* = k_N C^a, D\\* = k_D C^b), Approach 3 (L = E + A/N^α +
B/D^β, Huber loss, Hoffmann's 4500-start grid) and Approach 1 (the envelope
of the training curves), with bootstrap intervals, and writes
`WORKDIR/report/` (`fit.json`, `fit.md`, `fit.tex`, PNG plots). A budget whose
parabola has no interior minimum is dropped with a warning; with fewer than
2 usable budgets Approach 2 is skipped with a warning (as in the SMALL-mode
sweep) and the other approaches are reported; no fittable approach at all is
an error.
'''),
    code('''
from experiments.analyze import analyze, summary_text

report = None
try:
  report = analyze(WORKDIR, bootstrap=BOOTSTRAP)
  print(summary_text(report))
except ValueError as e:  # ScalingDataError / ParametricFitError: one line
  if not SMALL:
    raise
  print(f"no fit (expected for the tiny SMALL-mode sweep): {e}")
'''),
    md('''
## IsoFLOP curves and compute-optimal frontiers

The PNGs written to `WORKDIR/report/`: loss against N per budget with the
fitted parabolas (stars: the minima; crosses: a dropped budget), and N\\*(C),
D\\*(C) per approach with bootstrap bands. Without a fit (SMALL mode) the raw
ledger points are plotted instead.
'''),
    SHOW_PNG,
    code('''
report_dir = os.path.join(WORKDIR, "report")
if report is not None:
  plots_written = report["fit"].get("plots", [])
  for name in ("isoflop.png", "frontier.png", "loss_curves.png"):
    if name in plots_written:
      print(name)
      show_png(os.path.join(report_dir, name))
  print("also in", report_dir, ":", sorted(set(plots_written) - {
      "isoflop.png", "frontier.png", "loss_curves.png"}))
else:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(6, 4))
  for C in sorted({r["budget"] for r in ledger}):
    pts = sorted((r["N"], r["eval_loss"]) for r in ledger
                 if r["budget"] == C and r["status"] == "ok")
    ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=f"C = {C:.2g}")
  ax.set_xscale("log")
  ax.set_xlabel("parameters N")
  ax.set_ylabel("final eval loss (nats/token)")
  ax.set_title("IsoFLOP points (no fit)")
  ax.legend()
  show_png(fig)
  plt.close(fig)
'''),
    md('''
## Exponents with intervals

N\\* ∝ C^a and D\\* ∝ C^b. Chinchilla found a ≈ b ≈ 0.5 (Hoffmann et al. 2022,
Table 2); Kaplan et al. 2020 had a = 0.73. Tiny byte-level models on a small
corpus need not agree: the interval says how much this sweep can tell.
`fit.json` holds every number with its provenance (see `docs/ledger.md`).
'''),
    code('''
def fmt(x, ci):
  return f"{x:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


if report is None:
  print("no fit in SMALL mode; see the message above")
else:
  fit = report["fit"]
  print(f"{'fit':<54} {'a (N* ~ C^a)':>24} {'b (D* ~ C^b)':>24}")
  for key in ("approach1", "approach2", "approach3"):
    f = fit.get(key)
    if not f:
      continue
    ci = f.get("ci", {})
    print(f"{f['label'][:54]:<54} {fmt(f['a'], ci.get('a')):>24} "
          f"{fmt(f['b'], ci.get('b')):>24}")
    # Every interval names the procedure that made it (fit.json).
    print(f"    interval: {f['interval_procedure'] or 'none'}")
  print()
  for key in ("approach2", "approach3"):
    rows = (fit.get(key) or {}).get("compute_optimal", {})
    for C, row in rows.items():
      print(f"{key} at C = {float(C):.3g}: N* = {row['N_opt']:.3g}, "
            f"D* = {row['D_opt']:.3g}, D*/N* = {row['tokens_per_param']:.1f}")
  print("\\nprovenance:", {k: fit["provenance"][k]
                          for k in ("date_utc", "versions", "seed", "bootstrap")})
'''),
]
