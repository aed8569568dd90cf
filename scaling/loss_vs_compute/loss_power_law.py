"""loss_vs_compute entry: L*(C) = A C^-gamma on Approach 2's minima (no offset).

The two-parameter form of Kaplan et al. 2020 (Eq. 1.3, L(C) = (C_c/C)^alpha_C):
least squares of ln L* on ln C over the per-budget minimum losses of the
primary Approach-2 fit. It needs 3 budgets (two parameters and one degree
of freedom) where the saturating form (``loss_vs_compute.saturation``)
needs 4, so ``scaling.approach2.extrapolation`` falls back to it on 4-budget sweeps
(3 budgets held in). Not the family default: without an irreducible loss it
under-predicts L* far beyond the sampled budgets.

Interval (only when the analysis asks for intervals, bootstrap > 0): the
Student-t confidence band of the least-squares line at ln C, K - 2 degrees
of freedom (Draper & Smith 1998, Applied Regression Analysis, Sec. 3.1), at
Approach 2's ``ci_level``. Its residual variance holds the budgets' noise
and the form's misfit alike (a pure power law does not bend towards an
irreducible loss), so the band widens when the form does not fit.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, Optional

import numpy as np

from scaling.report import registry as methods

MIN_BUDGETS = 3   # two parameters and one degree of freedom


@dataclasses.dataclass(frozen=True)
class LossPowerLawResult:
  method: methods.FitMethod
  C: np.ndarray             # per-budget C of the Approach-2 minima
  L: np.ndarray             # their L*
  gamma: float              # L* = A C^-gamma
  A: float
  s2: float                 # residual variance of ln L* (K - 2 dof)
  level: Optional[float]    # interval level; None: no interval

  @property
  def label(self) -> str:
    return (f"L*(C) = {self.A:.4g} C^-{self.gamma:.4g} on the Approach-2 "
            "minima (power law, no offset)")

  @property
  def interval_procedure(self) -> Optional[str]:
    if self.level is None:
      return None
    return (f"Student-t confidence band of the least-squares line in "
            f"(ln C, ln L*), {self.C.size - 2} dof, {100 * self.level:g}%")

  def predict(self, C) -> Dict[str, np.ndarray]:
    C = np.asarray(C, np.float64)
    return {"loss": self.A * C**-self.gamma}   # Kaplan et al. 2020 Eq. 1.3

  def _half(self, x0=None):
    """t quantile x standard error of the line at ln C = x0 (None: slope)."""
    from scipy import stats
    x = np.log(self.C)
    sxx = ((x - x.mean())**2).sum()
    var = (self.s2 / sxx if x0 is None else
           self.s2 * (1.0 / x.size + (x0 - x.mean())**2 / sxx))
    return stats.t.ppf(0.5 * (1.0 + self.level), x.size - 2) * np.sqrt(var)

  def interval(self, C):
    if self.level is None:
      return None
    lnC = np.log(np.asarray(C, np.float64))
    ln_L, half = np.log(self.A) - self.gamma * lnC, self._half(lnC)
    return {"loss": (np.exp(ln_L - half), np.exp(ln_L + half))}

  def _gamma_ci(self):
    if self.level is None:
      return None
    half = float(self._half())
    return self.gamma - half, self.gamma + half

  def quantities(self):
    return [("A", self.A, None), ("gamma", self.gamma, self._gamma_ci())]

  def to_dict(self) -> Dict[str, Any]:
    fitted = self.predict(self.C)["loss"]
    ci = self._gamma_ci()
    return dict(
        A=self.A, gamma=self.gamma, formula=f"L*(C) = {self.A:.4g} C^-"
        f"{self.gamma:.4g}", n_points=int(self.C.size),
        residual_sd_log=float(np.sqrt(self.s2)),
        ci={} if ci is None else {"gamma": [float(ci[0]), float(ci[1])]},
        minima=[{"C": float(c), "L_opt": float(l), "L_fit": float(f)}
                for c, l, f in zip(self.C, self.L, fitted)])


def _fit(inputs: methods.FitInputs, options: Dict[str, Any]):
  del options   # none
  a2, C, L = methods.approach2_minima(inputs, MIN_BUDGETS)
  x, y = np.log(C), np.log(L)
  slope, icpt = np.polyfit(x, y, 1)        # ln L* = ln A - gamma ln C
  s2 = float(((y - icpt - slope * x)**2).sum() / (C.size - 2))
  level = float(a2.fit.ci_level) if inputs.bootstrap else None
  return LossPowerLawResult(methods.METHODS["loss_vs_compute.power_law"], C, L,
                            float(-slope), float(np.exp(icpt)), s2, level)


methods.register(methods.FitMethod(
    key="loss_vs_compute.power_law", family="loss_vs_compute",
    label="L*(C) = A C^-gamma on the Approach-2 minima (power law, no offset)",
    citation="Kaplan et al. 2020, arXiv:2001.08361, Eq. 1.3", needs="runs",
    fit=_fit, predicts="loss", order=1))
