"""Cosine-equivalent losses of a WSD-trunk sweep, from a schedule-aware law.

A ``sweep.scheme='wsd_trunk'`` point is a WSD run (constant lr, 20 % cooldown),
whose loss is lower than the independent cosine run of the same (shape,
budget) would reach (docs/wsd.md). Per trunk (one shape, one seed) this
module fits the multi-power law (Luo et al. 2025, ``scaling.loss_curve``) to
the trunk's logged training loss and its branches' cooldown training loss
(``metrics.jsonl``: each record is the mean over its report window, placed
at the window's middle step; the first two windows are left out), then, for
every (shape, budget) point of S steps, predicts

  L_cos = eval_wsd + [L_law(cosine schedule of S steps, S) - L_law(WSD, S)]

(the measured WSD eval loss plus the law's schedule effect; the cosine
schedule is the project's ``cosine`` with the run's peak lr, warmup and
floor). A point whose branch was not trained (``branches=k``) gets
L_law(cosine, S) + the trunk's mean offset eval_wsd - L_law(WSD, S) over its
measured branches. The law's fit uncertainty is a bootstrap over logged
points (its replicates' spread of the predicted loss, sigma_law per point).

The registered check ``cosine_equivalent`` (``scaling.report.registry.Check``,
registered here: ``experiments.analyze`` imports this module and asks for it
on wsd_trunk ledgers, ``applies``) runs Approach 2 and the extrapolation
check on the predicted points, with the seed-noise scheme at
sigma = sqrt(sigma_seed^2 + median sigma_law^2), labelled as predictions;
the analysis pass stores its record as fit.json's ``cosine_equivalent`` and
prints its ``summary_lines``.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
import warnings
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from experiments.ledger import Ledger
from scaling.approach2 import extrapolation
from scaling.io.types import Runs
from scaling.loss_curve import fitting
from scaling.loss_curve.data import LossCurve, schedule_lr
from scaling.report import registry
from scaling.report.analysis import run_fit
from scaling.report.fit_schema import jsonable

LAW = "multipower"
BOOTSTRAP = 8      # law replicates per trunk (each a refit)


def _metrics(path: str) -> List[Dict[str, Any]]:
  """Records of a metrics.jsonl, one per step (the last wins)."""
  by = {}
  if os.path.exists(path):
    with open(path) as f:
      for line in f:
        line = line.strip()
        if line:
          r = json.loads(line)
          if r.get("loss") is not None and np.isfinite(r["loss"]):
            by[int(r["step"])] = r
  return [by[s] for s in sorted(by)]


def _train(run_dir: str) -> Dict[str, Any]:
  with open(os.path.join(run_dir, "run.json")) as f:
    return json.load(f)["config"]["train"]


def _lr(train: Dict[str, Any], schedule: str, steps: int) -> np.ndarray:
  return schedule_lr(schedule, int(steps), float(train["lr"]),
                     int(train["warmup_steps"]), float(train["min_lr_ratio"]),
                     float(train.get("cooldown_fraction", 0.2)),
                     str(train.get("cooldown_shape", "1-sqrt")))


def _curve(name, lr_T, recs, first_step, skip=0):
  """A LossCurve of window-mean train losses after ``first_step``."""
  steps, prev, pts = [r["step"] for r in recs], first_step, []
  for s, r in zip(steps, recs):
    if s > first_step:
      pts.append((int(round((prev + s) / 2)), float(r["loss"])))
    prev = max(prev, s)
  pts = [p for p in pts[skip:] if 1 <= p[0] < lr_T.size]
  if not pts:
    return None
  return LossCurve(name, lr_T, np.array([p[0] for p in pts]),
                   np.array([p[1] for p in pts]))


def _spread(n: int, k: Optional[int]) -> List[int]:
  """Indices of k of n branches spread over the budgets (ends included)."""
  if k is None or k >= n:
    return list(range(n))
  return sorted(set(np.linspace(0, n - 1, max(k, 1)).round().astype(int)))


def predict_points(workdir: str, records: Sequence[Dict[str, Any]],
                   branches: Optional[int] = None, bootstrap: int = BOOTSTRAP,
                   seed: int = 0, law: str = LAW) -> Dict[str, Any]:
  """Per-point predicted cosine-equivalent eval losses of a WSD ledger.

  ``branches``: use only k branches per trunk (spread over its budgets) in
  the fit and as anchors; None: every branch. Returns {'points': [...],
  'trunks': [...]}.
  """
  ok = [r for r in records if r.get("status") == "ok" and r.get("trunk_id")]
  by_trunk: Dict[str, list] = {}
  for r in ok:
    by_trunk.setdefault(r["trunk_id"], []).append(r)
  untrained: Dict[str, list] = {}
  for r in planned_untrained(workdir):
    untrained.setdefault(r["trunk_id"], []).append(r)
  points, trunks = [], []
  for tid, rs in sorted(by_trunk.items()):
    rs = sorted(rs, key=lambda r: r["steps"])
    keep = _spread(len(rs), branches)
    measured = [rs[i] for i in keep]
    rs = sorted(rs + untrained.get(tid, []), key=lambda r: r["steps"])
    tdir = os.path.join(workdir, "trunks", tid)
    ttrain = _train(tdir)
    P_max = max(int(r["branch_step"]) for r in rs)
    trunk_lr = _lr(ttrain, "wsd", int(ttrain["steps"]))[:P_max + 1]
    curves = [_curve(tid, trunk_lr, _metrics(os.path.join(tdir, "metrics.jsonl")),
                     0, skip=2)]
    for r in measured:
      rdir = os.path.join(workdir, "runs", r["run_id"])
      curves.append(_curve(r["run_id"], _lr(_train(rdir), "wsd", r["steps"]),
                           _metrics(os.path.join(rdir, "metrics.jsonl")),
                           int(r["branch_step"])))
    curves = [c for c in curves if c is not None]
    t0 = time.perf_counter()
    try:
      f = fitting.fit(law, curves, fitting.FitOptions(
          bootstrap_unit="points", max_bootstrap=bootstrap), bootstrap, seed)
    except Exception as e:  # pylint: disable=broad-except
      warnings.warn(f"cosine-equivalent: trunk {tid} not fitted ({e})")
      continue
    secs = time.perf_counter() - t0
    ends = []
    for r in rs:
      tr = (ttrain if r.get("untrained")  # same lr, warmup, floor, cooldown
            else _train(os.path.join(workdir, "runs", r["run_id"])))
      S = int(r["steps"])
      for sch in ("cosine", "wsd"):
        ends.append(LossCurve(f"{r['run_id']}:{sch}", _lr(tr, sch, S),
                              np.array([S]), np.ones(1)))
    L = np.array([p[0] for p in fitting.predict(f, ends)]).reshape(-1, 2)
    band = _replicates(f, ends)
    meas_ids = {r["run_id"] for r in measured}
    offs = [r["eval_loss"] - L[i, 1] for i, r in enumerate(rs)
            if r["run_id"] in meas_ids]
    off = float(np.mean(offs))
    for i, r in enumerate(rs):
      m = r["run_id"] in meas_ids
      delta = L[i, 0] - L[i, 1]
      pred = r["eval_loss"] + delta if m else L[i, 0] + off
      sd = None
      if band is not None:
        reps = band[:, i, 0] - band[:, i, 1] if m else band[:, i, 0]
        sd = float(np.std(reps, ddof=1))
      points.append(dict(run_id=r["run_id"], trunk_id=tid, C=r["C"], N=r["N"],
                         D=r["D"], budget=r["budget"], steps=r["steps"],
                         measured=m, trained=not r.get("untrained"),
                         eval_loss_wsd=r.get("eval_loss"),
                         delta_law=float(delta), loss_cosine_pred=float(pred),
                         sigma_law=sd))
    trunks.append(dict(trunk_id=tid, params=f.params, n_points=f.n_points,
                       n_curves=len(curves), n_branches_used=len(measured),
                       n_branches=len(rs), fit_seconds=secs,
                       objective=f.objective))
  return {"law": law, "branches": branches, "points": points, "trunks": trunks}


def planned_untrained(workdir: str) -> List[Dict[str, Any]]:
  """The points a ``sweep.branches=k`` plan predicts instead of training
  (sweep.json ``predicted``; experiments.branches), as point records with
  ``untrained=True`` and no eval loss; [] without them."""
  path = os.path.join(workdir, "sweep.json")
  if not os.path.exists(path):
    return []
  with open(path) as f:
    meta = json.load(f)
  return [dict(run_id=p["run_id"], trunk_id=p["trunk_id"], steps=p["steps"],
               branch_step=p["branch_step"], C=p["flops"], N=p["N"], D=p["D"],
               budget=p["budget"], untrained=True)
          for p in meta.get("predicted") or [] if p.get("trunk_id")]


def _replicates(f, ends):
  """(replicates, points, 2) predictions of the law's bootstrap replicates."""
  if not f.samples:
    return None
  keys = list(f.samples)
  out = []
  for i in range(len(f.samples[keys[0]])):
    fi = dataclasses.replace(f, params=dict(f.fixed, **{k: float(f.samples[k][i])
                                                       for k in keys}))
    out.append([p[0] for p in fitting.predict(fi, ends)])
  return np.array(out).reshape(len(out), -1, 2)


