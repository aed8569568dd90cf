"""Approach 2 (IsoFLOP profiles) entries: one per per-budget estimator."""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Dict, List


from scaling.approach2 import isoflop as isoflop_lib
from scaling.approach2 import estimators as est_lib
from scaling.numerics.intervals import format_interval, procedure_note
from scaling.report import registry as methods
from scaling.report import plots as plots_lib


@dataclasses.dataclass(frozen=True)
class Approach2Result(methods.PowerLawResult):
  method: methods.FitMethod
  fit: isoflop_lib.IsoflopFit

  @property
  def label(self) -> str:
    """The method's label with the estimator's options (defaults included)."""
    text = est_lib.get(self.fit.estimator).options_text(
        self.fit.estimator_options)
    return f"{self.method.label[:-1]}; {text})" if text else self.method.label

  @property
  def interval_procedure(self):
    return self.fit.interval_procedure if self.fit.samples["a"].size else None

  def to_dict(self) -> Dict[str, Any]:
    d = self.fit.to_dict()
    d.update(self.counts(self.fit.n_bootstrap_requested))
    d["max_abs_compute_residual"] = float(max(
        abs(r["compute_residual"]) for r in self.fit.minima))
    return d

  def plot(self, ctx) -> list:
    if not ctx.primary:
      return []
    path = os.path.join(ctx.out_dir, "isoflop.png")
    plots_lib.plot_isoflop(self.fit, ctx.runs, path,
                           label=self.method.label)
    return [os.path.basename(path)]


def _make_fit(name: str):
  def fit(inputs: methods.FitInputs, options: Dict[str, Any]):
    opts = dict(options)
    # estimator_options: {estimator name: {option: value}}.
    est_opts = dict((opts.pop("estimator_options", None) or {}).get(name, {}))
    f = isoflop_lib.fit_isoflop(
        inputs.runs, estimator=name, estimator_options=est_opts,
        bootstrap=inputs.bootstrap, seed=inputs.seed,
        flops_per_token=inputs.flops_per_token, **opts)
    return Approach2Result(methods.METHODS[f"approach2.{name}"], f)
  return fit


for _i, (_name, _est) in enumerate(est_lib.ESTIMATORS.items()):
  methods.register(methods.FitMethod(
      key=f"approach2.{_name}", family="approach2",
      label=f"Approach 2 (IsoFLOP, {_name.replace('_', ' ')})",
      citation=f"Hoffmann et al. 2022 Sec. 3.2; estimator: {_est.citation}",
      needs="runs", fit=_make_fit(_name),
      default=_name == est_lib.DEFAULT_ESTIMATOR, order=_i))


def summary_lines(fit: Dict[str, Any]) -> List[str]:
  """Per-budget minima, the exponents, and every other estimator's."""
  a2 = fit["approach2"]
  lines = [f"{a2['label']}: per-budget minima (D* = C / F(N*))",
           f"  {'C':>9} {'N*':>10} {'D*':>12} {'D*/N*':>7} {'L*':>7}"]
  for m in a2["minima"]:
    lines.append(f"  {m['C']:9.3g} {m['N_opt']:10.4g} {m['D_opt']:12.4g} "
                 f"{m['D_opt'] / m['N_opt']:7.1f} {m['L_opt']:7.4f}")
  for C, why in a2.get("dropped", {}).items():
    lines.append(f"  dropped C={C}: {why}")
  ci = a2.get("ci", {})
  lines.append(f"  N* ∝ C^a: a = {format_interval(a2['a'], ci.get('a'))}; "
               f"D* ∝ C^b: b = {format_interval(a2['b'], ci.get('b'))}"
               f"{procedure_note(a2)}")
  for e in (fit.get("alternatives") or {}).values():
    if e.get("family") == "approach2":
      c = e.get("ci", {})
      lines.append(f"  also {e['estimator']}: a = "
                   f"{format_interval(e['a'], c.get('a'))},"
                   f" b = {format_interval(e['b'], c.get('b'))}"
                   f"{procedure_note(e)}")
  return lines


methods.register_summary(methods.Summary("approach2", 10, summary_lines))
