"""PNG plots for the scaling report (matplotlib, imported lazily, Agg backend)."""
from __future__ import annotations

import numpy as np
from scaling.approach2 import isoflop as isoflop_lib
from scaling.approach3 import parametric


def require_matplotlib():
  """Returns pyplot on the Agg backend, or raises an actionable ImportError."""
  try:
    import matplotlib  # heavy optional dependency (scalinglm[plots]): lazily
  except ImportError:
    raise ImportError(
        "plots need matplotlib: pip install 'scalinglm[plots]'") from None
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  return plt


def plot_isoflop(fit2, runs, path: str, label: str = "Approach 2") -> str:
  """Loss vs N per budget with the estimator's fitted curves and minima."""
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
    curve = fit2.profiles.get(f"{cb:.3g}") if row else None
    if curve is not None:
      ax.plot(10**curve[0], curve[1], color=col, lw=1)
    if row:
      ax.scatter([row["N_opt"]], [row["L_opt"]], color=col, marker="*", s=120,
                 edgecolor="k", zorder=3)
  ax.set_xscale("log")
  ax.set_xlabel("parameters N")
  ax.set_ylabel("loss")
  ax.set_title(f"{label}: a = {fit2.a:.3f}, b = {fit2.b:.3f}", fontsize=10)
  ax.legend(title="budget C (x = dropped)", fontsize=7, ncol=2)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return path


def plot_frontier(fitted, budgets, path: str) -> str:
  """N*(C) and D*(C) of every method, with bands labelled by procedure.

  Args:
    fitted: [(FitMethod, result)] of compute-optimal methods
      (``scaling.report.registry``): each result's predict / interval are drawn.
  """
  plt = require_matplotlib()
  lo_C = [min(budgets)]
  for _, res in fitted:
    minima = getattr(getattr(res, "fit", None), "minima", None)
    if minima:
      lo_C.append(min(r["C"] for r in minima))
  C = np.logspace(np.log10(min(lo_C)) - 0.2, np.log10(max(budgets)) + 0.2, 200)
  fig, axes = plt.subplots(1, 2, figsize=(12, 5))
  cmap = plt.get_cmap("tab10")
  for i, (method, res) in enumerate(fitted):
    col = cmap(i % 10)
    pred, band = res.predict(C), res.interval(C)
    a = dict((q[0], q[1]) for q in res.quantities()).get("a")
    label = f"{getattr(res, 'label', method.label)}: a={a:.3f}"
    for ax, key in zip(axes, ("N_opt", "D_opt")):
      ax.plot(C, pred[key], color=col, label=label)
      if band is not None and key in band:
        ax.fill_between(C, band[key][0], band[key][1], color=col, alpha=0.15,
                        label=f"band: {res.interval_procedure}"
                        if key == "N_opt" else None)
    minima = getattr(getattr(res, "fit", None), "minima", None)
    if minima:
      for ax, key in zip(axes, ("N_opt", "D_opt")):
        ax.scatter([r["C"] for r in minima], [r[key] for r in minima],
                   color=col, s=16, zorder=3)
  for ax, lab in zip(axes, ("N* (parameters)", "D* (tokens)")):
    for b in budgets:
      ax.axvline(b, color="0.7", ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training FLOPs C")
    ax.set_ylabel(lab)
  axes[0].legend(fontsize=6, loc="upper left")
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return path


def plot_contours(fit3, runs, path: str, F=None) -> str:
  """L(N, D) contours with the runs and the efficient frontier (Approach 3)."""
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
  opt = fit3.compute_optimal(C, F)
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


def plot_envelope(fit1, curves, path: str, max_curves: int = 400,
                  title: str = "Approach 1") -> str:
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
  ax.set_title(f"{title}: a = {fit1.a:.3f}, b = {fit1.b:.3f} (colour = log N)",
               fontsize=8)
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return path
