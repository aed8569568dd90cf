"""Extrapolation check: fit on every budget but the largest, predict the largest.

A scaling law earns trust by predicting a budget it was not fitted on. For a
sweep with K >= ``MIN_BUDGETS`` budgets C_1 < ... < C_K:

  1. hold out C_max = C_K and fit the sweep's Approach 2 on the runs of
     C_1 .. C_{K-1}: the registry method of its estimator
     (``scaling.approach2.method``) with the sweep's interval scheme,
     weights, edge rule, bootstrap count and seed;
  2. predict N*(C_max) = k_N C_max^a with that fit's bootstrap band, and
     D*(C_max) = C_max / F(N*) under the sweep's FLOP convention (F(N*) D* = C,
     ``scaling.numerics.token_flops``);
  3. predict L*(C_max) from a law of the held-in minima L*(C): the first
     ``loss_vs_compute`` registry method that applies, in registry order --
     the saturating E + A C^-gamma (Porian et al. 2024; >= 4 held-in
     budgets), else the power law A C^-gamma (Kaplan et al. 2020; >= 3) --
     whose interval perturbs each held-in L* by its own spread over the
     Approach-2 replicates (Porian et al. 2024's parametric bootstrap);
  4. measure: the same estimator on the held-out budget's own runs (a point
     fit of every budget, same edge rule): its vertex N*, its minimum L*,
     and D* = C_max / F(N*).

Reported per quantity: predicted [interval], measured, whether the
measurement lies in the interval, and (predicted - measured) / measured.
The intervals are confidence bands of the extrapolated law (the held-in
fit's uncertainty); the measured minimum has its own noise, so a value just
outside is a warning sign, not by itself a failure.

Skipped with a one-line reason (never an error): fewer than ``MIN_BUDGETS``
budgets; a held-out budget without a usable minimum (the edge rule); fewer
than ``MIN_FIT_BUDGETS`` usable held-in budgets. The record is stored in
fit.json under ``extrapolation`` (``scaling.report.fit_schema``).
"""
from __future__ import annotations

import dataclasses
import os
import warnings
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from scaling.approach2 import isoflop as isoflop_lib
from scaling.approach2 import estimators as est_lib
from scaling.report import registry as methods_lib
from scaling.numerics import token_flops
from scaling.numerics.budgets import group_budgets
from scaling.numerics.intervals import format_interval
from scaling.io.loaders import ScalingDataError
# The registered methods the check refits (their register() calls):
from scaling.approach2 import method as _approach2  # noqa: F401
from scaling.loss_vs_compute import method as _saturation  # noqa: F401
from scaling.loss_vs_compute import loss_power_law as _power_law  # noqa: F401
from scaling.report import fit_schema
from scaling.report import plots as plots_lib

MIN_BUDGETS = 4       # 3 held in (a line and one degree of freedom) + 1 out.
MIN_FIT_BUDGETS = 3   # usable held-in budgets (2 fix the power law exactly).
_GRID = 25            # points of the stored curves (plots).


@dataclasses.dataclass(frozen=True)
class Prediction:
  """One quantity at the held-out budget: extrapolated against measured."""
  law: str
  """The fitted law that predicts it, with its numbers."""
  citation: str
  """Where the law comes from."""
  predicted: float
  """The law's value at the held-out budget."""
  interval: Optional[Tuple[float, float]]
  """(lo, hi) of the prediction; None without intervals."""
  interval_procedure: Optional[str]
  """How ``interval`` was made (scheme, replicates, percentiles)."""
  measured: float
  """The held-out budget's own minimum, by the same estimator."""

  @property
  def rel_error(self) -> float:
    """(predicted - measured) / measured."""
    return (self.predicted - self.measured) / self.measured

  @property
  def inside(self) -> Optional[bool]:
    """Whether ``measured`` lies in ``interval`` (None without one)."""
    if self.interval is None or not np.all(np.isfinite(self.interval)):
      return None
    return bool(self.interval[0] <= self.measured <= self.interval[1])

  def to_dict(self) -> Dict[str, Any]:
    return dataclasses.asdict(self) | {"rel_error": self.rel_error,
                                       "inside": self.inside}