def predicted_runs(runs, points):
  """``runs`` with each point's loss replaced by its cosine-equivalent, plus
  the planned-but-untrained points (``sweep.branches=k``), which are in no
  ledger: every point of the plan, each a prediction."""
  by = {p["run_id"]: p["loss_cosine_pred"] for p in points}
  keep = np.array([rid in by for rid in runs.run_id], bool)
  sub = runs.subset(keep)
  extra = [p for p in points if p["run_id"] not in set(sub.run_id)]
  col = lambda k: np.array([float(p[k]) for p in extra], np.float64)
  prov = dict(sub.provenance, source=f"{sub.provenance.get('source')} "
              "(cosine-equivalent predictions, experiments.cosine_equivalent)")
  if extra:
    prov["untrained_points"] = len(extra)
  return Runs(N=np.concatenate([sub.N, col("N")]),
              D=np.concatenate([sub.D, col("D")]),
              C=np.concatenate([sub.C, col("C")]),
              loss=np.array([by[r] for r in sub.run_id]
                            + [p["loss_cosine_pred"] for p in extra],
                            np.float64),
              budget=np.concatenate([sub.budget, col("budget")]),
              run_id=np.concatenate([sub.run_id,
                                     np.array([p["run_id"] for p in extra],
                                              object)]),
              provenance=prov)


