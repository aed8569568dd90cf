"""Where a budget's sizes are centred: a prior or a previous fit.json.

A fit.json centre must count C and N as the sweep does (refused otherwise,
with a message naming both conventions); Approach 3's N* then solves
min L(N, D) subject to F(N) D = C under the sweep's own F (Hoffmann et al.
2022, Eq. 4 for 6N; numeric otherwise, ``scaling.approach3.optimum``).
"""
from __future__ import annotations

import math
from typing import Any, Dict

from experiments.sweep_config import PlanError, _positive
from lm import flops as flops_lib
from scaling.report import fit_schema
from scaling.approach3 import optimum

def _read_fit(path: str) -> Dict[str, Any]:
  try:
    return fit_schema.read(path)
  except fit_schema.FitFileError as e:
    raise PlanError(f"sweep.center: {e}") from None


def _finite(*vals) -> bool:
  return all(isinstance(v, (int, float)) and math.isfinite(v) for v in vals)


# C = 6 N D under either name (scaling's built-in data say "6ND"): the names
# of lm.flops' 6N entry.
SIX_N_CONVENTIONS = frozenset(
    (flops_lib.REGISTRY["6N"].name,) + flops_lib.REGISTRY["6N"].aliases)


def _check_conventions(fit: Dict[str, Any], s) -> None:
  """Refuses a fit.json whose C or N is counted differently from the sweep."""
  conv = fit_schema.conventions(fit)
  c, p = conv.get("flop_convention"), conv.get("param_convention")
  if c is None:
    raise PlanError(
        f"sweep.center={s.center!r}: the fit does not record the FLOP "
        "convention of its C (written before fit.json schema 2, or from a "
        "CSV without one); refit it with python -m scaling.fit or "
        "experiments.analyze")
  same_c = flops_lib.same_convention(c, s.flop_convention)
  if not same_c:
    raise PlanError(
        f"sweep.center={s.center!r}: the fit counts C as {c!r} but this sweep "
        f"as {s.flop_convention!r}, so its N*(C) is for other compute; refit "
        "on runs counted as this sweep's flop_convention, or set "
        "sweep.flop_convention to match")
  if p is not None and p != s.param_convention:
    raise PlanError(
        f"sweep.center={s.center!r}: the fit counts N as {p!r} but this sweep "
        f"as {s.param_convention!r}; use a fit of the same param_convention")


def center_N(budget: float, sweep_cfg, flops_per_token=None) -> float:
  """The geometric centre N*(C) of a budget's sizes.

  'prior': prior_k * (C / prior_c0)**prior_a. A fit.json path: its
  conventions must match the sweep's (refused otherwise). Approach 3's
  N* minimising L(N, D) subject to F(N) D = C (Hoffmann et al. 2022, Eq. 4
  for 6N; numeric with ``flops_per_token`` (F(N) of this sweep's shape rule,
  see experiments.sweep_flops) for other conventions) if present, else
  Approach 2's N_opt = k_N C^a (Hoffmann et al. 2022, Sec. 3.2).
  """
  _positive("budgets", budget)
  s = sweep_cfg
  if s.center == "prior":
    # Hoffmann et al. 2022, Table 3: N_opt = sqrt(C/120) (k=1, a=0.5, c0=120).
    return float(s.prior_k * (budget / s.prior_c0) ** s.prior_a)
  fit = _read_fit(s.center)
  _check_conventions(fit, s)
  a3, a2 = fit.get("approach3") or {}, fit.get("approach2") or {}
  if _finite(*(a3.get(k) for k in ("A", "B", "alpha", "beta"))):
    F = None if s.flop_convention in SIX_N_CONVENTIONS else flops_per_token
    if F is None and s.flop_convention not in SIX_N_CONVENTIONS:
      raise PlanError("center_N: a non-6N convention needs flops_per_token")
    return float(optimum.constrained(a3["A"], a3["B"], a3["alpha"],
                                     a3["beta"], budget, F)["N_opt"])
  if _finite(a2.get("k_N"), a2.get("a")):
    return float(a2["k_N"] * budget ** a2["a"])  # Hoffmann 2022, Sec. 3.2.
  raise PlanError(f"sweep.center={s.center!r}: fit.json has neither "
                  "approach3 (A, B, alpha, beta) nor approach2 (k_N, a)")
