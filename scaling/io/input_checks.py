"""Warnings (and refusals) for suspicious fit input, run by the file loaders.

* Repeated run ids are an error: which row is the real result cannot be told.
* Rows identical in (N, D, loss) are suspicious duplicates (seed repeats share
  N and D but not the loss to the last digit): they narrow bootstrap intervals
  without adding information, so they are reported.
* C must agree with N, D and the FLOP convention: exactly ``C = F D`` when the
  ledger records ``flops_per_token`` F, ``C = 6 N D`` within 1 % under a 6N
  convention (Kaplan et al. 2020, Sec. 2.1), and within a factor
  ``LOOSE_C_FACTOR`` of 6ND otherwise (attention terms never move it further
  at the shapes people fit).
* Values outside the range of any real language model are reported
  (``TYPICAL``), and values beyond ``PHYSICAL`` are refused: the fits work in
  float64 on log N, log D around Chinchilla's scale, and a table scaled by
  1e100 does not fit (the Approach-3 grid of Hoffmann et al. 2022 cannot
  reach it and the bootstrap collapses to a point), so it is refused rather
  than fitted silently wrong.
"""
from __future__ import annotations

import collections
import warnings
from typing import Iterable, Optional, Sequence

import numpy as np

from lm import flops as flops_lib
from scaling.io.types import ScalingDataError

# Largest known training runs are ~2e12 parameters, ~4e13 tokens, ~5e26 FLOPs.
TYPICAL = {"N": (1e3, 1e14), "D": (1e4, 1e16), "C": (1e6, 1e28),
           "loss": (1e-2, 20.0)}
PHYSICAL = {"N": (1.0, 1e16), "D": (1.0, 1e18), "C": (1.0, 1e32),
            "loss": (1e-6, 1e3)}
LOOSE_C_FACTOR = 8.0


def _error(msg: str):
  return ScalingDataError(msg)


def _warn(msg: str) -> None:
  warnings.warn(msg, UserWarning, stacklevel=4)


def check_unique_ids(run_ids: Iterable[str], source: str) -> None:
  counts = collections.Counter(run_ids)
  dup = sorted(k for k, n in counts.items() if n > 1)
  if dup:
    raise _error(f"{source}: run id {dup[0]!r} appears {counts[dup[0]]} times"
                 f"{f' ({len(dup)} ids repeated)' if len(dup) > 1 else ''}; "
                 "keep one row per run (seed repeats need distinct run ids)")


def _check_range(runs, source: str) -> None:
  for name, (lo, hi) in PHYSICAL.items():
    x = getattr(runs, name)
    bad = (x < lo) | (x > hi)
    if bad.any():
      i = int(np.argmax(bad))
      raise _error(
          f"{source}: {name}={x[i]:.4g} (run {runs.run_id[i]}) is far outside "
          f"any physical range [{lo:g}, {hi:g}]; check the column's units "
          f"(N in parameters, D in tokens, C in FLOPs, loss in nats/token)")
  for name, (lo, hi) in TYPICAL.items():
    x = getattr(runs, name)
    bad = (x < lo) | (x > hi)
    if bad.any():
      _warn(f"{source}: {int(bad.sum())} run(s) have {name} outside the range "
            f"of real language models [{lo:g}, {hi:g}] (e.g. {name}="
            f"{x[bad][0]:.4g}); check the units")


def _check_duplicates(runs, source: str) -> None:
  seen = {}
  dups = []
  for i, key in enumerate(zip(runs.N, runs.D, runs.loss)):
    if key in seen:
      dups.append((runs.run_id[seen[key]], runs.run_id[i]))
    else:
      seen[key] = i
  if dups:
    a, b = dups[0]
    _warn(f"{source}: {len(dups)} row(s) repeat another row's (N, D, loss) "
          f"exactly (e.g. {a} and {b}): duplicated input? Duplicates narrow "
          "the bootstrap intervals without adding information")


def _check_C(runs, source: str, convention: str,
             flops_per_token: Optional[Sequence[Optional[float]]]) -> None:
  C = runs.C
  if flops_per_token is not None and all(f is not None for f in flops_per_token):
    expected, what, tol = runs.D * np.asarray(flops_per_token, float), \
        "D x flops_per_token", 1e-6
  elif flops_lib.is_six_nd(convention, runs.provenance.get("param_convention")):
    expected, what, tol = 6.0 * runs.N * runs.D, "6ND", 0.01
  else:
    ratio = C / (6.0 * runs.N * runs.D)
    bad = (ratio > LOOSE_C_FACTOR) | (ratio < 1.0 / LOOSE_C_FACTOR)
    if bad.any():
      i = int(np.argmax(bad))
      _warn(f"{source}: C is {ratio[i]:.3g} x 6ND for run {runs.run_id[i]} "
            f"({int(bad.sum())} run(s) off by more than {LOOSE_C_FACTOR:g}x); "
            "is C in FLOPs and consistent with N and D?")
    return
  rel = np.abs(C - expected) / expected
  bad = rel > tol
  if bad.any():
    i = int(np.argmax(bad))
    _warn(f"{source}: C={C[i]:.4g} for run {runs.run_id[i]} is not {what}="
          f"{expected[i]:.4g} under flop_convention {convention!r} "
          f"({int(bad.sum())} run(s) off by more than {tol:.0e}); C does not "
          "match N and D")


def check_runs(runs, source: str, *, c_given: bool = True,
               flops_per_token: Optional[Sequence[Optional[float]]] = None
               ) -> None:
  """Refuses unphysical values; warns about duplicates and inconsistent C."""
  _check_range(runs, source)
  _check_duplicates(runs, source)
  if c_given:
    _check_C(runs, source, str(runs.provenance.get("flop_convention")),
             flops_per_token)
