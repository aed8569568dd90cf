"""``python -m scaling.fit --approach=powerlaw``: columns in, fit.json out.

Reads any numeric columns of an --input (every numeric column of a CSV; N,
D, C, loss and budget of a ledger, workdir or built-in data set), fits
:func:`scaling.powerlaw.law.fit_powerlaw` and writes fit.json (key
``powerlaw``), fit.md and powerlaw.png.
"""
from __future__ import annotations

import csv
import io
import os
import warnings
from typing import Any, Dict, Tuple

import numpy as np

from scaling.io import loaders as data_lib
from scaling.io import rows as rows_lib
from scaling.powerlaw import law as powerlaw
from scaling.report import plots as plots_lib


def _csv_columns(path: str) -> Tuple[Dict[str, np.ndarray], Dict[str, Any]]:
  """Every column of a CSV whose values all parse as finite numbers."""
  try:
    with open(path, "rb") as f:
      raw = f.read()
  except OSError as e:
    raise data_lib.ScalingDataError(f"cannot read {path!r}: {e.strerror}") \
        from None
  rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
  if not rows:
    raise data_lib.ScalingDataError(f"{path}: no data rows")
  status = next((k for k in rows[0] if k and k.strip().lower() == "status"),
                None)
  dropped = []
  if status:
    dropped = [i + 2 for i, r in enumerate(rows)
               if (r[status] or "").strip().lower() != "ok"]
    rows = [r for r in rows if (r[status] or "").strip().lower() == "ok"]
    if dropped:
      warnings.warn(f"{path}: excluded {len(dropped)} row(s) with status != "
                    f"ok (lines {dropped[:10]})")
  cols = {}
  for name in rows[0]:
    try:
      v = np.array([float(r[name]) for r in rows])
    except (TypeError, ValueError):
      continue
    if np.all(np.isfinite(v)):
      cols[name.strip()] = v
  prov = dict(source=path, sha256=rows_lib.sha256(raw),
              n_rows=len(rows), excluded_lines=dropped)
  return cols, prov


def load_columns(source: str) -> Tuple[Dict[str, np.ndarray], Dict[str, Any]]:
  """Numeric columns of an --input and its provenance."""
  if str(source).lower().endswith(".csv"):
    return _csv_columns(source)
  if os.path.isdir(source):
    ledger = os.path.join(source, "results.jsonl")
    if not os.path.exists(ledger):
      raise data_lib.ScalingDataError(
          f"{source}: no results.jsonl (the sweep ledger) to read columns from")
    source = ledger
  runs = data_lib.load_runs(source)
  cols = dict(N=runs.N, D=runs.D, C=runs.C, loss=runs.loss)
  if np.all(np.isfinite(runs.budget)):
    cols["budget"] = runs.budget
  return cols, dict(runs.provenance)


def resolve_column(cols: Dict[str, np.ndarray], name: str) -> str:
  """The column called ``name`` (exact, case-insensitive, or an alias)."""
  if name in cols:
    return name
  lower = {k.lower(): k for k in cols}
  if name.lower() in lower:
    return lower[name.lower()]
  for canon, aliases in data_lib._ALIASES.items():  # pylint: disable=protected-access
    if name.lower() in (canon.lower(),) + tuple(aliases):
      for a in (canon.lower(),) + tuple(aliases):
        if a in lower:
          return lower[a]
  raise data_lib.ScalingDataError(
      f"no numeric column {name!r}; numeric columns are "
      f"{', '.join(sorted(cols)) or '(none)'}")


def plot_powerlaw(fit: powerlaw.PowerLawFit, cols, path: str) -> str:
  """y vs x with the fit and its band (one x), else observed vs fitted."""
  plt = plots_lib.require_matplotlib()
  X = np.column_stack([cols[k] for k in fit.x_names])
  y = cols[fit.y_name]
  fig, ax = plt.subplots(figsize=(6, 4.5))
  if X.shape[1] == 1:
    xs = np.geomspace(X.min(), X.max(), 200)
    ax.scatter(X[:, 0], y, s=12, color="tab:blue", label="data")
    ax.plot(xs, fit.predict(xs), color="tab:red", label=fit.formula())
    band = fit.band(xs)
    if band is not None:
      ax.fill_between(xs, band[0], band[1], color="tab:red", alpha=0.2,
                      label=fit.interval)
    ax.set_xlabel(fit.x_names[0])
    ax.set_ylabel(fit.y_name)
  else:
    yhat = fit.predict(X)
    ax.scatter(yhat, y, s=12, color="tab:blue", label="data")
    lim = [min(y.min(), yhat.min()), max(y.max(), yhat.max())]
    ax.plot(lim, lim, color="0.5", ls="--", label="y = fit")
    ax.set_xlabel(f"fitted: {fit.formula()}")
    ax.set_ylabel(f"observed {fit.y_name}")
    ax.set_yscale("log")
  ax.set_xscale("log")
  if fit.c is None:
    ax.set_yscale("log")
  ax.set_title(f"power law ({fit.citation})", fontsize=9)
  ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return os.path.basename(path)
