"""Log-linear power laws N* = k_N C^a shared by Approaches 1 and 2."""
from __future__ import annotations

from typing import Dict, Tuple

import numpy as np

from scaling.numerics.intervals import percentile_bands


def wls_line(x: np.ndarray, y: np.ndarray, w: np.ndarray):
  """Weighted least-squares line y = icpt + slope x, batched over rows of y, w.

  Entries with w == 0 are ignored (they may be NaN); a row with no weight
  gives NaN.
  """
  with np.errstate(divide="ignore", invalid="ignore"):  # empty replicates -> NaN
    sw = w.sum(-1)
    xm = (w * x).sum(-1) / sw
    ym = (w * np.where(w > 0, y, 0.0)).sum(-1) / sw
    dx = x - xm[..., None]
    dy = np.where(w > 0, y - ym[..., None], 0.0)
    slope = (w * dx * dy).sum(-1) / (w * dx**2).sum(-1)
    return slope, ym - slope * xm


def power_law_predict(k_N, a, k_D, b, C) -> Dict[str, np.ndarray]:
  """N* = k_N C^a, D* = k_D C^b and D*/N* (Hoffmann 2022 Eq. 3 form)."""
  C = np.asarray(C, dtype=np.float64)
  N_opt, D_opt = k_N * C**a, k_D * C**b
  return {"N_opt": N_opt, "D_opt": D_opt, "tokens_per_param": D_opt / N_opt}


def power_law_bands(samples: Dict[str, np.ndarray], ci_level: float, C
                    ) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
  """Percentile bands of N*, D*, D*/N* at C from bootstrap draws of
  (a, log k_N, b, log k_D); NaN bands when there are no draws."""
  if samples["a"].size == 0:
    nan = np.full(np.shape(C), np.nan)
    return {k: (nan, nan) for k in ("N_opt", "D_opt", "tokens_per_param")}
  logC = np.log(np.asarray(C, dtype=np.float64))[..., None]
  draws = {name: np.exp(samples[icpt] + samples[slope] * logC)
           for name, slope, icpt in (("N_opt", "a", "log_k_N"),
                                     ("D_opt", "b", "log_k_D"))}
  draws["tokens_per_param"] = draws["D_opt"] / draws["N_opt"]
  return percentile_bands(draws, ci_level)

