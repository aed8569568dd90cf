"""Memory an Approach-3 fit will need, estimated before it starts.

The grid L-BFGS of Hoffmann et al. 2022 (``scaling.approach3.parametric``) runs one
lane per start (4500) and the bootstrap one per replicate, each over every
run; peak memory grows with lanes x runs. Measured here (peak RSS of
``fit_parametric`` on synthetic runs, 2 loaded CPU cores): 364 MB above the
interpreter for 1000 runs and 917 MB for 4000, i.e. 184 KB per run = about
41 bytes per (start, run) pair; ``BYTES_PER_LANE_RUN`` rounds it up. A fit
whose estimate exceeds ``FRACTION`` of the memory available now is refused
with one line (the kernel would otherwise kill it without a word: 23.7 GB
for a 200k-line ledger in the report of issue 19).
"""
from __future__ import annotations

import os
from typing import Optional

from scaling.io.types import ScalingDataError

BYTES_PER_LANE_RUN = 48
BASE_BYTES = 400e6
FRACTION = 0.8
GRID_STARTS = 4500  # scaling.approach3.law.HOFFMANN_GRID


def available_bytes() -> Optional[float]:
  """MemAvailable (Linux), else free physical pages; None when unknown."""
  try:
    with open("/proc/meminfo") as f:
      for line in f:
        if line.startswith("MemAvailable:"):
          return float(line.split()[1]) * 1024
  except OSError:
    pass
  try:
    return float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
  except (ValueError, OSError, AttributeError):
    return None


def approach3_bytes(n_runs: int, n_starts: int, n_resamples: int) -> float:
  return BASE_BYTES + BYTES_PER_LANE_RUN * n_runs * max(n_starts, n_resamples)


def check_approach3(n_runs: int, method: str, n_resamples: int) -> None:
  """Refuses (one line) a fit that would not fit in the memory available."""
  starts = GRID_STARTS if method in ("grid_lbfgs", "mle") else 1
  need = approach3_bytes(n_runs, starts, n_resamples)
  have = available_bytes()
  if have is None or need <= FRACTION * have:
    return
  lanes = max(starts, n_resamples)
  raise ScalingDataError(
      f"Approach 3 ({method}) on {n_runs} runs needs about {need / 1e9:.1f} "
      f"GB ({lanes} L-BFGS lanes x {n_runs} runs, ~{BYTES_PER_LANE_RUN} bytes "
      f"each) but {have / 1e9:.1f} GB are available: fit fewer rows (e.g. "
      "one per (N, D), or a subsample), fewer --bootstrap replicates, "
      "--approach=2 alone, or use a machine with more memory")
