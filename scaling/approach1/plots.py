"""Approach 1's own plot: the training curves its envelope is taken over."""
from __future__ import annotations

import warnings
from typing import Optional

import numpy as np


def plot_loss_curves(curves, out_path: str) -> Optional[str]:
  """Training loss vs cumulative FLOPs of every run, coloured by N; the path
  written (None, with a warning, without matplotlib)."""
  try:
    import matplotlib  # heavy optional dependency (scalinglm[plots]): lazily
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
  except ImportError:
    warnings.warn("loss-curve plot skipped: pip install 'scalinglm[plots]'")
    return None
  fig, ax = plt.subplots(figsize=(6.4, 4.2))
  Ns = np.array([c.N for c in curves.curves])
  lo, hi = np.log(Ns.min()), np.log(Ns.max())
  cmap = plt.get_cmap("viridis")
  for c in curves.curves:
    t = 0.5 if hi == lo else (np.log(c.N) - lo) / (hi - lo)
    ax.plot(c.C, c.loss, color=cmap(t), lw=0.8, alpha=0.8,
            marker="o" if c.C.size < 10 else None, ms=3)
  ax.set_xscale("log")
  ax.set_xlabel("training FLOPs C (cumulative)")
  loss = str(curves.provenance.get("loss", "loss")).split()[0]
  ax.set_ylabel(f"{loss} (nats/token)")
  ax.set_title("loss curves, coloured by N (dark = small)")
  fig.tight_layout()
  fig.savefig(out_path, dpi=120)
  plt.close(fig)
  return out_path
