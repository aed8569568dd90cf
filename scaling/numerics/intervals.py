"""Percentile intervals and the value-with-interval formatter: one place for both.

Every bootstrap interval of ``scaling`` is a central percentile interval of
its replicates (Efron & Tibshirani 1993, Sec. 13.3): at level 0.95 the 2.5th
and 97.5th percentiles. ``np.percentile`` is used where the replicates are
finite by construction and ``np.nanpercentile`` for bands over draws that may
hold NaN (a replicate without a usable value at some budget).
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import numpy as np

Interval = Tuple[float, float]


def central_percentiles(level: float) -> Tuple[float, float]:
  """(lo, hi) percentiles of the central interval at ``level`` (0.95 -> 2.5, 97.5)."""
  return 50.0 * (1.0 - level), 50.0 * (1.0 + level)


def percentile_interval(values, level: Optional[float] = None, *,
                        q: Optional[Sequence[float]] = None) -> Interval:
  """(lo, hi) of 1-D replicates at ``level`` (or explicit percentiles ``q``)."""
  q = central_percentiles(level) if q is None else q
  return (float(np.percentile(values, q[0])), float(np.percentile(values, q[1])))


def percentile_intervals(samples: Dict[str, np.ndarray],
                         level: Optional[float] = None, *,
                         q: Optional[Sequence[float]] = None
                         ) -> Dict[str, Interval]:
  """percentile_interval of every replicate array in ``samples``."""
  return {k: percentile_interval(v, level, q=q) for k, v in samples.items()}


def percentile_bands(draws: Dict[str, np.ndarray], level: Optional[float] = None,
                     *, q: Optional[Sequence[float]] = None, axis: int = -1
                     ) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
  """NaN-ignoring percentile bands of every draw array along ``axis``
  (the replicate axis), e.g. N*(C) bands on a grid of budgets."""
  q = central_percentiles(level) if q is None else q
  return {k: tuple(np.nanpercentile(v, q, axis=axis)) for k, v in draws.items()}


def format_interval(value, ci=None, sig: int = 4,
                    ci_sig: Optional[int] = None) -> str:
  """'value [lo, hi]' with ``sig`` significant digits (``ci_sig`` for the
  bounds, default ``sig``); '-' for a missing value, the value alone when the
  interval is missing or open."""
  if value is None:
    return "-"
  s = f"{value:.{sig}g}"
  if ci and ci[0] is not None and ci[1] is not None:
    cs = sig if ci_sig is None else ci_sig
    s += f" [{ci[0]:.{cs}g}, {ci[1]:.{cs}g}]"
  return s


def procedure_note(entry) -> str:
  """' (interval: <procedure>)' of a fit.json entry, or ' (no interval)'."""
  proc = entry.get("interval_procedure")
  return f" (interval: {proc})" if proc else " (no interval)"
