"""Luo et al. 2025's 25M / 100M loss curves, their schedules, split and fits.

Data: ``scaling/datasets/luo2025_multipower_{25M,100M}.csv`` (MIT licence,
``luo2025_multipower_LICENSE.md``; provenance in
``luo2025_multipower_PROVENANCE.md``): the nine CSVs of each size of
github.com/thu-yao-01-luo/MultiPowerLaw (commit 8da9f19,
``loss_curve_repo/csv_{25,100}/``) in one file with a ``schedule`` column.
Their ``lr`` column is logged at the logged steps only; the learning rate
at every step is rebuilt from the schedule name as the authors do (their
``src/data_loader.py`` and ``src/lr_schedules.py``, re-implemented here):
linear warmup ``linspace(0, 3e-4, 2160)`` over steps 0..2159, then the
shape; the logged point at step 24,000 of 24,000-step files is dropped.

Protocol (Luo et al. 2025, "A Multi-Power Law for Loss Curve Prediction
Across Learning Rate Schedules", ICLR 2025; their README's "updated
evaluation metrics"): fit on ``FIT``, predict ``TEST``; PredE / WorstE are
the mean / max over a curve's logged points of |pred - loss| / loss,
averaged over the test curves.
"""
from __future__ import annotations

import csv
import hashlib
import os
from typing import Dict, List

import numpy as np

from scaling.io.rows import DATASETS_DIR
from scaling.io.types import ScalingDataError
from scaling.loss_curve.data import LossCurve, LossCurveSet, check_curve

WARMUP = 2160
PEAK = 3e-4
END = 3e-5
FIT = ("cosine_24000", "constant_24000", "wsdcon_9")
TEST = ("cosine_72000", "constant_72000", "wsd_20000_24000",
        "wsdld_20000_24000", "wsdcon_3", "wsdcon_18")
BUILTIN = {
    "luo2025_25M": ("luo2025_multipower_25M.csv", "25M"),
    "luo2025_100M": ("luo2025_multipower_100M.csv", "100M"),
}
CITATION = ("Luo et al. 2025, 'A Multi-Power Law for Loss Curve Prediction "
            "Across Learning Rate Schedules', ICLR 2025, arXiv:2503.12811")

# Their README ("updated evaluation metrics") and src/config.py.
PUBLISHED = {
    "25M": {"params": dict(L0=3.04045406, A=0.52468604, alpha=0.50786857,
                           B=363.78751622, C=2.06560812, beta=0.58279013,
                           gamma=0.64142257),
            "PredE": 0.00110, "WorstE": 0.00409, "R2": 0.9988,
            "MAE": 0.00376, "RMSE": 0.00465},
    "100M": {"params": dict(L0=2.6514477, A=0.60115152, alpha=0.45295811,
                            B=437.9464276, C=2.13245612, beta=0.59785199,
                            gamma=0.65523644),
             "PredE": 0.00142, "WorstE": 0.00583, "R2": 0.9983,
             "MAE": 0.00435, "RMSE": 0.00592},
}


def _warmup() -> np.ndarray:
  return np.linspace(0.0, PEAK, WARMUP)


def schedule(name: str) -> np.ndarray:
  """lr at every step 0..total-1 of one of their file names."""
  parts = name.split("_")
  kind = parts[0]
  if kind in ("cosine", "constant"):
    total = int(parts[1])
    s = np.arange(WARMUP, total)
    if kind == "constant":
      rest = np.full(s.size, PEAK)
    else:   # cosine from the peak to END over the post-warmup steps
      rest = END + 0.5 * (PEAK - END) * (1 + np.cos(np.pi * (s - WARMUP) /
                                                    (total - WARMUP)))
    return np.concatenate([_warmup(), rest])
  if kind == "wsdcon":   # 3e-4 to step 8000, then k*1e-5 to 16000
    lr_b = int(parts[1]) * 1e-5
    return np.concatenate([_warmup(), np.full(8000 - WARMUP, PEAK),
                           np.full(16000 - 8000, lr_b)])
  if kind in ("wsd", "wsdld"):
    decay, total = int(parts[1]), int(parts[2])
    s = np.arange(decay, total)
    p = (s - decay) / (total - decay)
    if kind == "wsd":    # exponential decay PEAK -> END
      rest = PEAK ** (1 - p) * END ** p
    else:                # linear decay PEAK -> END
      rest = PEAK * (1 - p) + END * p
    return np.concatenate([_warmup(), np.full(decay - WARMUP, PEAK), rest])
  raise ScalingDataError(f"unknown Luo et al. schedule {name!r}")


def load(builtin: str):
  """The nine curves of one size as a LossCurveSet (schedules rebuilt)."""
  fname, size = BUILTIN[builtin]
  path = os.path.join(DATASETS_DIR, fname)
  rows: Dict[str, List] = {}
  with open(path, newline="") as f:
    for r in csv.DictReader(f):
      rows.setdefault(r["schedule"], []).append(
          (int(r["step"]), float(r["loss"])))
  curves = []
  for name, pts in rows.items():
    lr = schedule(name)
    step = np.array([p[0] for p in pts])
    loss = np.array([p[1] for p in pts])
    keep = step < lr.size        # drop step 24,000 of 24,000-step files
    curves.append(check_curve(LossCurve(
        name, lr, step[keep], loss[keep],
        {"source": fname, "schedule": name,
         "role": "fit" if name in FIT else "test"})))
  with open(path, "rb") as f:
    sha = hashlib.sha256(f.read()).hexdigest()
  return LossCurveSet(tuple(curves), {
      "source": builtin, "file": fname, "sha256": sha, "size": size,
      "citation": CITATION, "fit_curves": list(FIT), "test_curves": list(TEST),
      "schedules": "rebuilt from the file names as Luo et al.'s "
                   "src/data_loader.py (warmup linspace(0, 3e-4, 2160))"})
