"""Printed lines and the plot of a sweep's learning-rate tuning.

Reads ``fit['lr_tuning']`` (the record of the check ``experiments.lr_tuning``):
which hyper-parameters were tuned and which fixed, the learning-rate
optimum per size, a at each single multiplier and under every Approach-2
estimator; draws loss against learning rate per size at a few budgets.
"""
from __future__ import annotations

import math
import warnings
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from lm import safe_io


def _fmt_a(d: Dict[str, Any]) -> str:
  return "n/a" if d.get("a") is None else f"{d['a']:.4f}"


def summary_lines(e: Optional[Dict[str, Any]]) -> List[str]:
  """Printed lines of the record ``fit['lr_tuning']``."""
  if not e:
    return []
  hp = e["hyperparameters"]
  lines = ["hyper-parameters: tuned: " + ("; ".join(
      f"{k} over {v}" for k, v in hp["tuned"].items()) or "none")
           + "; fixed: " + ", ".join(f"{k}={v}" for k, v in
                                     hp["fixed"].items())]
  if e.get("tuned"):
    sig = e.get("sigma_tuned")
    b2s = e.get("b2_values") or []
    lines.append(
        f"lr tuning: each (C, N) point at {len(e['multipliers'])} learning "
        f"rate(s)" + (f" x {len(b2s)} AdamW β2" if b2s else "")
        + (f", fitted at the interpolated optimum ({e['method_citation']})"
           if len(e["multipliers"]) > 1 else ", lr not tuned")
        + (", best β2 of the lr-tuned losses" if b2s else "") + ";"
        + (f" per-run σ={e['sigma_seed']:.4g} ({e['sigma_source']}) -> σ of "
           f"the tuned loss {sig:.4g}, the Approach-2 seed-noise σ"
           if sig else " no σ: intervals omit the interpolation")
        + ("; Approach 1's envelope runs over every lr's curves (its lower "
           "envelope is the grid minimum)" if e.get("approach1_fitted") else ""))
    by_m = e.get("a_by_multiplier") or {}
    if by_m:
      vals = [d["a"] for d in by_m.values() if d.get("a") is not None]
      spread = f" (spread {max(vals) - min(vals):.3f})" if len(vals) > 1 else ""
      lines.append("  a at each single lr multiplier (untuned): " + ", ".join(
          f"x{m}: {_fmt_a(d)}" for m, d in by_m.items()) + spread
          + f"; tuned with Akima over lr: {_fmt_a(e.get('a_akima_tuned', {}))}")
    if len(e["multipliers"]) > 1:
      lines.append("  lr optimum per size (geometric mean over its bracketed "
                   "budgets): " + ", ".join(
                       f"N={float(N):.3g}: " + (
                           f"{d['lr_opt']:.3g}" if d["lr_opt"] else "edge")
                       + (f" ({d['n_edge']}/{d['n_cells']} at the "
                          f"{'/'.join(d['edge_sides'])} edge)" if d["n_edge"]
                          else "")
                       for N, d in e["lr_opt_by_size"].items()))
    if e.get("edge_cells"):
      lines.append(f"  warning: {len(e['edge_cells'])} cell(s) with the best "
                   "lr on the grid's edge: widen sweep.lr_multipliers")
    lines += b2_lines(e)
  return lines


def b2_lines(e: Dict[str, Any]) -> List[str]:
  """The β2 lines of a sweep with a ``sweep.b2_values`` grid: the winning β2
  per size, a at each single β2, the β2 edge warning."""
  if not e.get("b2_values"):
    return []
  lines = ["  best β2 per size (cells won): " + ", ".join(
      f"N={float(N):.3g}: " + "/".join(
          f"{b} ({k}/{d['n_cells']})" for b, k in sorted(
              d["wins"].items(), key=lambda kv: -kv[1]))
      + (f" [{d['n_edge']} at the {'/'.join(d['edge_sides'])} edge]"
         if d["n_edge"] else "")
      for N, d in e["b2_by_size"].items())]
  by_b2 = e.get("a_by_b2") or {}
  if by_b2:
    lines.append("  a of the lr-tuned points at each single β2: " + ", ".join(
        f"β2={b}: {_fmt_a(d)}" for b, d in by_b2.items())
        + f"; per-multiplier fits above at β2={e.get('b2_reference')}")
  if e.get("b2_edge_cells"):
    lines.append(f"  warning: {len(e['b2_edge_cells'])} cell(s) with the "
                 "best β2 on the grid's edge: widen sweep.b2_values")
  return lines


def estimator_lines(e: Optional[Dict[str, Any]]) -> List[str]:
  """The line of a under every Approach-2 estimator (record ``fit['lr_tuning']``)."""
  by_e = (e or {}).get("a_by_estimator") or {}
  vals = [d["a"] for d in by_e.values() if d.get("a") is not None]
  if not vals:
    return []
  spread = f"; spread {max(vals) - min(vals):.3f}" if len(vals) > 1 else ""
  reps = (e or {}).get("side_fit_replicates")
  return ["  a under each Approach-2 estimator (same points, same scheme, "
          f"{reps} replicates for the weights): " + ", ".join(
              f"{k} {_fmt_a(d)}" for k, d in by_e.items()) + spread]


def plot_lr_curves(cells: Sequence[Any], out_path: str,
                   method: str = "parabola", max_budgets: int = 4
                   ) -> Optional[str]:
  """Loss against learning rate per size at up to ``max_budgets`` budgets
  (spread over the sweep), the interpolated optima marked (hollow: edge)."""
  try:
    import matplotlib  # heavy optional dependency: imported only to plot
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker  # noqa: F401
  except ImportError:
    warnings.warn("lr-tuning plot skipped: pip install 'scalinglm[plots]'")
    return None
  budgets = sorted({c.budget for c in cells})
  pick = [budgets[int(round(i))] for i in
          np.linspace(0, len(budgets) - 1, min(max_budgets, len(budgets)))]
  pick = sorted(set(pick))
  fig, axes = plt.subplots(1, len(pick), figsize=(3.6 * len(pick), 3.6),
                           squeeze=False)
  Ns = np.log([c.N for c in cells])
  lo, hi = Ns.min(), Ns.max()
  cmap = plt.get_cmap("viridis")
  for ax, C in zip(axes[0], pick):
    for c in sorted((c for c in cells if c.budget == C), key=lambda c: c.N):
      col = cmap(0.5 if hi == lo else (math.log(c.N) - lo) / (hi - lo))
      ax.plot(c.lrs, c.losses, "o-", color=col, ms=3, lw=1,
              label=f"N={c.N:.3g}")
      o = c.optimum[method]
      ax.plot([o.lr_opt], [o.loss_opt], "*", ms=10, color=col,
              mfc="none" if o.edge else col)
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_title(f"C = {C:.3g}")
    ax.set_xlabel("peak learning rate")
    ax.legend(fontsize=6)
  axes[0][0].set_ylabel("eval loss (nats/token)")
  fig.suptitle("loss vs learning rate per size (star: interpolated optimum; "
               "hollow: on the grid's edge)", fontsize=9)
  fig.tight_layout()
  try:
    safe_io.save_figure(fig, out_path, dpi=110)
  finally:
    plt.close(fig)
  return out_path
