r"""Validation of cosine-equivalent WSD sweeps (docs/wsd.md, issue 21 item 4).

Reads two finished sweeps of the same shapes and budgets (the output of
``python -m benchmarks.wsd_vs_cosine``: ``<workdir>/independent`` trained as
independent cosine runs, ``<workdir>/wsd_trunk`` as WSD trunks) and prints
three markdown tables:

  (a) per run: the law-predicted cosine-equivalent eval loss of each WSD point
      (``experiments.cosine_equivalent``, all branches) against the eval loss
      of the independent cosine run of the same (shape, budget, seed), and
      the raw WSD loss's error for reference;
  (b) Approach 2's a on the predicted points against the independent sweep's
      a (its report/fit.json), each with its interval;
  (c) the same with k branches per trunk (default 2; simulated by leaving the
      other branches out of the fit and out of the compute: the trunk still
      trains to its last branch point), and that compute's share of the
      independent sweep's.

  python -m benchmarks.cosine_equivalent_check [--workdir runs/wsd_vs_cosine]
      [--k 2] [--bootstrap 16]

Reading only: nothing in the workdirs is changed.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any, Dict, List

import numpy as np

from experiments import analyze, cosine_equivalent
from experiments import ledger as ledger_lib
from experiments.analysis_settings import AnalysisSettings
from experiments.sweep_flops import sweep_flops_per_token
from scaling.io.loaders import load_runs


def _ledger(wd: str) -> List[Dict[str, Any]]:
  return [r for r in ledger_lib.Ledger(os.path.join(wd, "results.jsonl")).read()
          if r["status"] == "ok"]


def _key(r):
  return (round(float(r["budget"]), 3), tuple(sorted((r.get("shape") or {}).items())),
          int(r.get("seed") or 0))


def _a2(wd: str, pred, settings_seed=0):
  """Approach 2 (analyze's settings) on a prediction dict."""
  meta = analyze._sweep_meta(wd)   # pylint: disable=protected-access
  settings = AnalysisSettings.from_config((meta.get("config") or {}).get("analysis"))
  runs = load_runs(os.path.join(wd, "results.jsonl"))
  with open(os.path.join(wd, "report", "fit.json")) as f:
    sigma_seed = json.load(f)["approach2"].get("seed_noise_std")
  return cosine_equivalent.approach2_on(
      pred, runs, estimator=settings.isoflop_estimator,
      options=settings.isoflop_options(), bootstrap=settings.bootstrap,
      seed=settings.seed, flops_per_token=sweep_flops_per_token(meta, runs),
      sigma_seed=sigma_seed)


def _compute(records, used_ids) -> float:
  """F B T (P_max per trunk + sum of the used branches' cooldowns)."""
  trunks: Dict[str, float] = {}
  spent = 0.0
  for r in records:
    fps = float(r["C"]) / float(r["steps"])
    trunks[r["trunk_id"]] = max(trunks.get(r["trunk_id"], 0.0),
                                fps * float(r["branch_step"]))
    if r["run_id"] in used_ids:
      spent += fps * (float(r["steps"]) - float(r["branch_step"]))
  return spent + sum(trunks.values())


def _fmt(v, ci):
  return f"{v:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else f"{v:.3f}"


def run(workdir: str, k: int, bootstrap: int) -> str:
  ind_wd, wsd_wd = (os.path.join(workdir, n) for n in ("independent", "wsd_trunk"))
  ind, wsd = _ledger(ind_wd), _ledger(wsd_wd)
  ind_by = {_key(r): r for r in ind}
  out = []
  t0 = time.perf_counter()
  full = cosine_equivalent.predict_points(wsd_wd, wsd, None, bootstrap)
  t_full = time.perf_counter() - t0
  by_id = {r["run_id"]: r for r in wsd}
  rows, err, raw = [], [], []
  for p in full["points"]:
    r = by_id[p["run_id"]]
    i = ind_by.get(_key(r))
    if i is None:
      continue
    e = (p["loss_cosine_pred"] - i["eval_loss"]) / i["eval_loss"]
    e0 = (r["eval_loss"] - i["eval_loss"]) / i["eval_loss"]
    err.append(e)
    raw.append(e0)
    rows.append(f"| {r['budget']:.3g} | {r['N']:.4g} | {r.get('seed') or 0} | "
                f"{i['eval_loss']:.4f} | {r['eval_loss']:.4f} ({100 * e0:+.2f} %) | "
                f"{p['loss_cosine_pred']:.4f} | {100 * e:+.2f} % |")
  err, raw = np.abs(err), np.abs(raw)
  out += ["(a) law-predicted cosine-equivalent vs independent cosine eval loss",
          "", "| C | N | seed | cosine (measured) | WSD (measured, error) | "
          "cosine-equivalent (predicted) | error |", "|---|---|---|---|---|---|---|"]
  out += rows
  out += ["", f"|error| of the predictions: median {100 * np.median(err):.2f} %, "
          f"worst {100 * err.max():.2f} % over {err.size} runs (goal ≤ 0.5 %, "
          f"≤ 1.5 %); raw WSD losses: median {100 * np.median(raw):.2f} %, worst "
          f"{100 * raw.max():.2f} %. Law fits: {len(full['trunks'])} trunks, "
          f"{t_full:.0f} s incl. {bootstrap} bootstrap refits each "
          f"({t_full / max(1, sum(t['n_curves'] for t in full['trunks'])):.2f} s "
          "per curve)."]
  with open(os.path.join(ind_wd, "report", "fit.json")) as f:
    ia = json.load(f)["approach2"]
  ind_spent = sum(float(r.get("compute_spent") or r["C"]) for r in ind)
  out += ["", "(b), (c) Approach 2 on predicted cosine-equivalent points vs the "
          "independent cosine sweep", "",
          "| points | compute vs independent | a [95 %] | b [95 %] | |Δa| | "
          "a inside the other's interval | independent a inside this one |",
          "|---|---|---|---|---|---|---|",
          f"| independent cosine (measured) | 100 % | {_fmt(ia['a'], ia['ci'].get('a'))} "
          f"| {_fmt(ia['b'], ia['ci'].get('b'))} | — | — | — |"]
  for name, kk in (("WSD, all branches (predicted)", None),
                   (f"WSD, k = {k} branches per trunk (predicted)", k)):
    pred = full if kk is None else cosine_equivalent.predict_points(
        wsd_wd, wsd, kk, bootstrap)
    a2 = _a2(wsd_wd, pred)
    used = {p["run_id"] for p in pred["points"] if p["measured"]}
    frac = _compute(wsd, used) / ind_spent
    ci = a2["ci"].get("a")
    ici = ia["ci"].get("a")
    da = abs(a2["a"] - ia["a"])
    inside = ici is not None and ici[0] <= a2["a"] <= ici[1]
    inside2 = ci is not None and ci[0] <= ia["a"] <= ci[1]
    out.append(f"| {name} | {100 * frac:.0f} % | {_fmt(a2['a'], ci)} | "
               f"{_fmt(a2['b'], a2['ci'].get('b'))} | {da:.3f} | "
               f"{'yes' if inside else 'NO'} | {'yes' if inside2 else 'NO'} |")
    out.append(f"|  (interval: {a2['interval_procedure']}; σ = seed "
               f"{a2['sigma_seed'] or 0:.4f} ⊕ law {a2['sigma_law_median']:.4f}) "
               "| | | | | | |")
  wa = json.load(open(os.path.join(wsd_wd, "report", "fit.json")))["approach2"]
  out.append(f"| WSD measured (for reference) | {100 * _compute(wsd, {r['run_id'] for r in wsd}) / ind_spent:.0f} % | "
             f"{_fmt(wa['a'], wa['ci'].get('a'))} | {_fmt(wa['b'], wa['ci'].get('b'))} "
             f"| {abs(wa['a'] - ia['a']):.3f} | | |")
  return "\n".join(out)


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--workdir", default="runs/wsd_vs_cosine")
  p.add_argument("--k", type=int, default=2)
  p.add_argument("--bootstrap", type=int, default=16)
  args = p.parse_args(argv)
  text = run(args.workdir, args.k, args.bootstrap)
  print(text)
  return 0


if __name__ == "__main__":
  sys.exit(main())