@dataclasses.dataclass(frozen=True)
class ExtrapolationCheck:
  """The extrapolation check of one sweep (fit.json ``extrapolation``)."""
  status: str
  """'done' or 'skipped'."""
  reason: Optional[str]
  """Why it was skipped (one line); None when done."""
  n_budgets: Optional[int]
  """Budgets in the data (None when not counted)."""
  held_out_C: Optional[float]
  """The held-out (largest) budget."""
  procedure: str = ""
  """One line naming what was fitted and predicted (in every output)."""
  fit_budgets: Tuple[float, ...] = ()
  """Budgets the held-in Approach-2 fit used (after its edge rule)."""
  dropped: Dict[str, str] = dataclasses.field(default_factory=dict)
  """Held-in budgets the Approach-2 fit dropped, and why."""
  N_opt: Optional[Prediction] = None
  """N* at the held-out budget."""
  D_opt: Optional[Prediction] = None
  """D* = C / F(N*) at the held-out budget (the sweep's FLOP convention)."""
  L_opt: Optional[Prediction] = None
  """L* at the held-out budget (None when no loss-vs-compute law applies)."""
  loss_laws_skipped: Dict[str, str] = dataclasses.field(default_factory=dict)
  """loss_vs_compute methods that did not apply to the held-in minima, why."""
  warnings: Tuple[str, ...] = ()
  """Warnings raised by the check's own fits."""
  curve: Dict[str, Any] = dataclasses.field(default_factory=dict)
  """For plots: the held-in minima and the fitted laws with their bands on
  a grid of C from the smallest held-in budget to the held-out one."""

  def to_dict(self) -> Dict[str, Any]:
    d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
    for k in ("N_opt", "D_opt", "L_opt"):
      d[k] = None if d[k] is None else d[k].to_dict()
    d["fit_budgets"], d["warnings"] = list(self.fit_budgets), list(self.warnings)
    return d


class _Skip(Exception):
  """The check does not apply; the message is the one-line reason."""


def _first(band, key) -> Optional[Tuple[float, float]]:
  if band is None or key not in band:
    return None
  return float(np.ravel(band[key][0])[0]), float(np.ravel(band[key][1])[0])


def _measure(runs, C_max, estimator, options, F) -> Dict[str, Any]:
  """The held-out budget's minimum: the estimator's point fit of every budget."""
  est_opts = dict((options.get("estimator_options") or {}).get(estimator, {}))
  try:
    fit = isoflop_lib.fit_isoflop(
        runs, estimator=estimator, estimator_options=est_opts, bootstrap=0,
        scheme="runs", weighted=False, flops_per_token=F,
        on_edge=options.get("on_edge") or "drop")
  except ScalingDataError as e:
    raise _Skip(f"the held-out budget C={C_max:.3g} could not be measured "
                f"({' '.join(str(e).split())})") from None
  rows = [m for m in fit.minima if m["C"] == C_max]
  if not rows:
    why = fit.dropped.get(f"{C_max:.3g}", "dropped")
    raise _Skip(f"the held-out budget C={C_max:.3g} has no usable minimum "
                f"({why})")
  return rows[0]


def _fit_held_in(held, C_max, estimator, options, bootstrap, seed, F):
  inputs = methods_lib.FitInputs(held, None, (C_max,), int(bootstrap),
                                 int(seed), F)
  method = methods_lib.get(f"approach2.{estimator}")
  try:
    a2 = method.fit(inputs, dict(options))
  except ScalingDataError as e:
    raise _Skip(f"Approach 2 on the budgets below C={C_max:.3g} failed "
                f"({' '.join(str(e).split())})") from None
  if len(a2.fit.minima) < MIN_FIT_BUDGETS:
    raise _Skip(f"only {len(a2.fit.minima)} usable budget(s) below "
                f"C={C_max:.3g}; the check needs >= {MIN_FIT_BUDGETS}")
  inputs.previous["approach2"] = a2
  return method, a2, inputs


def _loss_law(inputs):
  """(method, result, skipped) of the first loss_vs_compute method that applies.

  Intervals perturb each held-in L* by its own Approach-2 replicate spread
  (``scaling.loss_vs_compute.method.loss_sigma``; the power law takes no
  option): resampling a handful of budgets is degenerate.
  """
  skipped, opts = {}, {"sigma": "replicate_spread"}
  for m in methods_lib.family_methods("loss_vs_compute"):
    try:
      return m, m.fit(inputs, dict(opts)), skipped
    except methods_lib.MethodSkipped as e:
      skipped[m.key] = " ".join(str(e).split())
  return None, None, skipped


def _curve(a2, law, C_lo, C_max) -> Dict[str, Any]:
  C = np.geomspace(C_lo, C_max, _GRID)
  out = {"C": C, "N_opt": a2.predict(C)["N_opt"],
         "held_in": [{"C": m["C"], "N_opt": m["N_opt"], "L_opt": m["L_opt"]}
                     for m in a2.fit.minima]}
  band = a2.interval(C)
  if band is not None:
    out["N_opt_ci"] = band["N_opt"]
  if law is not None:
    out["loss"] = law.predict(C)["loss"]
    lb = law.interval(C)
    if lb is not None:
      out["loss_ci"] = lb["loss"]
  return out


