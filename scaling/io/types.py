"""The types every part of ``scaling`` shares: the user-facing error and ``Runs``.

Imports nothing else from ``scaling`` (every other module may import it).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict

import numpy as np


class ScalingDataError(ValueError):
  """A user-facing data error; its message is one actionable line."""


@dataclasses.dataclass(frozen=True)
class Runs:
  """One row per finished training run.

  Attributes:
    N: parameters (float64).
    D: training tokens (float64).
    C: training FLOPs (float64).
    loss: final loss in nats per token (float64).
    budget: nominal FLOP budget of the run's IsoFLOP curve, NaN if unknown.
    run_id: string ids (object array).
    provenance: dict with 'source', 'sha256', 'n_rows_read', 'n_rows',
      'exclusions' (list of str), 'flop_convention' and, for built-ins,
      'dataset_citation'.
  """
  N: np.ndarray
  D: np.ndarray
  C: np.ndarray
  loss: np.ndarray
  budget: np.ndarray
  run_id: np.ndarray
  provenance: Dict[str, Any]

  def __len__(self) -> int:
    return int(self.N.shape[0])

  def subset(self, mask) -> "Runs":
    """Rows selected by a boolean mask or index array; provenance is copied."""
    idx = np.asarray(mask)
    return Runs(N=self.N[idx], D=self.D[idx], C=self.C[idx],
                loss=self.loss[idx], budget=self.budget[idx],
                run_id=self.run_id[idx], provenance=dict(self.provenance))
