"""powerlaw entry: y = a x^b (optionally + c) on any columns (``scaling.powerlaw.law``).

``python -m scaling.fit --approach=powerlaw --x=N --y=loss`` goes through
the registry like every other fit (fit.json entry ``powerlaw``). Options:
``x`` (column names), ``y``,
``offset``; the columns come from ``FitInputs.table``.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Dict

import numpy as np

from scaling.report import registry as methods
from scaling.powerlaw import report as powerlaw_report
from scaling.powerlaw import law as powerlaw
from scaling.io.loaders import ScalingDataError


@dataclasses.dataclass(frozen=True)
class PowerLawResult:
  method: methods.FitMethod
  fit: Any          # scaling.powerlaw.law.PowerLawFit
  table: Dict[str, np.ndarray]

  @property
  def label(self) -> str:
    return f"power law {self.fit.formula()}"

  @property
  def interval_procedure(self):
    if not self.fit.samples:
      return None
    return (f"row resampling with replacement, "
            f"n={self.fit.n_bootstrap - self.fit.n_failed}, percentile "
            "2.5-97.5%")

  def predict(self, X) -> Dict[str, np.ndarray]:
    return {"y": self.fit.predict(X)}

  def interval(self, X):
    band = self.fit.band(X)
    return None if band is None else {"y": band}

  def quantities(self):
    ci = self.fit.ci
    out = [("a", self.fit.a, ci.get("a"))]
    out += [(f"b[{n}]", b, ci.get(f"b[{n}]"))
            for n, b in zip(self.fit.x_names, self.fit.b)]
    if self.fit.c is not None:
      out.append(("c", self.fit.c, ci.get("c")))
    return out

  def to_dict(self) -> Dict[str, Any]:
    d = self.fit.to_dict()
    d.pop("ci_interval", None)   # named by interval_procedure
    for name, value, _ in self.quantities():   # flat keys for the tables
      d[name] = value
    d.update(methods.resampled_counts(self.fit))
    return d

  def plot(self, ctx) -> list:
    path = os.path.join(ctx.out_dir, "powerlaw.png")
    powerlaw_report.plot_powerlaw(self.fit, self.table, path)
    return [os.path.basename(path)]


def _fit(inputs: methods.FitInputs, options: Dict[str, Any]):
  table = inputs.table
  if not table:
    raise ScalingDataError("the powerlaw fit needs a table of columns")
  x, y = list(options.get("x") or []), options.get("y") or ""
  if not x or not y:
    raise ScalingDataError(
        "--approach=powerlaw needs --x (one or more columns) and --y")
  try:
    fit = powerlaw.fit_powerlaw(
        np.column_stack([table[k] for k in x]), table[y], names=x, y_name=y,
        offset=bool(options.get("offset", False)),
        bootstrap=inputs.bootstrap, seed=inputs.seed)
  except powerlaw.PowerLawError as e:
    raise ScalingDataError(str(e)) from None
  return PowerLawResult(methods.METHODS["powerlaw.powerlaw"], fit, table)


methods.register(methods.FitMethod(
    key="powerlaw.powerlaw", family="powerlaw",
    label="power law y = a x^b", needs="table", fit=_fit, default=True,
    citation="Kaplan et al. 2020, arXiv:2001.08361 (offset: Henighan et al. "
             "2020, arXiv:2010.14701)", predicts="y"))