def _predictions(method, a2, law_m, law, meas, C_max, F):
  C = np.array([C_max])
  pred, band = a2.predict(C), a2.interval(C)
  proc = a2.interval_procedure
  ci_a = a2.fit.ci.get("a")
  a_text = f"a = {a2.fit.a:.3g}" + (f" [{ci_a[0]:.3g}, {ci_a[1]:.3g}]"
                                    if ci_a else "")
  N = Prediction(f"N* = k_N C^a, {a_text} ({a2.label})", method.citation,
                 float(pred["N_opt"][0]), _first(band, "N_opt"), proc,
                 float(meas["N_opt"]))
  D = Prediction(f"D* = C / F(N*) with {F.label}",
                 method.citation, float(pred["D_opt"][0]),
                 _first(band, "D_opt"), proc, float(meas["D_opt"]))
  L = None
  if law is not None:
    formula = law.to_dict().get("formula", "")
    L = Prediction(f"{law_m.label}: {formula}", law_m.citation,
                   float(law.predict(C)["loss"][0]),
                   _first(law.interval(C), "loss"), law.interval_procedure,
                   float(meas["L_opt"]))
  return N, D, L


def _run(runs, C_b, C_max, K, estimator, options, bootstrap, seed, F):
  meas = _measure(runs, C_max, estimator, options, F)
  method, a2, inputs = _fit_held_in(runs.subset(C_b < C_max), C_max,
                                    estimator, options, bootstrap, seed, F)
  law_m, law, skipped = _loss_law(inputs)
  N, D, L = _predictions(method, a2, law_m, law, meas, C_max, F)
  used = tuple(float(m["C"]) for m in a2.fit.minima)
  drop = f", {len(a2.fit.dropped)} dropped" if a2.fit.dropped else ""
  procedure = (f"fit on budgets ≤ {max(used):.3g} ({len(used)} of the {K - 1} "
               f"below the largest{drop}), predict the held-out largest "
               f"C = {C_max:.3g}; measured = {est_lib.get(estimator).name} on "
               "its own runs")
  return ExtrapolationCheck(
      "done", None, K, C_max, procedure, used, dict(a2.fit.dropped), N, D, L,
      skipped, curve=_curve(a2, law, min(used), C_max))


def check_extrapolation(runs, *, estimator: str = est_lib.DEFAULT_ESTIMATOR,
                        options: Optional[Dict[str, Any]] = None,
                        bootstrap: int = 1000, seed: int = 0,
                        flops_per_token=None) -> ExtrapolationCheck:
  """Runs the check (module docstring) on a ``scaling.io.loaders.Runs``.

  Args:
    runs: final-loss runs of the sweep (all budgets).
    estimator: Approach-2 estimator (a key of ``isoflop_estimators.ESTIMATORS``;
      'all' means the default, the primary of an 'all' analysis).
    options: Approach-2 options as ``scaling.report.analysis`` takes them (scheme,
      weighted, on_edge, seed_noise_std, estimator_options).
    bootstrap, seed: replicates (0 = no intervals) and their seed.
    flops_per_token: F(N) (TokenFlops or callable; default: from the runs).
  """
  options = dict(options or {})
  if estimator in (None, "", "all"):
    estimator = est_lib.DEFAULT_ESTIMATOR
  F = token_flops.resolve(flops_per_token, runs.N, runs.D, runs.C)
  budget = runs.budget
  if not np.all(np.isfinite(budget) & (budget > 0)):
    budget = None
  C_b, _ = group_budgets(runs.C, budget)
  budgets = np.unique(C_b)
  K = int(budgets.size)
  if K < MIN_BUDGETS:
    return ExtrapolationCheck(
        "skipped", f"needs >= {MIN_BUDGETS} budgets (fit on all but the "
        f"largest, predict it); this sweep has {K}", K, None)
  C_max = float(budgets[-1])
  runs = dataclasses.replace(runs, budget=C_b)
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    try:
      out = _run(runs, C_b, C_max, K, estimator, options, bootstrap, seed, F)
    except _Skip as e:
      out = ExtrapolationCheck("skipped", str(e), K, C_max)
  # numpy's RuntimeWarnings of a bootstrap=0 point fit (empty means) are noise.
  msgs = dict.fromkeys(" ".join(str(w.message).split()) for w in caught
                       if not issubclass(w.category, RuntimeWarning))
  return dataclasses.replace(out, warnings=tuple(msgs))