KEY = "cosine_equivalent"


def approach2_on(pred, runs, *, estimator, options, bootstrap, seed,
                 flops_per_token, sigma_seed):
  """Approach 2 and the extrapolation check on the predicted points.

  ``estimator``, ``options`` (Approach 2's run_fit options), ``bootstrap``,
  ``seed`` and ``flops_per_token``: the sweep's own; the scheme becomes
  seed_noise at sigma = sigma_seed ⊕ median sigma_law.
  """
  sl = [p["sigma_law"] for p in pred["points"] if p["sigma_law"] is not None]
  s_law = float(np.median(sl)) if sl else 0.0
  sigma = float(np.hypot(sigma_seed or 0.0, s_law))
  opts = dict(options or {}, scheme="seed_noise",
              seed_noise_std=sigma if sigma > 0 else None)
  pr = predicted_runs(runs, pred["points"])
  fit = run_fit(pr, approaches=(2,), bootstrap=bootstrap, seed=seed,
                plots=False, options={2: opts},
                choices={"approach2": estimator},
                flops_per_token=flops_per_token)
  check = extrapolation.check_extrapolation(
      pr, estimator=estimator, options=opts, bootstrap=bootstrap, seed=seed,
      flops_per_token=flops_per_token)
  a2 = fit["approach2"]
  return dict(a=a2["a"], b=a2["b"], ci=a2.get("ci", {}),
              minima=a2.get("minima", []),
              interval_procedure=a2.get("interval_procedure"),
              sigma_seed=sigma_seed, sigma_law_median=s_law, sigma=sigma,
              extrapolation=check.to_dict())


