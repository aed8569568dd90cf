r"""Fit a sweep's ledger and write ``DIR/report/``.

  python -m experiments.analyze DIR [--bootstrap=1000] [--approach=1,2,3] \
      [--isoflop_estimator=<name>|all] [--isoflop_scheme=runs|seed_noise]

Calls ``scaling`` (Approach 2 on the ledger's final losses, Approach 3 on the
same points, Approach 1 on the runs' eval-loss curves) and writes
``report.md``, ``fit.json`` (same schema as ``scaling.fit``), ``fit.md``,
``fit.tex`` and PNG plots (isoFLOP curves with parabolas, N*(C) and D*(C)
frontiers with bands, L(N, D) contours, loss curves). With >= 4 budgets the
report includes the extrapolation check (``scaling.extrapolation``: fit on
every budget but the largest, predict its N* and L*).
"""
from __future__ import annotations

import dataclasses
import json
import os
import warnings
from typing import Any, Dict, Optional, Sequence

from experiments.analysis_settings import AnalysisSettings
from experiments.ledger import Ledger
from experiments.sweep_flops import sweep_flops_per_token



def _sweep_meta(workdir: str) -> Dict[str, Any]:
  path = os.path.join(workdir, "sweep.json")
  if not os.path.exists(path):
    return {}
  with open(path) as f:
    return json.load(f)


def _report_budgets(meta: Dict[str, Any], runs) -> list:
  budgets = sorted({float(r["budget"]) for r in meta.get("runs", [])})
  if not budgets:
    budgets = sorted(set(float(b) for b in runs.budget))
  # The sweep's own budgets and one decade beyond (no far extrapolation).
  return budgets + [10 * budgets[-1]]


def _plot_loss_curves(curves, out_path: str) -> Optional[str]:
  try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
  except ImportError:
    warnings.warn("loss-curve plot skipped: pip install 'scalinglm[plots]'")
    return None
  import numpy as np
  fig, ax = plt.subplots(figsize=(6.4, 4.2))
  Ns = np.array([c.N for c in curves.curves])
  lo, hi = np.log(Ns.min()), np.log(Ns.max())
  cmap = plt.get_cmap("viridis")
  for c in curves.curves:
    t = 0.5 if hi == lo else (np.log(c.N) - lo) / (hi - lo)
    ax.plot(c.C, c.loss, color=cmap(t), lw=0.8, alpha=0.8,
            marker="o" if c.C.size < 10 else None, ms=3)
  ax.set_xscale("log")
  ax.set_xlabel("training FLOPs C (cumulative)")
  loss = str(curves.provenance.get("loss", "loss")).split()[0]
  ax.set_ylabel(f"{loss} (nats/token)")
  ax.set_title("loss curves, coloured by N (dark = small)")
  fig.tight_layout()
  fig.savefig(out_path, dpi=120)
  plt.close(fig)
  return out_path


def _fittable(runs, curves, approaches, fit_kwargs):
  """(approaches that can be fitted, one warning per skipped one).

  Approaches 1 and 2 refuse grids that miss the optimum (loss monotone in N
  at every budget, as in a 2-budget x 3-size test sweep); a point fit without
  bootstrap tells cheaply. The analysis then reports the others and says
  why, instead of failing as a whole; if none can be fitted, the first
  refusal is the error.
  """
  from scaling.data import ScalingDataError
  from scaling.report import run_fit
  probe = dict(fit_kwargs)   # a point fit: no bootstrap, so no weights
  probe["options"] = {k: dict(v, weighted=False) if k == 2 else v
                      for k, v in fit_kwargs.get("options", {}).items()}
  keep, skipped, first = [], [], None
  for a in approaches:
    if a == 3 or (a == 1 and curves is None):
      keep.append(a)
      continue
    try:
      with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_fit(runs, approaches=(a,), bootstrap=0, curves=curves,
                plots=False, **probe)
      keep.append(a)
    except ScalingDataError as e:
      first = first or e
      skipped.append(f"Approach {a} skipped: {' '.join(str(e).split())} "
                     "(centre the sizes on the optimum with sweep.prior_k or "
                     "sweep.center, or widen sweep.size_range)")
  if not keep:
    raise first
  for msg in skipped:
    warnings.warn(msg)
  return tuple(keep), skipped


