"""hparams entry: optimal learning-rate and batch laws (registered in ``scaling.report.families``).

``python -m scaling.fit --approach=hparams --input=RUNS`` fits them through
the registry like every other family (fit.json key ``hparams``); the math is
``scaling.hparams.estimate``, the input ``scaling.hparams.inputs``, the
options ``scaling.hparams.options``.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Dict, List, Tuple

import numpy as np

from scaling.hparams import estimate
from scaling.hparams import plot as plot_lib
from scaling.hparams import summary as summary_lib
from scaling.hparams.inputs import HparamRuns
from scaling.hparams.options import HparamsOptions
from scaling.io.types import ScalingDataError
from scaling.report import registry as methods

# (law, parameter) -> quantity name in fit.json and the tables.
_PREFIX = {"eta_ND": "lr*(N,D)", "B_D": "B*(D)", "eta_C": "lr*(C)",
           "B_C": "B*(C)"}


@dataclasses.dataclass(frozen=True)
class HparamsResult:
  method: methods.FitMethod
  fit: estimate.HparamsFit
  budgets: Tuple[float, ...]

  @property
  def label(self) -> str:
    return (f"hparams: lr*(N, D), B*(D) (Step Law form) and lr*(C), B*(C) "
            f"(DeepSeek form) on runs within {100 * self.fit.band:g}% of "
            "their (N, D) cell's best loss")

  @property
  def interval_procedure(self):
    return self.fit.interval_procedure

  def _at_budgets(self) -> List[Tuple[str, float, Any]]:
    out = []
    C = np.asarray(self.budgets, np.float64)
    for name, sym in (("eta_C", "lr*"), ("B_C", "B*")):
      law = self.fit.laws.get(name)
      if law is None:
        continue
      band = law.band(C, level=self.fit.level)
      for i, c in enumerate(C):
        ci = None if band is None else (float(band[0][i]), float(band[1][i]))
        out.append((f"{sym}(C={c:.3g})", float(law.predict(c)), ci))
    return out

  def quantities(self) -> List[Tuple[str, float, Any]]:
    out = []
    for name, law in self.fit.laws.items():
      out.append((f"{_PREFIX[name]}: k" if name != "eta_ND"
                  else f"{_PREFIX[name]}: c", law.k, law.ci.get("k")))
      out += [(f"{_PREFIX[name]}: {n}", v, law.ci.get(n))
              for n, v in zip(law.exponent_names, law.exponents)]
    return out + self._at_budgets()

  def predict(self, C) -> Dict[str, np.ndarray]:
    out = {}
    for name, key in (("eta_C", "lr"), ("B_C", "batch_tokens")):
      if name in self.fit.laws:
        out[key] = self.fit.laws[name].predict(np.asarray(C, np.float64))
    return out

  def interval(self, C):
    out = {}
    for name, key in (("eta_C", "lr"), ("B_C", "batch_tokens")):
      law = self.fit.laws.get(name)
      band = None if law is None else law.band(np.asarray(C, np.float64),
                                               level=self.fit.level)
      if band is not None:
        out[key] = band
    return out or None

  def to_dict(self) -> Dict[str, Any]:
    f = self.fit
    d: Dict[str, Any] = dict(
        band=f.band, level=f.level, min_lrs_per_cell=estimate.MIN_LRS,
        procedure=estimate.PROCEDURE,
        laws={n: law.to_dict() for n, law in f.laws.items()},
        not_fitted=dict(f.not_fitted),
        cells=[c.to_dict() for c in f.cells],
        cells_on_edge=[c.name() for c in f.cells if c.on_edge],
        n_runs=len(f.runs), n_kept=int(f.kept.sum()),
        fields_read=f.runs.provenance.get("fields_read"),
        seed=f.seed, ci={})
    for name, value, ci in self.quantities():
      d[name] = value
      if ci is not None:
        d["ci"][name] = [float(ci[0]), float(ci[1])]
    ok = f.n_bootstrap - f.n_failed if f.n_bootstrap else 0
    d.update(methods.bootstrap_counts(f.n_bootstrap, ok))
    return d

  def plot(self, ctx) -> list:
    path = os.path.join(ctx.out_dir, "hparams.png")
    plot_lib.plot_cells(self.fit, path)
    return [os.path.basename(path)]


def _fit(inputs: methods.FitInputs, options: Dict[str, Any]):
  if not inputs.table or "lr" not in inputs.table:
    raise ScalingDataError("the hparams fit needs runs with learning rates "
                           "(--approach=hparams --input=CSV or ledger)")
  opts = HparamsOptions.from_dict(dict(options))
  runs = HparamRuns.from_columns(inputs.table)
  fit = estimate.fit_hparams(runs, band=opts.band, level=opts.level,
                             bootstrap=inputs.bootstrap, seed=inputs.seed)
  return HparamsResult(methods.METHODS["hparams.steplaw"], fit,
                       tuple(inputs.budgets))


methods.register(methods.FitMethod(
    key="hparams.steplaw", family="hparams",
    label="hparams: optimal learning-rate and batch laws (Step Law and "
          "DeepSeek forms)",
    citation=f"{estimate.CITATION_STEP}; {estimate.CITATION_DEEPSEEK}",
    needs="table", fit=_fit, default=True, predicts="hparams"))


def summary_lines(fit: Dict[str, Any]) -> List[str]:
  """The hparams summary (laws, then one line per cell) of a fit.json."""
  return summary_lib.summary_lines(fit["hparams"])


methods.register_summary(methods.Summary("hparams", 60, summary_lines))
