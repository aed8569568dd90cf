"""Bootstrap replicates stored in fit.json entries, for allocation intervals.

fit.json records each family's percentile intervals of its own quantities
but an allocation needs the joint draws: N*, D*, L* of a new question (a
budget, a unique-token limit, a target loss) are functions of all the
parameters at once. ``entry_replicates`` is called by ``scaling.report.analysis``
for every entry and adds

  "replicates": {"draws": {name: [...]}, "percentiles": [lo, hi]}

with the Approach-3 draws of (E, A, B, alpha, beta) or the Approach-1/2
draws of (a, log_k_N, b, log_k_D); entries without draws get nothing.
"""
from __future__ import annotations

from typing import Any, Dict

import numpy as np

_A3 = ("E", "A", "B", "alpha", "beta")
_POWER = ("a", "log_k_N", "b", "log_k_D")


def _pack(samples, keys, percentiles) -> Dict[str, Any]:
  draws = {k: np.asarray(samples[k], np.float64) for k in keys}
  if not all(v.size for v in draws.values()):
    return {}
  return {"replicates": {"draws": {k: v.tolist() for k, v in draws.items()},
                         "percentiles": [round(float(p), 9) for p in percentiles]}}


def entry_replicates(res) -> Dict[str, Any]:
  """{'replicates': ...} for a fit method's result, or {} without draws."""
  boot = getattr(res, "boot", None)
  if boot is not None and all(k in boot.samples for k in _A3):
    return _pack(boot.samples, _A3, boot.percentiles)
  fit = getattr(res, "fit", None)
  samples = getattr(fit, "samples", None)
  if isinstance(samples, dict) and all(k in samples for k in _POWER):
    level = getattr(fit, "ci_level", None)
    if level is None:
      level = (getattr(fit, "settings", None) or {}).get("ci_level", 0.95)
    return _pack(samples, _POWER, (50.0 * (1 - level), 50.0 * (1 + level)))
  return {}