def _curves(workdir: str, settings: AnalysisSettings, records=()):
  """Approach-1 curves: a wsd_trunk sweep's branch ends (scaling.curves.
  branch_curves), else the runs' metrics (None, with a warning, if too few).

  Returns (curves or None, the skip message or None).

  With ``curve_loss='eval_loss'`` every record is the eval loss at the step
  it was measured (its own tokens and FLOPs), not smoothed; a run needs at
  least 2 eval records.
  """
  from scaling.curves import branch_curves, load_workdir_curves
  from scaling.data import ScalingDataError
  key = settings.curve_loss
  branches = any(r.get("trunk_id") for r in records)  # wsd_trunk: branch ends
  try:
    if branches:
      return branch_curves(records, workdir), None
    curves = load_workdir_curves(workdir, loss_key=key)
  except (ScalingDataError, FileNotFoundError, ValueError) as e:
    if branches:
      key, hint = "branch", " (each trunk needs >= 2 finished branches)"
    else:
      hint = (" (train.eval_every=0 evaluates only at the end of each run; "
              "set train.eval_every, or analysis.curve_loss='loss' for train "
              "loss)" if key == "eval_loss" else "")
    msg = f"Approach 1 skipped: too few {key} records: {e}{hint}"
    warnings.warn(msg)
    return None, " ".join(msg.split())
  if curves.provenance.get("exclusions"):
    warnings.warn(f"Approach 1: {len(curves.provenance['exclusions'])} run(s) "
                  f"have fewer than 2 {key} records and are left out of the "
                  "envelope.")
  return curves, None


def analyze(workdir: str, *, bootstrap: Optional[int] = None,
            approaches: Sequence[int] = (1, 2, 3), seed: Optional[int] = None,
            plots: bool = True, isoflop_scheme: Optional[str] = None,
            isoflop_estimator: Optional[str] = None,
            isoflop_on_edge: Optional[str] = None,
            settings: Optional[AnalysisSettings] = None) -> Dict[str, Any]:
  """Fits the ledger in ``workdir``; writes and returns the report dict.

  Settings come from the sweep config's ``analysis`` section (sweep.json),
  then ``settings`` if given, then the keyword overrides.
  """
  from scaling.data import ScalingDataError, load_runs
  from scaling.report import run_fit, write_outputs
  requested = tuple(approaches)

  ledger_path = os.path.join(workdir, "results.jsonl")
  if not os.path.exists(ledger_path):
    raise FileNotFoundError(f"{ledger_path} not found: run the sweep first "
                            "(python -m experiments.isoflop ...)")
  records = Ledger(ledger_path).read()  # validates every line, names a bad one
  if not records:
    raise ScalingDataError(f"{ledger_path} is empty: no finished runs to fit")
  meta = _sweep_meta(workdir)
  if settings is None:
    settings = AnalysisSettings.from_config(
        (meta.get("config") or {}).get("analysis"))
  settings = settings.with_overrides(
      bootstrap=bootstrap, seed=seed, isoflop_scheme=isoflop_scheme,
      isoflop_estimator=isoflop_estimator, isoflop_on_edge=isoflop_on_edge)
  runs = load_runs(ledger_path)
  curves, no_curves = (_curves(workdir, settings, records) if 1 in approaches
                       else (None, None))
  if curves is None:
    approaches = tuple(a for a in approaches if a != 1)
  out_dir = os.path.join(workdir, "report")
  os.makedirs(out_dir, exist_ok=True)
  fit_kwargs = dict(
      options={2: settings.isoflop_options(),
               1: ({"smooth_window": 1} if settings.curve_loss == "eval_loss"
                   else {})},
      choices={"approach2": settings.isoflop_estimator},
      flops_per_token=sweep_flops_per_token(meta, runs))
  approaches, skipped = _fittable(runs, curves, approaches, fit_kwargs)
  skipped = ([no_curves] if no_curves else []) + skipped
  fit = run_fit(runs, approaches=approaches, out_dir=out_dir,
                budgets=_report_budgets(meta, runs),
                bootstrap=settings.bootstrap, seed=settings.seed,
                curves=curves, plots=plots, **fit_kwargs)
  if skipped:  # fit.json must say which approaches are missing, and why
    fit["warnings"] = skipped + fit.get("warnings", [])
  if plots and curves is not None:
    p = _plot_loss_curves(curves, os.path.join(out_dir, "loss_curves.png"))
    if p:
      fit.setdefault("plots", []).append(os.path.basename(p))
  _extrapolation(fit, runs, settings, fit_kwargs["flops_per_token"],
                 2 in requested, out_dir if plots else None)
  from experiments import cosine_equivalent  # WSD ledgers only (issue 21)
  cosine_equivalent.attach(fit, workdir, records, runs, settings, fit_kwargs)
  write_outputs(fit, out_dir)
  report = {"fit": fit, "sweep": _sweep_summary(records, meta, workdir),
            "settings": dataclasses.asdict(settings)}
  with open(os.path.join(out_dir, "report.md"), "w") as f:
    f.write(report_markdown(report))
  return report


