"""Row helpers shared by the file loaders and the built-in data sets.

Building ``Runs`` from validated rows, completing D or C from C = 6ND, and
reading a file with its hash. Imports only ``scaling.io.types``.
"""
from __future__ import annotations

import hashlib
import os
from typing import Any, Dict, List

import numpy as np

from scaling.io.types import Runs, ScalingDataError

DATASETS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            "datasets")


def sha256(data: bytes) -> str:
  return hashlib.sha256(data).hexdigest()


def read_bytes(path: str) -> bytes:
  try:
    with open(path, "rb") as f:
      return f.read()
  except OSError as e:
    raise ScalingDataError(f"cannot read {path!r}: {e.strerror}") from None


def make_runs(rows: List[Dict[str, Any]], provenance: Dict[str, Any]) -> Runs:
  """Builds Runs from validated row dicts with keys N, D, C, loss, budget, run_id."""
  if not rows:
    raise ScalingDataError(
        f"{provenance['source']}: no usable rows (read "
        f"{provenance['n_rows_read']}, excluded "
        f"{len(provenance['exclusions'])})")
  f64 = lambda k: np.array([r[k] for r in rows], dtype=np.float64)
  provenance["n_rows"] = len(rows)
  return Runs(N=f64("N"), D=f64("D"), C=f64("C"), loss=f64("loss"),
              budget=f64("budget"),
              run_id=np.array([str(r["run_id"]) for r in rows], dtype=object),
              provenance=provenance)


def complete_6nd(N, D=None, C=None):
  """Fills missing (None or non-finite) D or C entries from C = 6ND.

  Vectorised over runs; only the missing entries are filled, every given
  value is kept as is.

  Args:
    N: parameters, array-like.
    D: tokens or None (all missing); NaN entries are missing.
    C: FLOPs or None (all missing); NaN entries are missing.

  Returns:
    (D, C, filled_D, filled_C): float64 arrays and boolean masks of the
    entries that were filled.

  Raises:
    ScalingDataError: a run has neither D nor C.
  """
  N = np.asarray(N, np.float64)
  D = np.full(N.shape, np.nan) if D is None else np.asarray(D, np.float64)
  C = np.full(N.shape, np.nan) if C is None else np.asarray(C, np.float64)
  filled_D, filled_C = ~np.isfinite(D), ~np.isfinite(C)
  both = filled_D & filled_C
  if both.any():
    raise ScalingDataError(
        f"{int(both.sum())} run(s) have neither D nor C (first at row "
        f"{int(np.argmax(both.ravel()))}); supply tokens or FLOPs.")
  with np.errstate(divide="ignore", invalid="ignore"):
    D = np.where(filled_D, C / (6.0 * N), D)  # D = C/(6N) (Kaplan 2020 Sec. 2.1).
    C = np.where(filled_C, 6.0 * N * D, C)    # C = 6ND (Hoffmann 2022 Sec. 3.3).
  return D, C, filled_D, filled_C
