"""Runs Approaches 1-3 on one data set and writes fit.json / fit.md / fit.tex.

``run_fit`` is the importable entry point (``scaling.fit`` is its CLI and
``experiments`` call it with a ``Runs`` object and optional ``Curves``).
"""
from __future__ import annotations

import datetime
import json
import os
import sys
import warnings
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from scaling import envelope as envelope_lib
from scaling import isoflop as isoflop_lib
from scaling.data import ScalingDataError

# 5.76e23 FLOPs = the Chinchilla/Gopher budget (Hoffmann 2022 Sec. 4).
DEFAULT_BUDGETS = (1e21, 5.76e23)
APPROACH1_BOOTSTRAP_CAP = 1000  # Approach 1 replicates are capped (cost).
_APPROACH_NAMES = {1: "approach1", 2: "approach2", 3: "approach3"}


def _jsonable(x):
  if isinstance(x, dict):
    return {str(k): _jsonable(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [_jsonable(v) for v in x]
  if isinstance(x, np.ndarray):
    return _jsonable(x.tolist())
  if isinstance(x, (np.floating, float)):
    return float(x) if np.isfinite(x) else None
  if isinstance(x, (np.integer,)):
    return int(x)
  if isinstance(x, np.bool_):
    return bool(x)
  return x


def _versions() -> Dict[str, str]:
  from importlib import metadata
  out = {}
  for pkg in ("jax", "numpy", "scipy", "scalinglm"):
    try:
      out[pkg] = metadata.version(pkg)
    except metadata.PackageNotFoundError:
      out[pkg] = "not installed (source tree)"
  return out


def _optimal_rows(pred: Dict[str, np.ndarray], budgets, ci=None) -> Dict[str, Any]:
  rows = {}
  for i, C in enumerate(budgets):
    row = {"C": float(C), "N_opt": float(pred["N_opt"][i]),
           "D_opt": float(pred["D_opt"][i]),
           "tokens_per_param": float(pred["tokens_per_param"][i])}
    if "loss" in pred:
      row["loss"] = float(pred["loss"][i])
    if ci:
      for k in ("N_opt", "D_opt", "tokens_per_param"):
        if k in ci:
          row[f"{k}_ci"] = [float(ci[k][0][i]), float(ci[k][1][i])]
    rows[f"{C:.3g}"] = row
  return rows


def _percentile_interval(level: float) -> str:
  """'percentile 2.5-97.5% (95%)' for a central interval of ``level``."""
  lo, hi = 50.0 * (1.0 - level), 50.0 * (1.0 + level)
  return f"percentile {lo:g}-{hi:g}% ({100 * level:g}%)"


def _bootstrap_counts(d, requested: int, n_ok: int, interval: str) -> None:
  """Records how many replicates were asked for, used and discarded."""
  d["n_bootstrap_requested"] = int(requested)
  d["n_bootstrap_ok"] = int(n_ok)
  d["n_bootstrap_failed"] = int(requested - n_ok)
  d["ci_interval"] = interval if requested else None


def _approach2(runs, budgets, bootstrap, seed, kwargs):
  fit = isoflop_lib.fit_isoflop(runs, bootstrap=bootstrap, seed=seed, **kwargs)
  d = fit.to_dict()
  _bootstrap_counts(d, bootstrap, fit.samples["a"].size,
                    _percentile_interval(fit.ci_level))
  C = np.asarray(budgets, np.float64)
  ci = fit.predict_ci(C) if bootstrap else None
  d["compute_optimal"] = _optimal_rows(fit.predict(C), budgets, ci)
  return fit, d


def _approach3(runs, budgets, bootstrap, seed, kwargs):
  from scaling import parametric  # jax-backed; imported only when needed
  fit = parametric.fit_parametric(runs.N, runs.D, runs.loss,
                                  **kwargs.get("fit", {}))
  d = fit.to_dict()
  d["ci"] = {}
  d["n_bootstrap"] = 0
  _bootstrap_counts(d, 0, 0, "")
  boot = None
  boot_opts = dict(kwargs.get("bootstrap", {}))
  if bootstrap:
    from scaling import bootstrap as bootstrap_lib
    boot = bootstrap_lib.bootstrap_parametric(
        runs.N, runs.D, runs.loss, n_resamples=bootstrap, seed=seed,
        budgets=tuple(budgets), method=fit.method, point=fit, **boot_opts)
    d["ci"] = {k: [float(v[0]), float(v[1])] for k, v in boot.ci.items()}
    d["n_bootstrap"] = int(boot.n_ok)
    _bootstrap_counts(d, boot.n_resamples, boot.n_ok, boot.interval)
    d["ci_scheme"] = boot.scheme       # 'epoch' (resample with replacement) / 'hoffmann'
    d["n_not_converged"] = int(boot.n_not_converged)
  d["provenance"] = {
      "fit": dict(fit.settings), "method": fit.method,
      "bootstrap": (None if boot is None else dict(
          scheme=boot.scheme, n_resamples=boot.n_resamples, seed=boot.seed,
          percentiles=list(boot.percentiles), interval=boot.interval,
          starts="full-data point estimate"
          + (f" + {boot_opts['extra_starts']} next-best grid solutions"
             if boot_opts.get("extra_starts") else ""),
          options=boot_opts))}
  pred = fit.compute_optimal(np.asarray(budgets, np.float64))
  rows = _optimal_rows(pred, budgets)
  for key, row in rows.items():
    for name, src in (("N_opt", "N_opt"), ("D_opt", "D_opt"),
                      ("tokens_per_param", "D_over_N")):
      ci = d["ci"].get(f"{src}@{key}")
      if ci is not None:
        row[f"{name}_ci"] = ci
  d["compute_optimal"] = rows
  return fit, d, boot


def _approach1(curves, budgets, bootstrap, seed, kwargs):
  n_boot = min(bootstrap, APPROACH1_BOOTSTRAP_CAP)
  fit = envelope_lib.fit_envelope(curves, bootstrap=n_boot, seed=seed, **kwargs)
  d = fit.to_dict()
  d["bootstrap_cap"] = APPROACH1_BOOTSTRAP_CAP
  _bootstrap_counts(d, n_boot, fit.samples["a"].size,
                    _percentile_interval(fit.settings["ci_level"]))
  C = np.asarray(budgets, np.float64)
  d["compute_optimal"] = _optimal_rows(
      fit.predict(C), budgets, fit.predict_ci(C) if fit.samples["a"].size else None)
  return fit, d


def run_fit(runs=None, *, approaches: Sequence[int] = (1, 2, 3),
            out_dir: Optional[str] = None,
            budgets: Sequence[float] = DEFAULT_BUDGETS, bootstrap: int = 4000,
            seed: int = 0, curves=None, plots: bool = True,
            command_line: Optional[str] = None,
            options: Optional[Dict[int, Dict[str, Any]]] = None) -> Dict[str, Any]:
  """Fits the requested approaches and writes the report files.

  Args:
    runs: ``scaling.data.Runs`` (final losses) for Approaches 2 and 3.
    approaches: subset of (1, 2, 3).
    out_dir: where fit.json, fit.md, fit.tex and PNGs go (None: no files).
    budgets: FLOP budgets at which N*, D*, D/N are reported.
    bootstrap: replicates for intervals, 0 or >= 2 (Approach 1 uses at most
      APPROACH1_BOOTSTRAP_CAP; fit.json records the count actually used).
    seed: bootstrap seed.
    curves: ``scaling.curves.Curves``, required for Approach 1.
    plots: write PNG plots (needs matplotlib; skipped with a warning if absent).
    command_line: recorded in provenance (default: sys.argv).
    options: per-approach keyword overrides, e.g. {2: {'on_edge': 'keep'}};
      for 3: {'fit': {...}, 'bootstrap': {...}}.

  Returns:
    The fit.json dictionary.
  """
  approaches = tuple(sorted(set(int(a) for a in approaches)))
  if not approaches or any(a not in _APPROACH_NAMES for a in approaches):
    raise ScalingDataError(f"approaches must be a subset of 1,2,3; got {approaches}.")
  budgets = tuple(float(b) for b in budgets)
  if not budgets or any(not np.isfinite(b) or b <= 0 for b in budgets):
    raise ScalingDataError(f"budgets must be positive FLOP counts; got {budgets}.")
  if bootstrap < 0 or bootstrap == 1:
    raise ScalingDataError(
        f"bootstrap must be 0 (no intervals) or >= 2 replicates; got "
        f"{bootstrap}.")
  if 1 in approaches and curves is None:
    raise ScalingDataError(
        "approach 1 needs training curves (a workdir with runs/*/metrics.jsonl "
        "or misfitting_curves); this input has final losses only.")
  if any(a in approaches for a in (2, 3)) and runs is None:
    raise ScalingDataError("approaches 2 and 3 need final-loss runs; none given.")
  options = options or {}
  result: Dict[str, Any] = {"budgets": list(budgets)}
  fits: Dict[int, Any] = {}
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    if 2 in approaches:
      fits[2], result["approach2"] = _approach2(runs, budgets, bootstrap, seed,
                                                options.get(2, {}))
    if 3 in approaches:
      fit3, result["approach3"], boot3 = _approach3(runs, budgets, bootstrap,
                                                    seed, options.get(3, {}))
      fits[3] = (fit3, boot3)
    if 1 in approaches:
      fits[1], result["approach1"] = _approach1(curves, budgets, bootstrap,
                                                seed, options.get(1, {}))
  msgs = list(dict.fromkeys(str(w.message) for w in caught))
  result["warnings"] = msgs
  prov: Dict[str, Any] = {
      "command_line": command_line if command_line is not None else " ".join(sys.argv),
      "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(
          timespec="seconds"),
      "versions": _versions(), "seed": seed, "bootstrap": bootstrap,
  }
  if runs is not None:
    p = runs.provenance
    prov["input"] = {k: p.get(k) for k in p}
    prov["input"]["n_rows"] = len(runs)
  if curves is not None:
    prov["curves"] = dict(curves.provenance)
  result["provenance"] = prov
  result = _jsonable(result)
  if out_dir:
    write_outputs(result, out_dir)
    if plots:
      _write_plots(result, fits, runs, curves, out_dir)
  for m in msgs:
    warnings.warn(m)
  return result


def _write_plots(result, fits, runs, curves, out_dir) -> None:
  try:
    from scaling import plots as plots_lib
    plots_lib.require_matplotlib()
  except ImportError as e:
    warnings.warn(f"plots skipped: {e}")
    return
  written = plots_lib.write_all(fits, runs=runs, curves=curves, out_dir=out_dir,
                                budgets=result["budgets"])
  result["plots"] = written
  with open(os.path.join(out_dir, "fit.json"), "w") as f:
    json.dump(result, f, indent=2)


def write_outputs(result: Dict[str, Any], out_dir: str) -> None:
  os.makedirs(out_dir, exist_ok=True)
  with open(os.path.join(out_dir, "fit.json"), "w") as f:
    json.dump(result, f, indent=2)
  with open(os.path.join(out_dir, "fit.md"), "w") as f:
    f.write(markdown_table(result))
  with open(os.path.join(out_dir, "fit.tex"), "w") as f:
    f.write(latex_table(result))


# ---------------------------------------------------------------- tables

def _fmt(v, ci=None, sig=4) -> str:
  if v is None:
    return "-"
  s = f"{v:.{sig}g}"
  if ci and ci[0] is not None and ci[1] is not None:
    s += f" [{ci[0]:.{sig - 1}g}, {ci[1]:.{sig - 1}g}]"
  return s


_LABELS = (("approach1", "1 (envelope)"), ("approach2", "2 (IsoFLOP)"),
           ("approach3", "3 (parametric)"))


def interval_notes(result: Dict[str, Any]) -> List[str]:
  """One line per approach: its interval, replicates used and requested."""
  out = []
  for key, label in _LABELS:
    d = result.get(key)
    if d and d.get("ci_interval"):
      out.append(f"{label}: bootstrap {d['ci_interval']}, "
                 f"{d['n_bootstrap_ok']} of {d['n_bootstrap_requested']} "
                 "replicates used")
  return out


def value_header(result: Dict[str, Any]) -> str:
  """'value [<interval>]' naming the interval, or pointing to the notes."""
  kinds = {result[k]["ci_interval"] for k, _ in _LABELS
           if result.get(k) and result[k].get("ci_interval")}
  if not kinds:
    return "value (no intervals)"
  if len(kinds) == 1:
    return f"value [{kinds.pop()}]"
  return "value [interval: see notes]"


def table_rows(result: Dict[str, Any]) -> List[List[str]]:
  """Rows (approach, quantity, value [interval]) shared by all tables."""
  rows = []
  for key, label in _LABELS:
    d = result.get(key)
    if not d:
      continue
    ci = d.get("ci", {})
    names = ["a", "b"] + (["E", "A", "B", "alpha", "beta", "G"]
                          if key == "approach3" else ["k_N", "k_D"])
    for n in names:
      rows.append([label, n, _fmt(d.get(n), ci.get(n))])
    for C, r in d.get("compute_optimal", {}).items():
      for n, lab in (("N_opt", "N*"), ("D_opt", "D*"), ("tokens_per_param", "D*/N*")):
        rows.append([label, f"{lab} @ C={C}", _fmt(r[n], r.get(f"{n}_ci"), 3)])
  return rows


def text_table(result: Dict[str, Any]) -> str:
  rows = [["approach", "quantity", value_header(result)]] + table_rows(result)
  w = [max(len(r[i]) for r in rows) for i in range(3)]
  lines = ["  ".join(c.ljust(w[i]) for i, c in enumerate(r)) for r in rows]
  lines.insert(1, "  ".join("-" * x for x in w))
  lines += ["intervals: " + n for n in interval_notes(result)]
  return "\n".join(lines) + "\n"


def markdown_table(result: Dict[str, Any]) -> str:
  src = result.get("provenance", {}).get("input", {}).get("source", "?")
  out = [f"# Compute-optimal scaling fit ({src})", "",
         f"| approach | quantity | {value_header(result)} |", "|---|---|---|"]
  out += [f"| {a} | {q} | {v} |" for a, q, v in table_rows(result)]
  notes = interval_notes(result)
  if notes:
    out += ["", "Intervals:", ""] + [f"- {n}" for n in notes]
  d2 = result.get("approach2")
  if d2 and d2.get("dropped"):
    out += ["", "Approach 2 dropped budgets:", ""] + [
        f"- C={k}: {v}" for k, v in d2["dropped"].items()]
  other = [m for m in result.get("warnings", [])
           if not m.startswith("IsoFLOP: dropping budget")]
  if other:
    out += ["", "Warnings:", ""] + [f"- {m}" for m in other]
  return "\n".join(out) + "\n"


def _tex(s: str) -> str:
  s = s.replace("alpha", r"$\alpha$").replace("beta", r"$\beta$")
  s = s.replace("D*/N*", r"$D^*/N^*$").replace("N*", r"$N^*$").replace("D*", r"$D^*$")
  return s.replace("_", r"\_")


def _tex_text(s: str) -> str:
  return s.replace("%", r"\%").replace("_", r"\_")


def latex_table(result: Dict[str, Any]) -> str:
  out = [r"\begin{table}[t]", r"\centering", r"\begin{tabular}{llr}",
         r"\toprule",
         f"Approach & Quantity & {_tex_text(value_header(result))} \\\\",
         r"\midrule"]
  prev = None
  for a, q, v in table_rows(result):
    if prev is not None and a != prev:
      out.append(r"\midrule")
    out.append(f"{a if a != prev else ''} & {_tex(q)} & {v} \\\\")
    prev = a
  out += [r"\bottomrule", r"\end{tabular}",
          r"\caption{Compute-optimal scaling fits (Hoffmann et al.\ 2022 "
          r"Approaches 1--3). Intervals: "
          + (_tex_text("; ".join(interval_notes(result))) or "none")
          + ".}",
          r"\end{table}"]
  return "\n".join(out) + "\n"