def _extrapolation(fit, runs, settings, F, with_approach2, plot_dir) -> None:
  """Adds the extrapolation check (scaling.extrapolation) to ``fit``."""
  from scaling import extrapolation, fit_schema
  if not with_approach2:
    check = extrapolation.ExtrapolationCheck(
        "skipped", "Approach 2 not requested (--approach)", None, None)
  else:
    check = extrapolation.check_extrapolation(
        runs, estimator=settings.isoflop_estimator,
        options=settings.isoflop_options(), bootstrap=settings.bootstrap,
        seed=settings.seed, flops_per_token=F)
  fit_schema.set_extrapolation(fit, check.to_dict())
  if plot_dir and check.status == "done":
    try:
      path = extrapolation.plot_extrapolation(
          fit["extrapolation"], os.path.join(plot_dir, "extrapolation.png"))
      fit.setdefault("plots", []).append(os.path.basename(path))
    except ImportError as e:
      warnings.warn(f"extrapolation plot skipped: {e}")


def _sweep_summary(records, meta, workdir: str) -> Dict[str, Any]:
  from experiments.compute import trunk_totals
  ok = [r for r in records if r["status"] == "ok"]
  return {
      "name": (meta.get("config") or {}).get("name", ""),
      "config_hash": meta.get("config_hash"),
      "n_runs": len(records), "n_ok": len(ok),
      "n_diverged": sum(r["status"] == "diverged" for r in records),
      "wall_time_s": sum(r.get("wall_time_s") or 0.0 for r in records),
      "trunk_wall_time_s": trunk_totals(workdir)["wall_time_s"],
      "flop_convention": records[0].get("flop_convention"),
      "param_convention": records[0].get("param_convention"),
  }


def _fmt_ci(value, ci) -> str:
  if ci is None or ci[0] is None:
    return f"{value:.4g}"
  return f"{value:.4g} [{ci[0]:.4g}, {ci[1]:.4g}]"


def _interval_note(d: Dict[str, Any]) -> str:
  """' (interval: <procedure>)' from a fit.json entry."""
  proc = d.get("interval_procedure")
  return f" (interval: {proc})" if proc else " (no interval)"


def _approach2_lines(fit) -> list:
  a2 = fit["approach2"]
  lines = [f"{a2['label']}: per-budget minima (D* = C / F(N*))",
           f"  {'C':>9} {'N*':>10} {'D*':>12} {'D*/N*':>7} {'L*':>7}"]
  for m in a2["minima"]:
    lines.append(f"  {m['C']:9.3g} {m['N_opt']:10.4g} {m['D_opt']:12.4g} "
                 f"{m['D_opt'] / m['N_opt']:7.1f} {m['L_opt']:7.4f}")
  for C, why in a2.get("dropped", {}).items():
    lines.append(f"  dropped C={C}: {why}")
  ci = a2.get("ci", {})
  lines.append(f"  N* ∝ C^a: a = {_fmt_ci(a2['a'], ci.get('a'))}; "
               f"D* ∝ C^b: b = {_fmt_ci(a2['b'], ci.get('b'))}"
               f"{_interval_note(a2)}")
  for key, e in (fit.get("alternatives") or {}).items():
    if e.get("family") == "approach2":
      c = e.get("ci", {})
      lines.append(f"  also {e['estimator']}: a = {_fmt_ci(e['a'], c.get('a'))},"
                   f" b = {_fmt_ci(e['b'], c.get('b'))}{_interval_note(e)}")
  return lines


def _trunk_note(sw: Dict[str, Any]) -> str:
  t = sw.get("trunk_wall_time_s") or 0.0
  return f" in the runs + {t:.0f}s in their WSD trunks" if t else ""


