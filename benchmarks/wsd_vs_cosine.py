r"""One IsoFLOP sweep trained two ways: independent cosine runs vs WSD trunks.

Runs the same sweep config (default: the quickstart) twice on the same shared
grid of shapes and the same budgets — ``sweep.scheme='independent'`` with
``lm.train.schedule='cosine'`` (Hoffmann et al. 2022), and
``sweep.scheme='wsd_trunk'`` with ``lm.train.schedule='wsd'`` (Hägele et al.
2024, Sec. 4: one constant-lr trunk per shape, a (1-sqrt) cooldown branch of
``cooldown_fraction`` per budget) — each through the real command
(``python -m experiments.isoflop``, fit + report included), and prints one
markdown table: compute spent (and its share of what independent runs
spend), wall time, Approach-2 a and b and the per-budget L* with their
intervals, and whether each scheme's a, b lie inside the other's interval.

  python -m benchmarks.wsd_vs_cosine [--workdir DIR] [--fresh]
      [--config experiments/configs/quickstart.py] [--cosine_equivalent_k 2]
      [-- --config.x=y ...]

``--cosine_equivalent_k`` adds the cosine-equivalent validation tables
(``benchmarks.cosine_equivalent_check``, docs/wsd.md).

The workdirs are resumable sweeps: a second call re-fits without retraining
unless --fresh. Wall times are only comparable on an otherwise idle machine.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from typing import Any, Dict, List
from benchmarks import cosine_equivalent_check
from experiments import compute as compute_lib
from experiments import ledger as ledger_lib
from lm import safe_io

SCHEMES = (
    ("independent", "cosine", ["--config.sweep.scheme=independent",
                               "--config.sweep.size_grid=shared",
                               "--config.lm.train.schedule=cosine"]),
    ("wsd_trunk", "wsd", ["--config.sweep.scheme=wsd_trunk",
                          "--config.lm.train.schedule=wsd"]),
)


def run_scheme(config: str, workdir: str, flags: List[str],
               extra: List[str]) -> float:
  """Wall seconds of one sweep + fit (the real command, as a user runs it)."""
  cmd = [sys.executable, "-m", "experiments.isoflop", f"--config={config}",
         f"--workdir={workdir}"] + flags + extra
  t0 = time.perf_counter()
  subprocess.run(cmd, check=True)
  return time.perf_counter() - t0


def summarize(workdir: str) -> Dict[str, Any]:
  """Compute spent and the Approach-2 fit of a finished sweep (reading only)."""
  records = ledger_lib.Ledger(os.path.join(workdir, "results.jsonl")).read()
  with open(os.path.join(workdir, "report", "fit.json")) as f:
    fit = json.load(f)
  a2 = fit["approach2"]
  return {"compute": compute_lib.sweep_compute(workdir, records),
          "a": (a2["a"], a2["ci"]["a"]), "b": (a2["b"], a2["ci"]["b"]),
          "minima": {m["C"]: m["L_opt"] for m in a2["minima"]},
          "procedure": a2["interval_procedure"],
          "estimator": a2["estimator"]}


def _inside(x: float, ci) -> bool:
  return ci is not None and ci[0] <= x <= ci[1]


def table(res: Dict[str, Dict[str, Any]], walls: Dict[str, float]) -> str:
  base = res["independent"]["compute"]["spent"]
  out = ["| scheme | schedule | results | compute spent (FLOPs) | vs independent "
         "| wall (s) | a [95 %] | b [95 %] |", "|---|---|---|---|---|---|---|---|"]
  for name, schedule, _ in SCHEMES:
    r, c = res[name], res[name]["compute"]
    out.append(
        f"| {name} | {schedule} | {c['n_results']} | {c['spent']:.3g} | "
        f"{c['spent'] / base:.0%} | {walls[name]:.0f} | "
        f"{r['a'][0]:.3f} [{r['a'][1][0]:.3f}, {r['a'][1][1]:.3f}] | "
        f"{r['b'][0]:.3f} [{r['b'][1][0]:.3f}, {r['b'][1][1]:.3f}] |")
  ind, wsd = res["independent"], res["wsd_trunk"]
  out += ["", "| C | L* independent | L* wsd_trunk | ΔL* |", "|---|---|---|---|"]
  for C in sorted(set(ind["minima"]) | set(wsd["minima"])):
    li, lw = ind["minima"].get(C), wsd["minima"].get(C)
    d = f"{lw - li:+.4f}" if li is not None and lw is not None else "—"
    out.append(f"| {C:.3g} | {_fmt(li)} | {_fmt(lw)} | {d} |")
  out.append("")
  for q in ("a", "b"):
    out.append(
        f"{q}: wsd {wsd[q][0]:.3f} {'inside' if _inside(wsd[q][0], ind[q][1]) else 'OUTSIDE'}"
        f" the independent interval; independent {ind[q][0]:.3f} "
        f"{'inside' if _inside(ind[q][0], wsd[q][1]) else 'OUTSIDE'} the wsd "
        f"interval; |Δ{q}| = {abs(wsd[q][0] - ind[q][0]):.3f}")
  out.append(f"estimator: {wsd['estimator']}; intervals: {wsd['procedure']}")
  return "\n".join(out)


def _fmt(x):
  return "—" if x is None else f"{x:.4f}"


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--workdir", default="runs/wsd_vs_cosine")
  p.add_argument("--config", default="experiments/configs/quickstart.py")
  p.add_argument("--fresh", action="store_true",
                 help="delete the two sweeps first (retrain from scratch)")
  p.add_argument("--cosine_equivalent_k", type=int, default=None,
                 help="also print the cosine-equivalent validation tables "
                 "(benchmarks.cosine_equivalent_check) with k branches")
  p.add_argument("extra", nargs="*", help="more --config.x=y overrides")
  args = p.parse_args(argv)
  res, walls = {}, {}
  for name, _, flags in SCHEMES:
    wd = os.path.join(args.workdir, name)
    if args.fresh and os.path.isdir(wd):
      shutil.rmtree(wd)
    walls[name] = run_scheme(args.config, wd, flags, args.extra)
    res[name] = summarize(wd)
  text = table(res, walls)
  if args.cosine_equivalent_k is not None:
    text += "\n\n" + cosine_equivalent_check.run(
        args.workdir, args.cosine_equivalent_k, 8)
  print(text)
  safe_io.atomic_write(os.path.join(args.workdir, "wsd_vs_cosine.md"),
                       text + "\n")
  return 0


if __name__ == "__main__":
  sys.exit(main())
