"""Approach 3 (parametric L(N, D) = E + A/N^alpha + B/D^beta) entries.

The compute-optimal rows solve min L subject to F(N) D = C for the data's
FLOP convention (``scaling.approach3.parametric.frontier``: Hoffmann 2022 Eq. 4 for
6N, numeric otherwise), at the point estimate and on every bootstrap draw.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Dict, Optional, List

import numpy as np

from scaling.numerics import intervals
from scaling.numerics.intervals import format_interval, procedure_note
from scaling.report import registry as methods
from scaling.approach3 import parametric
from scaling.report import plots as plots_lib
from scaling.approach3 import bootstrap as bootstrap_lib

_QUANTITIES = ("a", "b", "E", "A", "B", "alpha", "beta", "G")


def interval_procedure(boot) -> Optional[str]:
  """Names an Approach-3 bootstrap (scaling.approach3.bootstrap schemes)."""
  if boot is None:
    return None
  lo, hi = boot.percentiles
  if boot.scheme == "hoffmann":
    return (f"Hoffmann 80 % subsample, n={boot.n_resamples - boot.n_failed}, "
            f"{lo:g}-{hi:g}%")
  return (f"run resampling (all runs, with replacement), "
          f"n={boot.n_resamples - boot.n_failed}, percentile {lo:g}-{hi:g}%")


@dataclasses.dataclass(frozen=True)
class Approach3Result:
  method: methods.FitMethod
  fit: Any                 # scaling.approach3.parametric.ParametricFit
  boot: Any                # scaling.approach3.bootstrap.BootstrapResult or None
  F: Any                   # scaling.numerics.token_flops.TokenFlops or None
  budgets: tuple
  boot_options: Dict[str, Any]

  @property
  def interval_procedure(self):
    return interval_procedure(self.boot)

  def predict(self, C):
    return self.fit.compute_optimal(np.asarray(C, np.float64), self.F)

  def interval(self, C):
    if self.boot is None:
      return None
    s = self.boot.samples
    C = np.asarray(C, np.float64)[..., None]
    f = parametric.frontier(s["A"], s["B"], s["alpha"], s["beta"], C, self.F)
    L = parametric.predict_loss(
        {k: s[k] for k in ("E", "A", "B", "alpha", "beta")},
        f["N_opt"], f["D_opt"])
    q = self.boot.percentiles
    draws = {"N_opt": f["N_opt"], "D_opt": f["D_opt"],
             "tokens_per_param": f["D_opt"] / f["N_opt"], "loss": L}
    return intervals.percentile_bands(draws, q=q)

  def quantities(self):
    ci = {} if self.boot is None else self.boot.ci
    return [(n, getattr(self.fit, n, None) if n in ("a", "b", "G")
             else self.fit.params[n], ci.get(n)) for n in _QUANTITIES]

  def to_dict(self) -> Dict[str, Any]:
    d = self.fit.to_dict()
    d["estimator"] = d.pop("method")   # fit_parametric's method name
    boot = self.boot
    ci = {} if boot is None else {k: [float(v[0]), float(v[1])]
                                  for k, v in boot.ci.items()
                                  if "@" not in k}
    n_req = 0 if boot is None else int(boot.n_resamples)
    n_ok = 0 if boot is None else int(boot.n_resamples - boot.n_failed)
    d.update(ci=ci, n_bootstrap=n_ok, **methods.bootstrap_counts(n_req, n_ok))
    if boot is not None:
      d["ci_scheme"] = boot.scheme
      d["n_not_converged"] = int(boot.n_not_converged)
    d["provenance"] = {
        "fit": dict(self.fit.settings), "method": self.fit.method,
        "bootstrap": None if boot is None else dict(
            scheme=boot.scheme, n_resamples=boot.n_resamples, seed=boot.seed,
            percentiles=list(boot.percentiles), interval=boot.interval,
            starts="full-data point estimate"
            + (f" + {self.boot_options['extra_starts']} next-best grid "
               "solutions" if self.boot_options.get("extra_starts") else ""),
            options=dict(self.boot_options))}
    return d

  def plot(self, ctx) -> list:
    if not ctx.primary:
      return []
    path = os.path.join(ctx.out_dir, "contours.png")
    plots_lib.plot_contours(self.fit, ctx.runs, path, F=self.F)
    return [os.path.basename(path)]


def _make_fit(name: str):
  def fit(inputs: methods.FitInputs, options: Dict[str, Any]):
    runs = inputs.runs
    p = parametric.fit_parametric(runs.N, runs.D, runs.loss,
                                  method=name,
                                  **options.get("fit", {}))
    boot = None
    boot_opts = dict(options.get("bootstrap", {}))
    if inputs.bootstrap:
      boot = bootstrap_lib.bootstrap_parametric(
          runs.N, runs.D, runs.loss, n_resamples=inputs.bootstrap,
          seed=inputs.seed, budgets=(), method=p.method, point=p,
          **boot_opts)
    return Approach3Result(methods.METHODS[f"approach3.{name}"], p, boot,
                           inputs.flops_per_token, tuple(inputs.budgets),
                           boot_opts)
  return fit


methods.register(methods.FitMethod(
    key="approach3.grid_lbfgs", family="approach3",
    label="Approach 3 (parametric, Huber on log L, grid L-BFGS)",
    citation="Hoffmann et al. 2022, Sec. 3.3 and App. D.2",
    needs="runs", fit=_make_fit("grid_lbfgs"), default=True, order=0))
methods.register(methods.FitMethod(
    key="approach3.mle", family="approach3",
    label="Approach 3 (parametric, Huber likelihood)",
    citation="Besiroglu et al. 2024, arXiv:2404.10102",
    needs="runs", fit=_make_fit("mle"), order=1))
methods.register(methods.FitMethod(
    key="approach3.vpnls", family="approach3",
    label="Approach 3 (parametric, Huber on log L, variable projection)",
    citation="Golub & Pereyra 1973 (variable projection); Open-Athena "
             "scaling-law-analysis (VPNLS for Chinchilla's law)",
    needs="runs", fit=_make_fit("vpnls"), order=2))


def summary_lines(fit: Dict[str, Any]) -> List[str]:
  a3 = fit["approach3"]
  ci = a3.get("ci", {})
  return [f"{a3['label']}: "
          f"E = {format_interval(a3['E'], ci.get('E'))}, "
          f"α = {format_interval(a3['alpha'], ci.get('alpha'))}, "
          f"β = {format_interval(a3['beta'], ci.get('beta'))}, "
          f"a = {format_interval(a3['a'], ci.get('a'))}{procedure_note(a3)}"]


methods.register_summary(methods.Summary("approach3", 20, summary_lines))