def summary_text(report: Dict[str, Any]) -> str:
  """The printed summary: per-budget minima and the exponents with intervals.

  Every interval names its procedure (fit.json ``interval_procedure``).
  """
  fit, sw = report["fit"], report["sweep"]
  conv = fit.get("conventions") or {}
  lines = [f"sweep {sw['name']!r}: {sw['n_ok']} ok / {sw['n_runs']} runs "
           f"({sw['n_diverged']} diverged), {sw['wall_time_s']:.0f}s of "
           f"training{_trunk_note(sw)}; C counted as {sw['flop_convention']}, N as "
           f"{sw['param_convention']}; F(N): "
           f"{(conv.get('flops_per_token') or {}).get('label', '?')}"]
  if fit.get("approach2"):
    lines += _approach2_lines(fit)
  a3 = fit.get("approach3")
  if a3:
    ci = a3.get("ci", {})
    lines.append(f"{a3['label']}: "
                 f"E = {_fmt_ci(a3['E'], ci.get('E'))}, "
                 f"α = {_fmt_ci(a3['alpha'], ci.get('alpha'))}, "
                 f"β = {_fmt_ci(a3['beta'], ci.get('beta'))}, "
                 f"a = {_fmt_ci(a3['a'], ci.get('a'))}{_interval_note(a3)}")
  lc = fit.get("loss_vs_compute")
  if lc:
    ci = lc.get("ci", {})
    preds = ", ".join(f"L*({k}) = {_fmt_ci(r['loss'], r.get('loss_ci'))}"
                      for k, r in lc.get("compute_optimal", {}).items())
    E = ("0 (at its bound: no saturation visible over these budgets)"
         if lc.get("E_at_zero") else _fmt_ci(lc.get("E"), ci.get("E")))
    lines.append(f"{lc['label']}: E = {E}, "
                 f"gamma = {_fmt_ci(lc['gamma'], ci.get('gamma'))}; {preds}"
                 f"{_interval_note(lc)}")
  a1 = fit.get("approach1")
  if a1:
    ci = a1.get("ci", {})
    lines.append(f"{a1['label']}: a = "
                 f"{_fmt_ci(a1['a'], ci.get('a'))}, b = "
                 f"{_fmt_ci(a1['b'], ci.get('b'))}{_interval_note(a1)}")
  from scaling import extrapolation, fit_schema
  lines += extrapolation.summary_lines(fit_schema.extrapolation(fit))
  from experiments import cosine_equivalent
  lines += cosine_equivalent.summary_lines(fit)
  for w in fit.get("warnings", []):
    lines.append(f"warning: {w}")
  return "\n".join(lines)


def report_markdown(report: Dict[str, Any]) -> str:
  fit = report["fit"]
  plots = fit.get("plots", [])
  body = ["# IsoFLOP sweep report", "", "```", summary_text(report), "```", ""]
  body += [f"![{p}]({os.path.basename(p)})" for p in plots]
  body += ["", "Full numbers with provenance: `fit.json`; tables: `fit.md`, "
           "`fit.tex`."]
  return "\n".join(body) + "\n"


def main(argv):
  from absl import flags
  from lm.config import ConfigError
  FLAGS = flags.FLAGS
  if len(argv) != 2:
    raise ConfigError("usage: python -m experiments.analyze DIR "
                     "[--bootstrap=N] [--approach=1,2,3]")
  try:
    approaches = tuple(int(a) for a in FLAGS.approach.split(",") if a.strip())
  except ValueError:
    approaches = ()
  if not approaches or set(approaches) - {1, 2, 3}:
    raise ConfigError(f"--approach must be a comma-separated subset of 1,2,3, "
                      f"got {FLAGS.approach!r}")
  report = analyze(argv[1], bootstrap=FLAGS.bootstrap, approaches=approaches,
                   isoflop_scheme=FLAGS.isoflop_scheme,
                   isoflop_estimator=FLAGS.isoflop_estimator,
                   isoflop_on_edge=FLAGS.isoflop_on_edge)
  print(summary_text(report))
  print(f"report: {os.path.join(argv[1], 'report', 'report.md')}")


if __name__ == "__main__":
  from absl import flags
  from lm import cli
  flags.DEFINE_integer("bootstrap", None, "Bootstrap resamples.",
                       lower_bound=0)
  flags.DEFINE_string("approach", "1,2,3", "Approaches to fit.")
  flags.DEFINE_enum("isoflop_scheme", None, ["runs", "seed_noise"],
                    "Approach 2 bootstrap (default: the sweep config's "
                    "analysis.isoflop_scheme, else 'runs').")
  from scaling import isoflop_estimators
  flags.DEFINE_string("isoflop_estimator", None,
                      "Approach 2 estimator (" +
                      ", ".join(isoflop_estimators.ESTIMATORS) + ", or all; "
                      "default: the sweep config's analysis.isoflop_estimator, "
                      f"else {isoflop_estimators.DEFAULT_ESTIMATOR}).")
  flags.DEFINE_enum("isoflop_on_edge", None, ["drop", "keep"],
                    "Approach 2: drop or keep budgets whose parabola vertex "
                    "is outside the sampled sizes (default: the sweep "
                    "config's analysis.isoflop_on_edge, else 'drop').")
  cli.run(main)
