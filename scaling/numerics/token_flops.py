"""F(N): training FLOPs per token as a function of N, under the data's convention.

A sweep counts its compute C under a named FLOP convention (``lm.flops``):
``6N`` gives C = 6ND exactly, ``attention_inclusive`` adds 12 L d T per token,
and so on. Every compute-optimal allocation this package reports solves the
constraint F(N) D = C for *that* convention (Kaplan et al. 2020, Sec. 2.1:
C = F D with F the training FLOPs per token), so N*, D* and C of every
approach refer to the same compute.

``scaling`` does not import ``lm``; F comes from one of:

* ``TokenFlops.from_runs(N, D, C)``: the data's own F = C / D per run,
  interpolated linearly in (log N, log F) over the sampled sizes (repeated N
  are averaged in log F). Outside the sampled sizes F/N is held at the
  nearest sampled size's value (F ∝ N: exact for every 6N-type convention,
  and the attention term's share changes slowly with N). When every run has
  C = 6ND to 1e-6 the rule is exactly ``6N`` and the closed forms apply.
* ``TokenFlops.from_callable(fn, label)``: a caller's exact F(N) (e.g.
  ``experiments.analyze`` passes ``lm.flops`` through the planner's shape
  rule).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, Optional

import numpy as np

from scaling.io.loaders import ScalingDataError

SIX_N_RTOL = 1e-6  # |C / (6ND) - 1| below this on every run: F(N) = 6N.


@dataclasses.dataclass(frozen=True)
class TokenFlops:
  """F(N), training FLOPs per token; call it on N (any shape).

  Attributes:
    rule: 'six_n' (F = 6N), 'interpolated' (from runs) or 'callable'.
    label: a one-line description recorded in fit.json.
  """
  rule: str
  label: str
  _logN: Optional[np.ndarray] = None      # (S,) sorted sampled log N
  _logF: Optional[np.ndarray] = None      # (S,) mean log F at those N
  _fn: Optional[Callable[[np.ndarray], np.ndarray]] = None

  @property
  def is_six_n(self) -> bool:
    """True when F(N) = 6N exactly (Hoffmann 2022 Eq. 4 applies)."""
    return self.rule == "six_n"

  def __call__(self, N) -> np.ndarray:
    N = np.asarray(N, np.float64)
    if self.rule == "six_n":
      return 6.0 * N  # C = 6ND (Kaplan et al. 2020, Sec. 2.1).
    if self.rule == "callable":
      return np.asarray(self._fn(N), np.float64)
    logN = np.log(N)
    logF = np.interp(logN, self._logN, self._logF)
    # Beyond the sampled sizes: F/N held at the nearest end (F ∝ N).
    lo, hi = self._logN[0], self._logN[-1]
    logF = np.where(logN < lo, self._logF[0] + (logN - lo), logF)
    logF = np.where(logN > hi, self._logF[-1] + (logN - hi), logF)
    return np.exp(logF)

  def to_dict(self) -> Dict[str, Any]:
    d: Dict[str, Any] = {"rule": self.rule, "label": self.label}
    if self.rule == "interpolated":
      d["N_range"] = [float(np.exp(self._logN[0])), float(np.exp(self._logN[-1]))]
      d["F_over_6N_range"] = [float(v) for v in (
          np.min(np.exp(self._logF - self._logN) / 6.0),
          np.max(np.exp(self._logF - self._logN) / 6.0))]
    return d

  @classmethod
  def six_n(cls) -> "TokenFlops":
    return cls("six_n", "F(N) = 6N (C = 6ND on every run)")

  @classmethod
  def from_callable(cls, fn: Callable, label: str) -> "TokenFlops":
    return cls("callable", label, _fn=fn)

  @classmethod
  def from_runs(cls, N, D, C) -> "TokenFlops":
    """F from the runs' own C / D (see module docstring)."""
    N, D, C = (np.asarray(v, np.float64).ravel() for v in (N, D, C))
    if N.size == 0:
      raise ScalingDataError("F(N) needs at least one run.")
    F = C / D
    if not np.all(np.isfinite(F) & (F > 0)):
      raise ScalingDataError("F(N) = C / D needs positive, finite C and D.")
    if np.all(np.abs(F / (6.0 * N) - 1.0) < SIX_N_RTOL):
      return cls.six_n()
    n = np.unique(N).size
    return cls.from_points(N, F, (
        f"F(N) = C/D of the runs, interpolated in log-log over {n} sizes; "
        "F/N held at the nearest sampled size beyond them"))

  @classmethod
  def from_points(cls, N, F, label: str) -> "TokenFlops":
    """Log-log interpolation through (N, F) points (repeated N averaged)."""
    N, F = np.asarray(N, np.float64).ravel(), np.asarray(F, np.float64).ravel()
    logN, inv = np.unique(np.log(N), return_inverse=True)
    logF = np.bincount(inv, np.log(F)) / np.bincount(inv)
    return cls("interpolated", label, _logN=logN, _logF=logF)


def resolve(flops_per_token, N, D, C) -> TokenFlops:
  """A TokenFlops from a caller's argument (None, TokenFlops or callable)."""
  if flops_per_token is None:
    return TokenFlops.from_runs(N, D, C)
  if isinstance(flops_per_token, TokenFlops):
    return flops_per_token
  if callable(flops_per_token):
    label = getattr(flops_per_token, "label", None) or "F(N) from the caller"
    return TokenFlops.from_callable(flops_per_token, label)
  raise ScalingDataError(
      f"flops_per_token must be None, a TokenFlops or a callable F(N); got "
      f"{type(flops_per_token).__name__}.")
