"""The loss_curve family's registry entries: ``loss_curve.multipower``
(default) and ``loss_curve.tissue``.

Input: a ``LossCurveSet`` passed as ``FitInputs.table`` (``scaling.fit
--approach=loss_curve`` loads it). Options (``run_fit(options={'loss_curve':
{...}})``): ``fit_curves`` (names; default: the data set's fit split, else
every curve), ``predict`` (extra ``LossCurve`` s to predict, e.g. from
``lm.schedules``), and the ``FitOptions`` fields. Curves not fitted are
*test* curves: predicted and scored (PredE, WorstE) as Luo et al. do.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from lm import safe_io
from scaling.io.types import ScalingDataError
from scaling.loss_curve import fitting
from scaling.loss_curve import laws as laws_lib
from scaling.loss_curve import luo2025
from scaling.report import fit_schema
from scaling.report import plots as plots_lib
from scaling.report import registry as methods


@dataclasses.dataclass(frozen=True)
class LossCurveResult:
  method: methods.FitMethod
  fit: fitting.LossCurveFit
  opts: fitting.FitOptions
  curves: tuple                  # every LossCurve (fit and test)
  roles: Dict[str, str]          # name -> 'fit' | 'test'
  preds: Dict[str, np.ndarray]   # name -> predicted loss at its logged steps
  bands: Optional[Dict[str, tuple]]
  published: Optional[Dict[str, Any]]
  extra: tuple = ()              # (LossCurve, prediction, band) to predict

  @property
  def law(self) -> laws_lib.Law:
    return laws_lib.LAWS[self.fit.law]

  @property
  def interval_procedure(self) -> Optional[str]:
    f = self.fit
    if not f.samples:
      return None
    return (f"bootstrap over {f.bootstrap_unit} (multinomial weights, refit "
            f"from the full fit), n={f.n_bootstrap - f.n_failed}, percentile "
            f"{50 * (1 - f.level):g}-{50 * (1 + f.level):g}%")

  def curve_metrics(self) -> List[Dict[str, Any]]:
    out = []
    for c in self.curves:
      m = fitting.metrics(self.preds[c.name], c.loss_M)
      out.append(dict(name=c.name, role=self.roles[c.name],
                      n_points=int(c.loss_M.size), steps=int(c.lr_T.size),
                      **m))
    return out

  def summary(self, role: str) -> Dict[str, float]:
    """Luo et al.'s averages over the curves of one role."""
    ms = [m for m in self.curve_metrics() if m["role"] == role]
    if not ms:
      return {}
    return {k: float(np.mean([m[k] for m in ms if m[k] is not None]))
            for k in ("PredE", "WorstE", "MAE", "RMSE", "R2")}

  def quantities(self):
    ci = self.fit.ci()
    q = [(n, self.fit.params[n], ci.get(n)) for n in self.law.params]
    for role in ("fit", "test"):
      for k in ("PredE", "WorstE"):
        if self.summary(role):
          q.append((f"{k}_{role}", self.summary(role)[k], None))
    return q

  def to_dict(self) -> Dict[str, Any]:
    f = self.fit
    n_fit = sum(1 for r in self.roles.values() if r == "fit")
    d = dict(law=f.law, formula=self.law.formula, params=dict(f.params),
             fixed=dict(f.fixed), objective=f.objective,
             objective_name=f"sum of Huber(delta={fitting.DELTA:g}) of "
             "log(loss) - log(prediction) (Luo et al. 2025)",
             n_points=f.n_points, n_pairs=f.n_pairs,
             fit_seconds=f.fit_seconds, fit_seconds_per_curve=f.fit_seconds / n_fit,
             converged=f.converged, curves=self.curve_metrics(),
             fit_summary=self.summary("fit"), test_summary=self.summary("test"),
             options=dataclasses.asdict(self.opts),
             ci={k: list(v) for k, v in f.ci().items()},
             **dict(zip(self.law.params, (f.params[n] for n in self.law.params))))
    for role in ("fit", "test"):
      for k, v in self.summary(role).items():
        if k in ("PredE", "WorstE"):
          d[f"{k}_{role}"] = v
    d["options"]["fit_curves"] = [c.name for c in self.curves
                                  if self.roles[c.name] == "fit"]
    if self.published:
      d["published"] = self.published
    if self.extra:
      d["predictions"] = [
          dict(name=c.name, step=c.step_M.tolist(), loss=p.tolist(),
               **({"loss_ci": [b[0].tolist(), b[1].tolist()]} if b else {}))
          for c, p, b in self.extra]
    d.update(methods.bootstrap_counts(f.n_bootstrap, f.n_bootstrap - f.n_failed))
    return d

  def plot(self, ctx) -> list:
    plt = plots_lib.require_matplotlib()
    fig, ax = plt.subplots(figsize=(7, 4.8))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, c in enumerate(self.curves):
      col = colors[i % len(colors)]
      role = self.roles[c.name]
      ax.plot(c.step_M, c.loss_M, ".", ms=2, color=col, alpha=0.6)
      ax.plot(c.step_M, self.preds[c.name], "-" if role == "fit" else "--",
              color=col, lw=1, label=f"{c.name} ({role})")
      if self.bands and c.name in self.bands:
        lo, hi = self.bands[c.name]
        ax.fill_between(c.step_M, lo, hi, color=col, alpha=0.2)
    for c, p, _ in self.extra:
      ax.plot(c.step_M, p, ":", color="k", lw=1, label=f"{c.name} (predicted)")
    allL = np.concatenate([c.loss_M for c in self.curves])
    ax.set_ylim(np.percentile(allL, 1) - 0.05, np.percentile(allL, 75))
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(f"{self.law.label}: measured (dots), fitted (—), predicted "
                 "(--)", fontsize=8)
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    path = os.path.join(ctx.out_dir, f"loss_curve_{self.fit.law}.png")
    try:
      safe_io.save_figure(fig, path, dpi=120)
    finally:
      plt.close(fig)
    return [os.path.basename(path)]


