r"""Fit a sweep's ledger and write ``DIR/report/``.

  python -m experiments.analyze DIR [--bootstrap=1000] [--approach=1,2,3] \
      [--isoflop_estimator=<name>|all] [--isoflop_scheme=runs|seed_noise]

Calls ``scaling`` (Approach 2 on the ledger's final losses, Approach 3 on the
same points, Approach 1 on the runs' eval-loss curves) and writes
``report.md``, ``fit.json`` (same schema as ``scaling.fit``), ``fit.md``,
``fit.tex`` and PNG plots (isoFLOP curves with parabolas, N*(C) and D*(C)
frontiers with bands, L(N, D) contours, loss curves). With >= 4 budgets the
report includes the extrapolation check (``scaling.approach2.extrapolation``: fit on
every budget but the largest, predict its N* and L*).
"""
from __future__ import annotations

import dataclasses
import os
import warnings
from typing import Any, Dict, Optional, Sequence

from absl import flags

from experiments import lr_tuning  # registers the lr_tuning check
from experiments.analysis_settings import AnalysisSettings
from experiments import cosine_equivalent  # registers its check
from experiments.compute import trunk_totals
from experiments.executor import SWEEP_JSON_HINT
from experiments.ledger import Ledger
from experiments.sweep_flops import sweep_flops_per_token
from lm import cli, safe_io
from lm.config import ConfigError
from scaling.approach2 import estimators as isoflop_estimators
from scaling.approach2 import extrapolation
from scaling.io.curves import branch_curves, load_workdir_curves
from scaling.io.loaders import load_runs
from scaling.io.types import ScalingDataError
from scaling.report import fit_schema
from scaling.report.analysis import run_fit
from scaling.report.summary import fit_summary_lines



def _sweep_meta(workdir: str) -> Dict[str, Any]:
  """sweep.json ({} if absent); a damaged one is one error line."""
  meta = safe_io.read_json(os.path.join(workdir, "sweep.json"),
                           hint=SWEEP_JSON_HINT)
  return meta if isinstance(meta, dict) else {}


def _report_budgets(meta: Dict[str, Any], runs) -> list:
  budgets = sorted({float(r["budget"]) for r in meta.get("runs", [])})
  if not budgets:
    budgets = sorted(set(float(b) for b in runs.budget))
  # The sweep's own budgets and one decade beyond (no far extrapolation).
  return budgets + [10 * budgets[-1]]


