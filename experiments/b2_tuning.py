"""The beta2 axis of a tuned sweep's analysis (``sweep.b2_values``).

``experiments.lr_tuning`` interpolates each (budget, N, b2) over log lr;
here, per (budget, N), the best b2 of those lr-tuned losses is taken (and
flagged when it is the smallest or largest of the grid), and the winners are
counted per size for the report (``experiments.lr_report.b2_lines``).
Porian et al. 2024 (arXiv:2406.19146, Sec. 3.4): beta2 must be tuned at
small batch sizes.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, Sequence, Tuple

import numpy as np


def best_b2(cells: Sequence[Any], reps: Sequence[Tuple], method: str) -> Any:
  """The cell of the b2 with the lowest lr-tuned loss (``method``), with the
  b2 axis recorded; its replicate spread is that of the minimum over b2
  (each replicate picks its own best b2)."""
  cells = sorted(cells, key=lambda c: c.b2 or 0.0)
  tuned = [c.optimum[method].loss_opt for c in cells]
  k = int(np.argmin(tuned))
  best = cells[k]
  edge = None
  if len(cells) > 1:
    edge = "low" if k == 0 else "high" if k == len(cells) - 1 else None
  sd, lsd = best.loss_sd, best.log_lr_sd
  if len(cells) > 1 and all(r[0] is not None for r in reps):
    order = sorted(range(len(cells)), key=lambda i: reps[i][2])
    loss_r = np.stack([reps[i][0] for i in order])       # (n_b2, R)
    log_lr_r = np.stack([reps[i][1] for i in order])
    j = np.argmin(loss_r, axis=0)
    cols = np.arange(loss_r.shape[1])
    sd = float(np.std(loss_r[j, cols]))
    lsd = float(np.std(log_lr_r[j, cols]))
  return dataclasses.replace(
      best, loss_sd=sd, log_lr_sd=lsd,
      b2_tried=tuple(c.b2 for c in cells) if len(cells) > 1 else (),
      b2_losses=tuple(tuned) if len(cells) > 1 else (), b2_edge=edge,
      n_not_ok=sum(c.n_not_ok for c in cells))


def b2_by_size(cells: Sequence[Any]) -> Dict[str, Any]:
  """Per N: how many of its cells each b2 won, and the edge count."""
  out = {}
  for N in sorted({c.N for c in cells}):
    mine = [c for c in cells if c.N == N]
    wins: Dict[str, int] = {}
    for c in mine:
      wins[f"{c.b2:g}"] = wins.get(f"{c.b2:g}", 0) + 1
    out[f"{N:.6g}"] = {"wins": wins, "n_cells": len(mine),
                       "n_edge": sum(1 for c in mine if c.b2_edge),
                       "edge_sides": sorted({c.b2_edge for c in mine
                                             if c.b2_edge})}
  return out
