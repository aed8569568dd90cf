"""Loss curves in: a built-in data set (``luo2025``) or CSV file(s).

``load(spec)`` is what ``scaling.fit --approach=loss_curve --input=spec``
reads (``scaling.loss_curve.cli``).
"""
from __future__ import annotations

from scaling.io.types import ScalingDataError
from scaling.loss_curve import data
from scaling.loss_curve import luo2025


def load(spec: str) -> data.LossCurveSet:
  """A built-in data set name or CSV file(s) / a directory of them."""
  if spec in luo2025.BUILTIN:
    return luo2025.load(spec)
  paths = data.csv_paths(spec)
  curves = tuple(data.read_csv(p) for p in paths)
  names = [c.name for c in curves]
  if len(set(names)) != len(names):
    raise ScalingDataError(f"two loss curves share a file name: {names}")
  return data.LossCurveSet(curves, {"source": spec, "files": paths,
                               "sha256": data.sha256_files(paths), "format": "step,lr,loss"})
