r"""Command line: fit compute-optimal scaling laws (Hoffmann et al. 2022).

  python -m scaling.fit --input=chinchilla_epoch --approach=2,3 --out=/tmp/fit \
      [--budgets=1e21,5.76e23] [--bootstrap=4000] [--seed=0] \
      [--isoflop_estimator=local_parabola|parabola|akima|huber_parabola|all] \
      [--approach3_method=grid_lbfgs|mle|vpnls|all] [--extrapolation]
  python -m scaling.fit --input=runs.csv --approach=powerlaw --x=N --y=loss \
      [--powerlaw_offset] [--out=/tmp/pl]
  python -m scaling.fit --input=tuned.csv --approach=hparams [--hparams_band=0.0025]

``--input`` is a built-in data set (see ``scaling.io.loaders.BUILTIN_DATASETS``), a
.csv / .jsonl file of final runs, ``misfitting_curves`` or an experiments
working directory (``runs/*/metrics.jsonl``); the last two also give training
curves for Approach 1. Errors are printed as one line on stderr (exit 2),
through the entry points' one error path (``lm.cli``; ``--verbose`` adds the
traceback).
"""
from __future__ import annotations

import os
import sys
import warnings

from absl import flags

from scaling.io import curves as curves_lib
from scaling.io import loaders as data_lib
from scaling.approach2 import estimators as isoflop_estimators
from scaling.report.analysis import DEFAULT_BUDGETS, run_fit
from scaling.report.tables import text_table
from scaling.approach3.parametric import METHOD_ALIASES
from scaling.powerlaw import report as powerlaw_report
from scaling.approach2 import extrapolation
from scaling.hparams import cli as hparams_cli
from scaling.loss_curve import cli as loss_curve_cli
from scaling.report import registry
from lm import cli

_INPUT = flags.DEFINE_string("input", None, "built-in data set, .csv/.jsonl "
                             "file, misfitting_curves, or a workdir.")
_APPROACH = flags.DEFINE_list("approach", None, "approaches to run, e.g. 1,2,3 "
                              "(default: 2,3, plus 1 when curves exist).")
_OUT = flags.DEFINE_string("out", None, "output directory (fit.json, fit.md, "
                           "fit.tex, PNGs); omit to only print the table.")
_BUDGETS = flags.DEFINE_list("budgets", [f"{b:g}" for b in DEFAULT_BUDGETS],
                             "FLOP budgets for N*, D*, D/N.")
_BOOTSTRAP = flags.DEFINE_integer("bootstrap", 4000, "bootstrap replicates "
                                  "(0 = no intervals).", lower_bound=0)
_SEED = flags.DEFINE_integer("seed", 0, "bootstrap seed.", lower_bound=0)
_SCHEME = flags.DEFINE_enum("isoflop_scheme", "runs", ["runs", "seed_noise"],
                            "Approach-2 bootstrap: resample runs within "
                            "budgets, or perturb losses by seed noise.")
_WEIGHTED = flags.DEFINE_boolean("isoflop_weighted", None, "Approach 2: "
                                 "weighted power-law fit, weights 1/sigma_b^2 "
                                 "(default: on for seed_noise, off for runs).")
_ESTIMATOR = flags.DEFINE_string(
    "isoflop_estimator", isoflop_estimators.DEFAULT_ESTIMATOR,
    "Approach 2 per-budget estimator (" + ", ".join(isoflop_estimators.ESTIMATORS)
    + ") or 'all' (every one; the default is primary), printed side by side.")
# One flag per estimator option (scaling.approach2.estimators.OPTIONS).
_EST_OPTIONS = {
    o.setting: (flags.DEFINE_integer if o.kind is int else flags.DEFINE_float)(
        o.setting, o.default, o.help + ".", lower_bound=o.flag_lower_bound)
    for o in isoflop_estimators.OPTIONS}
_NOISE = flags.DEFINE_float("seed_noise_std", None, "Approach 2 seed_noise: "
                            "stated run-to-run loss std (default: measured "
                            "from seed repeats, else residual-based).")
_ON_EDGE = flags.DEFINE_enum("isoflop_on_edge", "drop", ["drop", "keep"],
                             "Approach 2: drop or keep budgets whose "
                             "minimum is at the edge of the sampled sizes.")
_A3_METHOD = flags.DEFINE_string(
    "approach3_method", None, "Approach-3 estimator: grid_lbfgs (Hoffmann "
    "2022; alias huber_grid), mle (Besiroglu et al. 2024), vpnls (variable "
    "projection) or all (default: grid_lbfgs).")
_X = flags.DEFINE_list("x", None, "--approach=powerlaw: x column(s); several "
                       "give y = a * prod x_k^b_k.")
_Y = flags.DEFINE_string("y", None, "--approach=powerlaw: the y column.")
_PL_OFFSET = flags.DEFINE_boolean("powerlaw_offset", False, "--approach="
                                  "powerlaw: fit y = c + a x^b (one x).")
_EXTRAP = flags.DEFINE_boolean(
    "extrapolation", False, "also run the extrapolation check "
    "(scaling.approach2.extrapolation: Approach 2 on every budget but the largest, "
    "predicting its N* and L*; needs >= 4 budgets).")
_HPARAMS = hparams_cli.define_flags(flags)   # --hparams_<option>
_PLOTS = flags.DEFINE_boolean("plots", True, "write PNG plots (needs "
                              "matplotlib).")

