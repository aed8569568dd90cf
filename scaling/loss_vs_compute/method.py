"""loss_vs_compute entry: L*(C) = E + A C^-gamma on Approach 2's minima.

Porian et al. 2024's saturating fit (``scaling.loss_vs_compute.saturation``) of the
per-budget minimum losses L*(C) of the primary Approach-2 fit, reported with
its intervals and used to predict L* at the report's budgets. Intervals:
with Approach 2's seed-noise scheme, Porian's perturbation of every L* by
the runs' sigma (an upper bound on the noise of a minimum fitted through
several runs); otherwise the budgets resampled with replacement. Option
``sigma='replicate_spread'`` perturbs each L* by its own Approach-2
replicate spread instead (``loss_sigma``; ``scaling.approach2.extrapolation`` uses
it, since resampling a handful of budgets is degenerate).
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Dict, Optional, Tuple, List

import numpy as np

from scaling.numerics.intervals import format_interval, procedure_note
from scaling.report import registry as methods
from scaling.io.loaders import ScalingDataError
from scaling.report import plots as plots_lib
from scaling.loss_vs_compute import saturation

MIN_BUDGETS = 4   # three parameters and one degree of freedom (as fit_saturation)


def loss_sigma(a2_fit, source: Optional[str] = None
               ) -> Tuple[Optional[np.ndarray], Optional[str]]:
  """Per-budget sigma of Approach 2's minimum losses L*, for L*(C) intervals.

  Returns (sigma (K,) or None, a phrase naming the perturbation).
  ``source`` None: the runs' seed-noise sigma under Approach 2's seed_noise
  scheme (Porian et al. 2024; an upper bound on the noise of a minimum
  fitted through several runs), else None. ``'replicate_spread'``: each budget's ``L_opt_sd``, the
  std of its L* over Approach 2's bootstrap replicates (either scheme); None
  when a budget has none.
  """
  if source is None:
    s = a2_fit.seed_noise_std if a2_fit.scheme == "seed_noise" else None
    if s is None:
      return None, None
    return (np.full(len(a2_fit.minima), s),
            f"seed-noise perturbation of each budget's L*, σ={s:.3g} (the "
            "runs' σ)")
  if source != "replicate_spread":
    raise ScalingDataError(f"loss sigma must be None or 'replicate_spread', "
                           f"got {source!r}")
  s = np.array([m.get("L_opt_sd", np.nan) for m in a2_fit.minima], np.float64)
  if not np.all(np.isfinite(s) & (s > 0)):
    return None, None
  return s, (f"perturbation of each budget's L* by N(0, σ_b²), σ_b = its "
             f"spread over the Approach-2 replicates ∈ [{s.min():.3g}, "
             f"{s.max():.3g}] ({a2_fit.interval_procedure})")


@dataclasses.dataclass(frozen=True)
class SaturationResult:
  method: methods.FitMethod
  fit: Any                  # scaling.loss_vs_compute.saturation.SaturationFit
  C: np.ndarray             # per-budget C of the Approach-2 minima
  L: np.ndarray             # their L*
  sigma: Optional[np.ndarray]  # per-budget sigma of L* (noise scheme)
  sigma_note: Optional[str] = None   # names it (loss_sigma)

  @property
  def interval_procedure(self) -> Optional[str]:
    f = self.fit
    if not f.samples:
      return None
    n = f.n_bootstrap - f.n_failed
    pct = f"percentile {50 * (1 - f.level):g}-{50 * (1 + f.level):g}%"
    if f.scheme == "noise":
      return f"{self.sigma_note}, n={n}, {pct}"
    return f"budget resampling (minima with replacement), n={n}, {pct}"

  def predict(self, C) -> Dict[str, np.ndarray]:
    return {"loss": self.fit.predict(np.asarray(C, np.float64))["L_opt"]}

  def interval(self, C):
    out = self.fit.predict(np.asarray(C, np.float64))
    return {"loss": out["L_opt_ci"]} if "L_opt_ci" in out else None

  def quantities(self):
    ci = self.fit.ci
    return [(n, getattr(self.fit, n), ci.get(n)) for n in ("E", "A", "gamma")]

  def to_dict(self) -> Dict[str, Any]:
    d = self.fit.to_dict()
    d.pop("ci_interval", None)   # named by interval_procedure
    fitted = self.predict(self.C)["loss"]
    d["minima"] = [{"C": float(c), "L_opt": float(l), "L_fit": float(f)}
                   for c, l, f in zip(self.C, self.L, fitted)]
    d.update(methods.resampled_counts(self.fit))
    return d

  def plot(self, ctx) -> list:
    plt = plots_lib.require_matplotlib()
    C = np.logspace(np.log10(min(self.C.min(), min(ctx.budgets))) - 0.1,
                    np.log10(max(self.C.max(), max(ctx.budgets))) + 0.1, 200)
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    ax.scatter(self.C, self.L, color="k", zorder=3, label="L* per budget")
    ax.plot(C, self.predict(C)["loss"], color="tab:purple",
            label=f"L* = {self.fit.E:.3g} + {self.fit.A:.3g} C^-{self.fit.gamma:.3g}")
    band = self.interval(C)
    if band is not None:
      ax.fill_between(C, band["loss"][0], band["loss"][1], color="tab:purple",
                      alpha=0.2, label=f"band: {self.interval_procedure}")
    for b in ctx.budgets:
      ax.axvline(b, color="0.7", ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("training FLOPs C")
    ax.set_ylabel("minimum loss L*(C)")
    ax.set_title(self.method.label, fontsize=9)
    ax.legend(fontsize=6)
    fig.tight_layout()
    path = os.path.join(ctx.out_dir, "loss_vs_compute.png")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return [os.path.basename(path)]


def _fit(inputs: methods.FitInputs, options: Dict[str, Any]):
  a2, C, L = methods.approach2_minima(inputs, MIN_BUDGETS)
  options = dict(options)
  sigma, note = loss_sigma(a2.fit, options.pop("sigma", None))
  try:
    fit = saturation.fit_saturation(
        C, L, sigma=sigma, bootstrap=inputs.bootstrap, seed=inputs.seed,
        **options)
  except saturation.SaturationError as e:
    raise methods.MethodSkipped(str(e)) from None
  return SaturationResult(methods.METHODS["loss_vs_compute.saturation"], fit,
                          C, L, sigma, note)


methods.register(methods.FitMethod(
    key="loss_vs_compute.saturation", family="loss_vs_compute",
    label="L*(C) = E + A C^-gamma on the Approach-2 minima (saturating)",
    citation="Porian et al. 2024, arXiv:2406.19146", needs="runs", fit=_fit,
    default=True, predicts="loss"))


def summary_lines(fit: Dict[str, Any]) -> List[str]:
  lc = fit["loss_vs_compute"]
  ci = lc.get("ci", {})
  preds = ", ".join(f"L*({k}) = {format_interval(r['loss'], r.get('loss_ci'))}"
                    for k, r in lc.get("compute_optimal", {}).items())
  E = ("0 (at its bound: no saturation visible over these budgets)"
       if lc.get("E_at_zero") else format_interval(lc.get("E"), ci.get("E")))
  return [f"{lc['label']}: E = {E}, "
          f"gamma = {format_interval(lc['gamma'], ci.get('gamma'))}; {preds}"
          f"{procedure_note(lc)}"]


methods.register_summary(methods.Summary("loss_vs_compute", 30, summary_lines))