def _fmt(v, ci=None) -> str:
  return format_interval(v, ci)


def summary_lines(d: Optional[Dict[str, Any]]) -> List[str]:
  """Printed lines of a fit.json ``extrapolation`` record (none if absent)."""
  if not d:
    return []
  if d["status"] == "skipped":
    return [f"extrapolation check skipped: {d['reason']}"]
  lines = [f"extrapolation check: {d['procedure']}"]
  for key, name in (("N_opt", "N*"), ("D_opt", "D*"), ("L_opt", "L*")):
    p = d.get(key)
    if p is None:
      why = "; ".join(f"{k}: {v}" for k, v in d["loss_laws_skipped"].items())
      lines.append(f"  {name}: not predicted ({why})")
      continue
    verdict = {None: "no interval", True: "inside the interval",
               False: "OUTSIDE the interval"}[p["inside"]]
    lines.append(f"  {name}(C={d['held_out_C']:.3g}): predicted "
                 f"{_fmt(p['predicted'], p['interval'])}, measured "
                 f"{p['measured']:.4g}: {verdict}; (pred − meas)/meas = "
                 f"{100 * p['rel_error']:+.2f}%")
  N, D, L = d["N_opt"], d["D_opt"], d.get("L_opt")
  lines.append(f"  N*, D*: {N['law']}; {D['law']}; interval: "
               f"{N['interval_procedure'] or 'none'}")
  if L is not None:
    lines.append(f"  L*: {L['law']} [{L['citation']}]; interval: "
                 f"{L['interval_procedure'] or 'none'}")
  return lines


def plot_extrapolation(d: Dict[str, Any], path: str) -> str:
  """N*(C) and L*(C) of the held-in fit, extended to the held-out budget."""
  import textwrap
  plt = plots_lib.require_matplotlib()
  cv = d["curve"]
  C = np.asarray(cv["C"])
  fig, axes = plt.subplots(1, 2, figsize=(10, 4.8))
  for ax, key, pk, ylab in ((axes[0], "N_opt", "N_opt", "N*"),
                            (axes[1], "loss", "L_opt", "L*")):
    p = d.get(pk)
    if key not in cv or p is None:
      ax.set_axis_off()
      continue
    ax.plot(C, cv[key], color="tab:blue", label="fit on the held-in budgets")
    if f"{key}_ci" in cv:
      ax.fill_between(C, *cv[f"{key}_ci"], color="tab:blue", alpha=0.2,
                      label="its interval")
    ax.scatter([m["C"] for m in cv["held_in"]],
               [m[pk] for m in cv["held_in"]], color="k", zorder=3,
               label="held-in minima")
    ax.scatter([d["held_out_C"]], [p["measured"]], color="tab:red",
               marker="*", s=140, zorder=4, label="held-out, measured")
    ax.set_xscale("log")
    ax.set_yscale("log" if key == "N_opt" else "linear")
    ax.set_xlabel("training FLOPs C")
    ax.set_ylabel(ylab)
    head = (f"{ylab}: (pred − meas)/meas = {100 * p['rel_error']:+.1f}%; "
            f"interval: {p['interval_procedure'] or 'none'}")
    ax.set_title(textwrap.fill(head, 70), fontsize=7)
    ax.legend(fontsize=7)
  fig.suptitle(textwrap.fill(f"extrapolation check: {d['procedure']}", 140),
               fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return path


def _run_check(ctx: methods_lib.CheckContext) -> Dict[str, Any]:
  """The registered check: the pass's Approach-2 estimator and options."""
  return check_extrapolation(
      ctx.runs, estimator=ctx.choices.get("approach2"),
      options=ctx.options.get("approach2"), bootstrap=ctx.bootstrap,
      seed=ctx.seed, flops_per_token=ctx.flops_per_token).to_dict()


def _skipped(reason: str) -> Dict[str, Any]:
  return ExtrapolationCheck("skipped", reason, None, None).to_dict()


def _plot_check(record: Dict[str, Any], out_dir: str) -> Optional[str]:
  if record.get("status") != "done":
    return None
  try:
    return os.path.basename(plot_extrapolation(
        fit_schema.jsonable(record), os.path.join(out_dir, "extrapolation.png")))
  except ImportError as e:
    warnings.warn(f"extrapolation plot skipped: {e}")
    return None


methods_lib.register_check(methods_lib.Check(
    key="extrapolation",
    label="Approach 2 on every budget but the largest predicts its N*, D*, L*",
    run=_run_check, skipped=_skipped, plot=_plot_check, summary=summary_lines))