def _options(options: Dict[str, Any]):
  opts = dict(options)
  extra = tuple(opts.pop("predict", ()) or ())
  fields = {f.name for f in dataclasses.fields(fitting.FitOptions)}
  unknown = set(opts) - fields
  if unknown:
    raise ScalingDataError(f"unknown loss_curve options {sorted(unknown)}")
  return fitting.FitOptions(**opts), extra


def fit_curves(law: str, curve_set, options: Dict[str, Any], bootstrap: int,
               seed: int) -> LossCurveResult:
  """Fits ``law`` to the fit split of ``curve_set`` and predicts the rest."""
  opts, extra = _options(options)
  prov = curve_set.provenance
  names = list(opts.fit_curves or prov.get("fit_curves") or curve_set.names())
  fit_set = curve_set.select(names)
  roles = {c.name: ("fit" if c.name in names else "test") for c in curve_set}
  f = fitting.fit(law, fit_set.curves, opts, bootstrap, seed)
  allc = tuple(curve_set.curves)
  preds = dict(zip([c.name for c in allc], fitting.predict(f, allc, opts)))
  band = fitting.predict_band(f, allc, opts)
  bands = dict(zip([c.name for c in allc], band)) if band else None
  ex = []
  if extra:
    p = fitting.predict(f, extra, opts)
    b = fitting.predict_band(f, extra, opts) or [None] * len(extra)
    ex = list(zip(extra, p, b))
  published = None
  size = prov.get("size")
  if law == "multipower" and size in luo2025.PUBLISHED and names == list(luo2025.FIT):
    published = dict(luo2025.PUBLISHED[size], source=luo2025.CITATION + ", "
                     "README 'updated evaluation metrics'")
  return LossCurveResult(methods.METHODS[f"loss_curve.{law}"], f, opts, allc,
                         roles, preds, bands, published, tuple(ex))


def _fit_for(law: str):
  def fit_(inputs: methods.FitInputs, options: Dict[str, Any]):
    if inputs.table is None or not hasattr(inputs.table, "curves"):
      raise ScalingDataError("the loss_curve family needs loss curves "
                             "(scaling.loss_curve.data.load)")
    return fit_curves(law, inputs.table, options, inputs.bootstrap, inputs.seed)
  return fit_


for _i, _law in enumerate(laws_lib.LAWS.values()):
  methods.register(methods.FitMethod(
      key=f"loss_curve.{_law.name}", family="loss_curve", label=_law.label,
      citation=_law.citation, needs="table", fit=_fit_for(_law.name),
      default=_law.name == "multipower", predicts="curve", order=_i))


def summary_lines(result: Dict[str, Any]) -> List[str]:
  """Per-curve errors and, for Luo et al.'s data, their numbers beside ours."""
  out = []
  for _, e in fit_schema.entries(result):
    if e.get("family") != "loss_curve":
      continue
    out.append(f"{e['label']}: fit on {', '.join(e['options']['fit_curves'])} "
               f"({e['n_points']} points, {e['n_pairs']} pairs) in "
               f"{e['fit_seconds']:.1f} s ({e['fit_seconds_per_curve']:.1f} s "
               "per curve)")
    for c in e["curves"]:
      out.append(f"  {c['name']:<22} {c['role']:<4}  PredE {c['PredE']:.5f}  "
                 f"WorstE {c['WorstE']:.5f}")
    pub = e.get("published")
    t = e.get("test_summary") or {}
    if t:
      out.append(f"  test average: PredE {t['PredE']:.5f}  WorstE "
                 f"{t['WorstE']:.5f}" + (
                     f"   (published: {pub['PredE']:.5f}, {pub['WorstE']:.5f}; "
                     f"ratio {t['PredE'] / pub['PredE']:.3f}, "
                     f"{t['WorstE'] / pub['WorstE']:.3f})" if pub else ""))
    if pub:
      out.append("  parameter   ours          published")
      for k, v in pub["params"].items():
        out.append(f"  {k:<10} {e['params'][k]:<13.6g} {v:.6g}")
  return out


methods.register_summary(methods.Summary("loss_curve", 60, summary_lines))
