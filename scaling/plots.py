"""PNG plots for the scaling report (matplotlib, imported lazily, Agg backend)."""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional

import numpy as np


def require_matplotlib():
  """Returns pyplot on the Agg backend, or raises an actionable ImportError."""
  try:
    import matplotlib
  except ImportError:
    raise ImportError(
        "plots need matplotlib: pip install 'scalinglm[plots]'") from None
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  return plt


def plot_isoflop(fit2, runs, path: str) -> str:
  """Loss vs N per budget with the fitted parabolas and their vertices."""
  from scaling import isoflop as isoflop_lib
  plt = require_matplotlib()
  budget = runs.budget if np.all(np.isfinite(runs.budget)) else None
  C_b, _ = isoflop_lib.group_budgets(runs.C, budget)
  labels = sorted(set(C_b.tolist()))
  cmap = plt.get_cmap("viridis")
  fig, ax = plt.subplots(figsize=(7, 5))
  kept = {round(np.log10(r["C"]), 6): r for r in fit2.minima}
  for i, cb in enumerate(labels):
    col = cmap(i / max(len(labels) - 1, 1))
    sel = C_b == cb
    row = kept.get(round(np.log10(cb), 6))
    ax.scatter(runs.N[sel], runs.loss[sel], s=12, color=col,
               marker="o" if row else "x", label=f"{cb:.2g}")
    if row:
      x = np.linspace(*np.log10(row["N_range"]), 100)
      ax.plot(10**x, np.polyval(row["coef_log10N"], x), color=col, lw=1)
      ax.scatter([row["N_opt"]], [row["L_opt"]], color=col, marker="*", s=120,
                 edgecolor="k", zorder=3)
  ax.set_xscale("log")
  ax.set_xlabel("parameters N")
  ax.set_ylabel("loss")
  ax.set_title(f"IsoFLOP profiles (Approach 2): a = {fit2.a:.3f}, b = {fit2.b:.3f}")
  ax.legend(title="budget C (x = dropped)", fontsize=7, ncol=2)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return path