def _curves(workdir: str, settings: AnalysisSettings, records=()):
  """Approach-1 curves: a wsd_trunk sweep's branch ends (scaling.io.curves.
  branch_curves), else the runs' metrics (None, with a warning, if too few).

  Returns (curves or None, the skip message or None).

  With ``curve_loss='eval_loss'`` every record is the eval loss at the step
  it was measured (its own tokens and FLOPs), not smoothed; a run needs at
  least 2 eval records.
  """
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
            settings: Optional[AnalysisSettings] = None,
            estimator_options: Optional[Dict[str, Any]] = None
            ) -> Dict[str, Any]:
  """Fits the ledger in ``workdir``; writes and returns the report dict.

  Turns the workdir into runs + curves + settings, calls the one analysis
  pass (``scaling.report.analysis.run_fit``: each family fitted once, the
  extrapolation check, fit.json/.md/.tex and plots written once) and adds
  the sweep's own summary (report.md). Settings come from the sweep
  config's ``analysis`` section (sweep.json), then ``settings`` if given,
  then the keyword overrides (``estimator_options``: {setting: value} of
  ``scaling.approach2.estimators.OPTIONS``, e.g. {'isoflop_k': 7}).
  """
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
      isoflop_estimator=isoflop_estimator, isoflop_on_edge=isoflop_on_edge,
      **(estimator_options or {}))
  raw_runs = load_runs(ledger_path)
  # Several lrs per point: fit the loss at the lr optimum (experiments.lr_tuning).
  runs, settings, tuning = lr_tuning.prepare(records, raw_runs, settings)
  curves, no_curves = (_curves(workdir, settings, records) if 1 in approaches
                       else (None, None))
  if curves is None:
    approaches = tuple(a for a in approaches if a != 1)
  # report/ may not be a link out of the workdir (its files are replaced,
  # never written through: lm.safe_io).
  out_dir = safe_io.confined(workdir, "report", what="report directory")
  fit = run_fit(
      runs, approaches=approaches, out_dir=out_dir,
      budgets=_report_budgets(meta, runs),
      bootstrap=settings.bootstrap, seed=settings.seed,
      curves=curves, plots=plots,
      options={2: settings.isoflop_options(),
               1: ({"smooth_window": 1} if settings.curve_loss == "eval_loss"
                   else {})},
      choices={"approach2": settings.isoflop_estimator},
      flops_per_token=sweep_flops_per_token(meta, runs),
      checks={"extrapolation": (None if 2 in requested else
                                "Approach 2 not requested (--approach)"),
              lr_tuning.KEY: None,
              # WSD-trunk ledgers: Approach 2 on law-predicted cosine losses.
              **({cosine_equivalent.KEY: _cosine_equivalent_skip(tuning)}
                 if 2 in requested and cosine_equivalent.applies(records)
                 else {})},
      check_inputs=lr_tuning.check_inputs(records, raw_runs, meta, tuning),
      # Approaches 1 and 2 refuse grids that miss the optimum (loss monotone
      # in N at every budget, as in a 2-budget x 3-size test sweep): the
      # report says why and goes on with the others.
      skip_unfittable=("approach1", "approach2"), skip_hint=_SKIP_HINT,
      skipped=[no_curves] if no_curves else [], report_plots=True)
  report = {"fit": fit, "sweep": _sweep_summary(records, meta, workdir),
            "settings": dataclasses.asdict(settings)}
  safe_io.atomic_write(os.path.join(out_dir, "report.md"),
                       report_markdown(report))
  return report


def _cosine_equivalent_skip(tuning) -> Optional[str]:
  """None (run the check), or why it is skipped: its law is fitted per
  trunk at one learning rate, and Approach 2 on its predictions is not
  combined with the lr-tuned points (docs/wsd.md)."""
  if tuning is None:
    return None
  return ("the sweep has an lr grid (sweep.lr_multipliers): the cosine-"
          "equivalent prediction is per learning rate and is not combined "
          "with the lr-tuned points; train one multiplier to get it")


_SKIP_HINT = ("(centre the sizes on the optimum with sweep.prior_k or "
              "sweep.center, or widen sweep.size_range)")


def _sweep_summary(records, meta, workdir: str) -> Dict[str, Any]:
  ok = [r for r in records if r["status"] == "ok"]
  planned = [r["run_id"] for r in meta.get("runs", [])]  # sweep.json's plan
  present = {r["run_id"] for r in records}
  trunks = trunk_totals(workdir)
  return {
      "n_planned": len(planned) if planned else None,
      "missing": [rid for rid in planned if rid not in present],
      # sweep.branches=k: planned points predicted, never trained or missing.
      "n_predicted": len(meta.get("predicted") or []),
      "unreadable_trunks": trunks["unreadable"],
      "name": (meta.get("config") or {}).get("name", ""),
      "config_hash": meta.get("config_hash"),
      "n_runs": len(records), "n_ok": len(ok),
      "n_diverged": sum(r["status"] == "diverged" for r in records),
      "wall_time_s": sum(r.get("wall_time_s") or 0.0 for r in records),
      "trunk_wall_time_s": trunks["wall_time_s"],
      "flop_convention": records[0].get("flop_convention"),
      "param_convention": records[0].get("param_convention"),
  }


