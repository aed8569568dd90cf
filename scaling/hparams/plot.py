"""Loss against learning rate per (N, D) cell, band-kept runs and fitted lr* marked."""
from __future__ import annotations

import math
import os

import numpy as np

from scaling.report import plots as plots_lib

MAX_PANELS = 24   # cells drawn (the largest N x D spread); the rest are named


def plot_cells(fit, path: str) -> str:
  """One panel per cell: every run (grey), the band-kept runs (red), the
  fitted lr*(N, D) at the cell (dashed) and its interval (shaded)."""
  plt = plots_lib.require_matplotlib()
  from matplotlib.ticker import NullFormatter  # heavy optional dependency: lazily
  runs, cells = fit.runs, list(fit.cells)
  shown = cells if len(cells) <= MAX_PANELS else [
      cells[int(i)] for i in np.linspace(0, len(cells) - 1, MAX_PANELS)]
  cols = min(4, len(shown))
  rows = math.ceil(len(shown) / cols)
  fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows),
                           squeeze=False)
  law = fit.laws["eta_ND"]
  for ax, c in zip(axes.ravel(), shown):
    sel = (runs.N == c.N) & (runs.D == c.D)
    ax.scatter(runs.lr[sel], runs.loss[sel], s=10, color="0.6", label="runs")
    k = sel & fit.kept
    ax.scatter(runs.lr[k], runs.loss[k], s=14, color="tab:red",
               label=f"within {100 * fit.band:g}%")
    eta = float(law.predict(c.N, c.D))
    ax.axvline(eta, color="tab:blue", ls="--", lw=1, label="fitted lr*(N, D)")
    band = law.band(np.array([c.N]), np.array([c.D]), level=fit.level)
    if band is not None:
      ax.axvspan(band[0][0], band[1][0], color="tab:blue", alpha=0.15)
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_title(f"N={c.N:.3g}, D={c.D:.3g}" + (" (edge)" if c.on_edge
                                                  else ""), fontsize=8)
    ax.tick_params(labelsize=7)
  for ax in axes.ravel()[len(shown):]:
    ax.axis("off")
  axes[0, 0].legend(fontsize=6)
  fig.supxlabel("peak learning rate", fontsize=9)
  fig.supylabel("final loss", fontsize=9)
  fig.suptitle(f"{law.formula()}  ({len(shown)} of {len(cells)} cells)",
               fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return os.path.basename(path)