def plot_frontier(fits: Dict[int, Any], budgets, path: str) -> str:
  """N*(C) and D*(C) for every approach, with bootstrap bands."""
  plt = require_matplotlib()
  lo_C, hi_C = [min(budgets)], [max(budgets)]
  if 2 in fits:
    lo_C.append(min(r["C"] for r in fits[2].minima))
  if 1 in fits:
    lo_C.append(fits[1].C_grid[fits[1].valid].min())
  C = np.logspace(np.log10(min(lo_C)) - 0.2, np.log10(max(hi_C)) + 0.2, 200)
  fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
  colors = {1: "tab:green", 2: "tab:blue", 3: "tab:red"}
  for k in sorted(fits):
    if k == 3:
      fit, boot = fits[3]
      pred = fit.compute_optimal(C)
      band = _parametric_band(boot, C)
      label = f"Approach 3: a={fit.a:.3f}"
    else:
      fit = fits[k]
      pred = fit.predict(C)
      band = fit.predict_ci(C) if fit.samples["a"].size else None
      label = f"Approach {k}: a={fit.a:.3f}"
    for ax, key in zip(axes, ("N_opt", "D_opt")):
      ax.plot(C, pred[key], color=colors[k], label=label)
      if band is not None and key in band:
        ax.fill_between(C, band[key][0], band[key][1], color=colors[k], alpha=0.2)
  if 2 in fits:
    for ax, key in zip(axes, ("N_opt", "D_opt")):
      ax.scatter([r["C"] for r in fits[2].minima], [r[key] for r in fits[2].minima],
                 color=colors[2], s=20, zorder=3)
  if 1 in fits:
    f1 = fits[1]
    axes[0].scatter(f1.C_grid[f1.valid], f1.N_env[f1.valid], s=2, color=colors[1])
    axes[1].scatter(f1.C_grid[f1.valid], f1.D_env[f1.valid], s=2, color=colors[1])
  for ax, lab in zip(axes, ("N* (parameters)", "D* (tokens)")):
    for b in budgets:
      ax.axvline(b, color="0.7", ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training FLOPs C")
    ax.set_ylabel(lab)
    ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return path


def _parametric_band(boot, C) -> Optional[Dict[str, tuple]]:
  """Band of N*, D* from Approach-3 bootstrap samples, at boot's percentiles."""
  from scaling import parametric
  samples = getattr(boot, "samples", None) if boot is not None else None
  if samples is None:
    return None
  try:
    s = {k: np.asarray(samples[k], np.float64) for k in ("A", "B", "alpha", "beta")}
  except (KeyError, TypeError, IndexError):
    return None
  f = parametric.frontier(s["A"], s["B"], s["alpha"], s["beta"],
                          np.asarray(C)[:, None])  # Hoffmann 2022 Eq. 4
  q = list(boot.percentiles)
  return {"N_opt": tuple(np.nanpercentile(f["N_opt"], q, axis=1)),
          "D_opt": tuple(np.nanpercentile(f["D_opt"], q, axis=1))}


def plot_contours(fit3, runs, path: str) -> str:
  """L(N, D) contours with the runs and the efficient frontier (Approach 3)."""
  from scaling import parametric
  plt = require_matplotlib()
  logN = np.linspace(np.log10(runs.N.min()) - 0.5, np.log10(runs.N.max()) + 1.0, 200)
  logD = np.linspace(np.log10(runs.D.min()) - 0.5, np.log10(runs.D.max()) + 1.0, 200)
  NN, DD = np.meshgrid(10**logN, 10**logD)
  L = np.asarray(parametric.predict_loss(fit3.params, NN, DD))
  fig, ax = plt.subplots(figsize=(6.5, 5))
  cs = ax.contourf(NN, DD, L, levels=np.quantile(L, np.linspace(0, 0.9, 20)),
                   cmap="viridis", extend="max")
  fig.colorbar(cs, ax=ax, label="predicted loss")
  ax.scatter(runs.N, runs.D, s=6, color="w", edgecolor="k", lw=0.3, label="runs")
  C = np.logspace(np.log10(6 * NN.min() * DD.min()),
                  np.log10(6 * NN.max() * DD.max()), 100)
  opt = fit3.compute_optimal(C)
  ax.plot(opt["N_opt"], opt["D_opt"], color="r", lw=2,
          label=f"efficient frontier (a={fit3.a:.3f})")
  ax.set_xscale("log")
  ax.set_yscale("log")
  ax.set_xlim(NN.min(), NN.max())
  ax.set_ylim(DD.min(), DD.max())
  ax.set_xlabel("parameters N")
  ax.set_ylabel("tokens D")
  ax.set_title("Approach 3: L(N, D) = E + A/N^alpha + B/D^beta")
  ax.legend(fontsize=8, loc="lower right")
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return path


def plot_envelope(fit1, curves, path: str, max_curves: int = 400) -> str:
  """Training curves vs FLOPs with the lower envelope (Approach 1)."""
  plt = require_matplotlib()
  fig, ax = plt.subplots(figsize=(7, 5))
  sizes = np.log10([c.N for c in curves])
  norm = (sizes - sizes.min()) / max(np.ptp(sizes), 1e-12)
  cmap = plt.get_cmap("viridis")
  for i, c in enumerate(list(curves)[:max_curves]):
    ax.plot(c.C, c.loss, color=cmap(norm[i]), lw=0.5, alpha=0.6)
  has = np.isfinite(fit1.L_env)
  ax.plot(fit1.C_grid[has], fit1.L_env[has], color="k", lw=1, ls="--",
          label="envelope (all)")
  ax.scatter(fit1.C_grid[fit1.valid], fit1.L_env[fit1.valid], color="r", s=3,
             label="envelope used in fit", zorder=3)
  ax.set_xscale("log")
  ax.set_xlabel("training FLOPs C")
  ax.set_ylabel("loss")
  lo = np.nanmin(fit1.L_env)
  ax.set_ylim(lo - 0.05 * abs(lo), np.nanpercentile(fit1.L_env, 95) + 0.5)
  ax.set_title(f"Approach 1: a = {fit1.a:.3f}, b = {fit1.b:.3f} (colour = log N)")
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return path


def write_all(fits: Dict[int, Any], *, runs, curves, out_dir: str,
              budgets) -> List[str]:
  """Writes every plot that applies to ``fits``; returns the file names."""
  out = []
  if 2 in fits:
    out.append(plot_isoflop(fits[2], runs, os.path.join(out_dir, "isoflop.png")))
  if 3 in fits:
    out.append(plot_contours(fits[3][0], runs, os.path.join(out_dir, "contours.png")))
  if 1 in fits:
    out.append(plot_envelope(fits[1], curves, os.path.join(out_dir, "envelope.png")))
  if fits:
    out.append(plot_frontier(fits, budgets, os.path.join(out_dir, "frontier.png")))
  return [os.path.basename(p) for p in out]