def _trunk_note(sw: Dict[str, Any]) -> str:
  t = sw.get("trunk_wall_time_s") or 0.0
  return f" in the runs + {t:.0f}s in their WSD trunks" if t else ""


def _runs_note(sw: Dict[str, Any]) -> str:
  """'43 ok / 44 runs in the ledger (1 diverged) of 45 planned (1 missing:
  id)': planned against present, the missing ones named."""
  text = (f"{sw['n_ok']} ok / {sw['n_runs']} runs in the ledger "
          f"({sw['n_diverged']} diverged")
  failed = sw['n_runs'] - sw['n_ok'] - sw['n_diverged']
  text += f", {failed} failed)" if failed else ")"
  if sw.get("n_planned") is None:
    return text + " (no sweep.json: planned runs unknown)"
  miss = sw.get("missing") or []
  text += f" of {sw['n_planned']} planned"
  if miss:
    more = f" and {len(miss) - 5} more" if len(miss) > 5 else ""
    text += f" ({len(miss)} MISSING: {', '.join(miss[:5])}{more})"
  if sw.get("n_predicted"):
    text += (f"; + {sw['n_predicted']} predicted points, not trained "
             "(sweep.branches; their cosine-equivalent losses below)")
  if sw.get("unreadable_trunks"):
    text += (f"; {len(sw['unreadable_trunks'])} trunk run.json unreadable "
             "(their compute and time NOT counted)")
  return text


def summary_text(report: Dict[str, Any]) -> str:
  """The printed summary: per-budget minima and the exponents with intervals.

  Every interval names its procedure (fit.json ``interval_procedure``).
  """
  fit, sw = report["fit"], report["sweep"]
  conv = fit.get("conventions") or {}
  lines = [f"sweep {sw['name']!r}: {_runs_note(sw)}, {sw['wall_time_s']:.0f}s of "
           f"training{_trunk_note(sw)}; C counted as {sw['flop_convention']}, N as "
           f"{sw['param_convention']}; F(N): "
           f"{(conv.get('flops_per_token') or {}).get('label', '?')}"]
  lines += fit_summary_lines(fit)   # every family's and check's lines
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
                   isoflop_on_edge=FLAGS.isoflop_on_edge,
                   estimator_options={o.setting: FLAGS[o.setting].value
                                      for o in isoflop_estimators.OPTIONS})
  print(summary_text(report))
  print(f"report: {os.path.join(argv[1], 'report', 'report.md')}")


if __name__ == "__main__":
  flags.DEFINE_integer("bootstrap", None, "Bootstrap resamples.",
                       lower_bound=0)
  flags.DEFINE_string("approach", "1,2,3", "Approaches to fit.")
  flags.DEFINE_enum("isoflop_scheme", None, ["runs", "seed_noise"],
                    "Approach 2 bootstrap (default: the sweep config's "
                    "analysis.isoflop_scheme, else 'runs').")
  flags.DEFINE_string("isoflop_estimator", None,
                      "Approach 2 estimator (" +
                      ", ".join(isoflop_estimators.ESTIMATORS) + ", or all; "
                      "default: the sweep config's analysis.isoflop_estimator, "
                      f"else {isoflop_estimators.DEFAULT_ESTIMATOR}).")
  flags.DEFINE_enum("isoflop_on_edge", None, ["drop", "keep"],
                    "Approach 2: drop or keep budgets whose parabola vertex "
                    "is outside the sampled sizes (default: the sweep "
                    "config's analysis.isoflop_on_edge, else 'drop').")
  for o in isoflop_estimators.OPTIONS:  # one flag per estimator option
    (flags.DEFINE_integer if o.kind is int else flags.DEFINE_float)(
        o.setting, None, f"{o.help} (default: the sweep config's "
        f"analysis.{o.setting}, else {o.default}).",
        lower_bound=o.flag_lower_bound)
  cli.run(main, interrupted="interrupted: every output written so far is a "
          "complete file (atomic writes); run the same command again to redo "
          "the fit")