# Workdir file holding final runs (experiments.ledger), used when present.
_LEDGER_NAMES = ("results.jsonl",)


def _parse_list(values, what, cast):
  try:
    return [cast(v) for v in values]
  except ValueError:
    raise data_lib.ScalingDataError(
        f"--{what} must be a comma-separated list of numbers; got "
        f"{','.join(values)!r}") from None


def load_inputs(source: str, approaches):
  """Returns (runs or None, curves or None, approaches) for an --input."""
  has_curves = curves_lib.is_curve_source(source)
  if approaches is None:
    approaches = (1, 2, 3) if has_curves else (2, 3)
  if 1 in approaches and not has_curves:
    raise data_lib.ScalingDataError(
        f"approach 1 needs training curves but --input={source} has final "
        "losses only; use a workdir with runs/*/metrics.jsonl or "
        "misfitting_curves, or drop 1 from --approach.")
  curves = curves_lib.load_curves(source) if has_curves else None
  runs = None
  if any(a in approaches for a in (2, 3)):
    if not has_curves:
      runs = data_lib.load_runs(source)
    elif source in curves_lib.BUILTIN_CURVES:
      runs = data_lib.load_runs("misfitting_final")
    else:
      ledgers = [os.path.join(source, n) for n in _LEDGER_NAMES
                 if os.path.exists(os.path.join(source, n))]
      runs = (data_lib.load_runs(ledgers[0]) if ledgers
              else curves_lib.runs_from_curves(curves))
  return runs, curves, tuple(approaches)


def _approaches(values):
  """--approach tokens: 1, 2, 3 or a family name (e.g. powerlaw)."""
  if values is None:
    return None
  out = []
  for v in values:
    v = v.strip()
    out.append(int(v) if v.isdigit() else v)
  return tuple(out)


def _fit_args():
  """run_fit keyword arguments for the flags (inputs loaded)."""
  approaches = _approaches(_APPROACH.value)
  budgets = _parse_list(_BUDGETS.value, "budgets", float)
  a3 = METHOD_ALIASES.get(_A3_METHOD.value, _A3_METHOD.value)
  kw = dict(budgets=budgets, bootstrap=_BOOTSTRAP.value, seed=_SEED.value,
            plots=_PLOTS.value, out_dir=_OUT.value,
            choices={"approach2": _ESTIMATOR.value, "approach3": a3},
            command_line=" ".join(["python -m scaling.fit"] + sys.argv[1:]))
  if approaches and "powerlaw" in approaches:
    if len(approaches) > 1:
      raise data_lib.ScalingDataError(
          "--approach=powerlaw runs alone; drop the other approaches")
    cols, prov = powerlaw_report.load_columns(_INPUT.value)
    kw.update(approaches=approaches, table=(cols, prov), options={
        "powerlaw": {"x": [powerlaw_report.resolve_column(cols, k)
                           for k in (_X.value or [])],
                     "y": (powerlaw_report.resolve_column(cols, _Y.value)
                           if _Y.value else ""),
                     "offset": _PL_OFFSET.value}})
    return None, kw
  if approaches and "hparams" in approaches:
    return None, hparams_cli.fit_kwargs(_INPUT.value, approaches, _HPARAMS, kw)
  if approaches and "loss_curve" in approaches:
    return loss_curve_cli.fit_args(_INPUT.value, kw)
  if _X.value or _Y.value or _PL_OFFSET.value:
    raise data_lib.ScalingDataError(
        "--x, --y and --powerlaw_offset apply to --approach=powerlaw")
  runs, curves, approaches = load_inputs(_INPUT.value, approaches)
  kw.update(approaches=approaches, curves=curves, options={
      2: {"scheme": _SCHEME.value, "weighted": _WEIGHTED.value,
          "on_edge": _ON_EDGE.value, "seed_noise_std": _NOISE.value,
          "estimator_options": isoflop_estimators.estimator_options(
              {k: f.value for k, f in _EST_OPTIONS.items()})}})
  return runs, kw


def main(argv):
  if len(argv) > 1:
    raise data_lib.ScalingDataError(f"unexpected arguments {argv[1:]}")
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    runs, kw = _fit_args()
    if _EXTRAP.value and runs is None:
      raise data_lib.ScalingDataError(
          "--extrapolation needs final-loss runs (Approach 2), not "
          "--approach=powerlaw")
    result = run_fit(runs, **kw,
                     checks={"extrapolation": None} if _EXTRAP.value else None)
  for m in dict.fromkeys(" ".join(str(w.message).split()) for w in caught):
    print(f"warning: {m}", file=sys.stderr)
  print(text_table(result), end="")
  for family in ("hparams", "loss_curve"):  # their own lines (registry.Summary)
    if result.get(family):
      print("\n".join(registry.SUMMARIES[family].lines(result)))
  if _EXTRAP.value:
    print("\n".join(extrapolation.summary_lines(result["extrapolation"])))
  if _OUT.value:
    print(f"wrote {os.path.join(_OUT.value, 'fit.json')}, fit.md, fit.tex"
          + (", " + ", ".join(result["plots"]) if result.get("plots") else ""))
  return 0


if __name__ == "__main__":
  flags.mark_flag_as_required("input")
  cli.run(main, interrupted="interrupted: every output written so far is a "
          "complete file (atomic writes); run the same command again to redo "
          "the fit")