def applies(records) -> bool:
  """Whether a ledger is a wsd_trunk sweep's (its points have trunks)."""
  return any(r.get("trunk_id") for r in records)


def _skipped(reason: str) -> Dict[str, Any]:
  return {"status": "skipped", "reason": reason}


def _run_check(ctx: registry.CheckContext) -> Dict[str, Any]:
  """The check on the pass's runs (a ledger: its workdir's trunks and
  branches) with the pass's Approach-2 estimator, options, bootstrap, seed."""
  a2 = ctx.fitted.get("approach2")
  # Approach 2 on the measured points may be unfittable where the predicted
  # points are not (sweep.branches=k: few measured sizes per budget); then
  # the law's spread alone is the interval's sigma.
  sigma_seed = a2.fit.seed_noise_std if a2 is not None else None
  try:
    workdir = os.path.dirname(ctx.runs.provenance["source"])
    records = Ledger(os.path.join(workdir, "results.jsonl")).read()
    pred = predict_points(workdir, records, seed=ctx.seed)
    rec = dict(status="done", label="Approach 2 on PREDICTED cosine-equivalent "
               "losses (multi-power law per trunk, Luo et al. 2025)", **pred)
    rec["approach2"] = approach2_on(
        pred, ctx.runs, estimator=ctx.choices.get("approach2"),
        options=ctx.options.get("approach2"), bootstrap=ctx.bootstrap,
        seed=ctx.seed, flops_per_token=ctx.flops_per_token,
        sigma_seed=sigma_seed)
  except Exception as e:  # pylint: disable=broad-except
    rec = _skipped(f"{type(e).__name__}: {e}")
  return jsonable(rec)


def summary_lines(ce: Optional[Dict[str, Any]]) -> List[str]:
  """Printed lines of a fit.json ``cosine_equivalent`` record (none if absent)."""
  if not ce:
    return []
  if ce["status"] != "done":
    return [f"cosine-equivalent: skipped ({ce.get('reason')})"]
  a2, ci = ce["approach2"], ce["approach2"].get("ci", {})
  fmt = lambda v, c: (f"{v:.4g} [{c[0]:.4g}, {c[1]:.4g}]" if c else f"{v:.4g}")
  n_m = sum(p["measured"] for p in ce["points"])
  n_u = sum(not p.get("trained", True) for p in ce["points"])
  untrained = (f"; {n_u} planned but not trained, sweep.branches"
               if n_u else "")
  out = [f"{ce['label']}: {len(ce['points'])} points ({n_m} anchored on a "
         f"measured branch{untrained}), a = {fmt(a2['a'], ci.get('a'))}, b = "
         f"{fmt(a2['b'], ci.get('b'))} (PREDICTION; interval: "
         f"{a2['interval_procedure']}; σ = {a2['sigma']:.3g} = seed "
         f"{a2['sigma_seed'] or 0:.3g} ⊕ law {a2['sigma_law_median']:.3g})"]
  out += ["  (predicted points) " + l for l in
          extrapolation.summary_lines(a2["extrapolation"])]
  return out


registry.register_check(registry.Check(
    key=KEY, label="Approach 2 on the cosine-equivalent losses a schedule-aware "
    "law predicts for a WSD-trunk sweep's points",
    run=_run_check, skipped=_skipped, summary=summary_lines))
