"""The one analysis pass: runs -> fitted families -> checks -> report files, once.

``run_fit`` is the importable entry point (``scaling.fit`` is its CLI and
``experiments.analyze`` calls it with a ``Runs`` object and optional
``Curves``). Each requested family is fitted once; the registered checks
(``registry.CHECKS``, e.g. the extrapolation check) run after them; fit.json,
fit.md, fit.tex and the plots are written once, at the end. It never calls
into an approach: it iterates over the methods
of ``scaling.report.registry`` chosen for the requested families, stores each one's
entry in fit.json (schema: ``scaling.report.fit_schema``), and lets each draw its
own plots.
"""
from __future__ import annotations

import dataclasses
import datetime
import os
import sys
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from scaling.report import fit_schema
from scaling.report import registry as methods_lib
from scaling.report import tables
from scaling.numerics import token_flops
from scaling.io.loaders import ScalingDataError
from scaling.approach3.parametric import METHOD_ALIASES
from scaling.report import plots as plots_lib
from scaling.report import families as _families  # noqa: F401 (registers every family and check)
from scaling.approach1 import plots as approach1_plots

# 5.76e23 FLOPs = the Chinchilla/Gopher budget (Hoffmann 2022 Sec. 4).
DEFAULT_BUDGETS = (1e21, 5.76e23)
# --approach values: 1, 2, 3 name Hoffmann's approaches; others name families.
APPROACH_FAMILIES = {"1": "approach1", "2": "approach2", "3": "approach3"}


def _versions() -> Dict[str, str]:
  from importlib import metadata
  out = {}
  for pkg in ("jax", "numpy", "scipy", "scalinglm"):
    try:
      out[pkg] = metadata.version(pkg)
    except metadata.PackageNotFoundError:
      out[pkg] = "not installed (source tree)"
  return out


def families_of(approaches) -> Tuple[str, ...]:
  """Families for --approach values (1, 2, 3 or family names).

  Approach 2 brings the loss-vs-compute fit of its minima along when one is
  registered.
  """
  out = []
  for a in approaches:
    fam = APPROACH_FAMILIES.get(str(a), str(a))
    if fam not in fit_schema.FAMILIES or not methods_lib.family_methods(fam):
      raise ScalingDataError(
          f"approaches must be a subset of 1,2,3 (or a registered family: "
          f"{', '.join(f for f in fit_schema.FAMILIES if methods_lib.family_methods(f))}); "
          f"got {a!r}.")
    out.append(fam)
  if "approach2" in out and methods_lib.family_methods("loss_vs_compute"):
    out.append("loss_vs_compute")
  return tuple(f for f in fit_schema.FAMILIES if f in out)


def _check(families, budgets, bootstrap, runs, curves, table):
  if not families:
    raise ScalingDataError("approaches must be a non-empty subset of 1,2,3.")
  if not budgets or any(not np.isfinite(b) or b <= 0 for b in budgets):
    raise ScalingDataError(f"budgets must be positive FLOP counts; got {budgets}.")
  if bootstrap < 0 or bootstrap == 1:
    raise ScalingDataError(
        f"bootstrap must be 0 (no intervals) or >= 2 replicates; got "
        f"{bootstrap}.")
  needs = {m.needs for f in families for m in methods_lib.family_methods(f)}
  if "curves" in needs and curves is None:
    raise ScalingDataError(
        "approach 1 needs training curves (a workdir with runs/*/metrics.jsonl "
        "or misfitting_curves); this input has final losses only.")
  if any(n.startswith("runs") for n in needs) and runs is None:
    raise ScalingDataError("approaches 2 and 3 need final-loss runs; none given.")
  if "table" in needs and table is None:
    raise ScalingDataError("the powerlaw fit needs a table of columns; none "
                           "given.")


def _input_provenance(runs, curves, table) -> Dict[str, Any]:
  if runs is not None:
    return dict(runs.provenance, n_rows=len(runs))
  if table is not None:
    return dict(table[1])
  return {}


def _conventions(prov, curves, F) -> Dict[str, Any]:
  if not prov and curves is not None:
    prov = curves.provenance
  return {"flop_convention": prov.get("flop_convention"),
          "param_convention": prov.get("param_convention"),
          "flops_per_token": None if F is None else F.to_dict()}


def _entry(method, res, budgets) -> Dict[str, Any]:
  d = res.to_dict()
  d.update(method=method.key, family=method.family,
           label=getattr(res, "label", method.label),
           citation=method.citation, default=method.default,
           interval_procedure=res.interval_procedure,
           quantities=[q[0] for q in res.quantities()])
  if method.predicts in ("compute_optimal", "loss"):
    C = np.asarray(budgets, np.float64)
    d["compute_optimal"] = methods_lib.optimal_rows(res.predict(C), budgets,
                                                    res.interval(C))
  return d


def _options_for(options: Dict[Any, Dict[str, Any]], family: str) -> Dict[str, Any]:
  """A family's options, keyed by its name or (approaches) by 1, 2, 3."""
  if family in options:
    return dict(options[family])
  number = {v: int(k) for k, v in APPROACH_FAMILIES.items()}.get(family)
  return dict(options.get(number, {}))


def _choice(family: str, choices: Dict[str, str], opts: Dict[str, Any]):
  """The family's method choice; Approach 3 also takes {'fit': {'method'}}."""
  choice = choices.get(family)
  fit_opts = opts.get("fit")
  if family == "approach3" and isinstance(fit_opts, dict) and "method" in fit_opts:
    opts["fit"] = dict(fit_opts)
    named = opts["fit"].pop("method")
    named = METHOD_ALIASES.get(named, named)
    if choice not in (None, named):
      raise ScalingDataError(f"approach3 method given twice: {choice!r} and "
                             f"{named!r}")
    choice = named
  return choice


@dataclasses.dataclass(frozen=True)
class PlotContext:
  runs: Any
  curves: Any
  out_dir: str
  budgets: Tuple[float, ...]
  primary: bool


def run_fit(runs=None, *, approaches: Sequence = (1, 2, 3),
            out_dir: Optional[str] = None,
            budgets: Sequence[float] = DEFAULT_BUDGETS, bootstrap: int = 4000,
            seed: int = 0, curves=None, plots: bool = True,
            command_line: Optional[str] = None,
            options: Optional[Dict[Any, Dict[str, Any]]] = None,
            choices: Optional[Dict[str, str]] = None,
            flops_per_token=None, table=None,
            checks: Optional[Dict[str, Optional[str]]] = None,
            skip_unfittable: Sequence[str] = (), skip_hint: str = "",
            skipped: Sequence[str] = (),
            report_plots: bool = False) -> Dict[str, Any]:
  """The one analysis pass: fits each requested family once, runs the
  checks, and writes fit.json, fit.md, fit.tex and the plots once.

  Args:
    runs: ``scaling.io.types.Runs`` (final losses) for Approaches 2 and 3.
    approaches: 1, 2, 3 and/or family names (see ``families_of``).
    out_dir: where fit.json, fit.md, fit.tex and PNGs go (None: no files).
    budgets: FLOP budgets (under the runs' convention) for compute_optimal.
    bootstrap: replicates for intervals, 0 or >= 2 (Approach 1 uses at most
      its cap; fit.json records the count actually used).
    seed: bootstrap seed.
    curves: ``scaling.io.curves.Curves``, required for Approach 1.
    plots: write PNG plots (needs matplotlib; skipped with a warning if absent).
    command_line: recorded in provenance (default: sys.argv).
    options: per-family keyword options, keyed by family name or 1/2/3,
      e.g. {2: {'scheme': 'seed_noise', 'estimator_options': {'local_parabola':
      {'k': 7}}}, 3: {'fit': {...}, 'bootstrap': {...}}}.
    choices: per-family method choice, e.g. {'approach2': 'all'} or
      {'approach2': 'akima'} (default: each family's default method).
    flops_per_token: F(N) for F(N) D = C (callable or TokenFlops); default
      from the runs' own C / D (``scaling.numerics.token_flops``).
    table: (columns {name: array}, provenance) for the powerlaw family.
    checks: registered checks (``registry.CHECKS``) to run after the
      families, by key: None runs it, a string records it as skipped with
      that reason (e.g. {'extrapolation': None}).
    skip_unfittable: families that, when their fit raises
      ScalingDataError, are reported as "Approach k skipped: why <skip_hint>"
      (a warning, first in fit.json's) instead of failing the pass; it fails
      with the first such error only when nothing else is left to fit.
    skip_hint: appended to those skip messages (what to do).
    skipped: skip messages decided before the pass (e.g. no curves),
      placed first in fit.json's warnings.
    report_plots: also draw the sweep report's plots: the training curves
      (``scaling.approach1.plots.plot_loss_curves``) and each check's plot.

  Returns:
    The fit.json dictionary.
  """
  families = families_of(approaches)
  budgets = tuple(float(b) for b in budgets)
  _check(families, budgets, bootstrap, runs, curves, table)
  options, choices = dict(options or {}), dict(choices or {})
  F = (token_flops.resolve(flops_per_token, runs.N, runs.D, runs.C)
       if runs is not None else None)
  in_prov = _input_provenance(runs, curves, table)
  result = fit_schema.new(budgets, _conventions(in_prov, curves, F))
  inputs = methods_lib.FitInputs(runs, curves, budgets, int(bootstrap),
                                 int(seed), F,
                                 table=None if table is None else table[0])
  fitted, family_options = [], {}
  skips, first_error = [], None
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    for fam in families:
      if fam == "loss_vs_compute" and "approach2" in family_options.get(
          "_skipped", ()):
        continue   # fits Approach 2's minima: none
      opts = _options_for(options, fam)
      chosen, primary = methods_lib.resolve(fam, _choice(fam, choices, opts))
      family_options[fam] = dict(opts)
      try:
        fam_fits = _fit_family(chosen, inputs, opts, budgets)
      except ScalingDataError as e:
        if fam not in skip_unfittable:
          raise
        first_error = first_error or e
        family_options.setdefault("_skipped", []).append(fam)
        number = {v: k for k, v in APPROACH_FAMILIES.items()}.get(fam, fam)
        skips.append(f"Approach {number} skipped: {' '.join(str(e).split())}"
                     + (f" {skip_hint}" if skip_hint else ""))
        continue
      for method, res, entry, fam_warnings in fam_fits:
        for w in fam_warnings:
          warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        if res is None:
          continue
        fit_schema.add_entry(result, entry, primary=method is primary)
        fitted.append((method, res, method is primary))
        if method is primary:
          inputs.previous[fam] = res
  fitted_families = {m.family for m, _, _ in fitted}
  if skips and not fitted_families - {"loss_vs_compute"} and not (
      set(families) - set(skip_unfittable) - {"loss_vs_compute"}):
    raise first_error
  for msg in skips:
    warnings.warn(msg)
  result["warnings"] = list(dict.fromkeys(str(w.message) for w in caught))
  if skipped or skips:  # fit.json says which approaches are missing, and why
    result["warnings"] = list(skipped) + skips + result["warnings"]
  result["provenance"] = _provenance(in_prov, curves, seed, bootstrap,
                                     command_line)
  result = fit_schema.jsonable(result)
  ctx = methods_lib.CheckContext(
      runs=runs, families=families, choices=choices,
      options={f: _options_for(options, f) for f in fit_schema.FAMILIES},
      bootstrap=int(bootstrap), seed=int(seed), flops_per_token=F,
      fitted=dict(inputs.previous))
  records = {}
  for key, reason in (checks or {}).items():
    check = methods_lib.CHECKS[key]
    records[key] = check.run(ctx) if reason is None else check.skipped(reason)
  if out_dir:
    os.makedirs(out_dir, exist_ok=True)
    if plots:
      written = _write_plots(result, fitted, runs, curves, out_dir)
      if written is not None:
        result["plots"] = written
    if plots and report_plots:
      extra = ([approach1_plots.plot_loss_curves(
          curves, os.path.join(out_dir, "loss_curves.png"))]
               if curves is not None else [])
      extra += [methods_lib.CHECKS[k].plot(fit_schema.jsonable(r), out_dir)
                for k, r in records.items() if methods_lib.CHECKS[k].plot]
      extra = [os.path.basename(p) for p in extra if p]
      if extra:
        result.setdefault("plots", []).extend(extra)
  for key, record in records.items():
    fit_schema.set_check(result, key, record)
  if out_dir:
    write_outputs(result, out_dir)
  for m in result["warnings"][len(skipped) + len(skips):]:
    warnings.warn(m)
  return result


def _fit_family(chosen, inputs, opts, budgets):
  """[(method, result or None, fit.json entry or None, its warnings)].

  A method that does not apply (MethodSkipped) leaves only its warning; a
  ScalingDataError propagates, and the family's warnings with it are
  dropped (a skipped family leaves nothing behind).
  """
  out = []
  for method in chosen:
    with warnings.catch_warnings(record=True) as caught:
      warnings.simplefilter("always")
      try:
        res = method.fit(inputs, dict(opts))
      except methods_lib.MethodSkipped as e:
        warnings.warn(f"{method.label} skipped: {e}")
        res = None
    out.append((method, res,
                None if res is None else _entry(method, res, budgets),
                list(caught)))
  return out


def _provenance(in_prov, curves, seed, bootstrap, command_line) -> Dict[str, Any]:
  prov: Dict[str, Any] = {
      "command_line": command_line if command_line is not None else " ".join(sys.argv),
      "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(
          timespec="seconds"),
      "versions": _versions(), "seed": seed, "bootstrap": bootstrap,
  }
  if in_prov:
    prov["input"] = in_prov
  if curves is not None:
    prov["curves"] = dict(curves.provenance)
  return prov


def _write_plots(result, fitted, runs, curves, out_dir) -> Optional[List[str]]:
  """Each fitted method's plots and the frontier; their file names (None:
  no matplotlib, with a warning)."""
  try:
    plots_lib.require_matplotlib()
  except ImportError as e:
    warnings.warn(f"plots skipped: {e}")
    return None
  written: List[str] = []
  for method, res, primary in fitted:
    if hasattr(res, "plot"):
      written += res.plot(PlotContext(runs, curves, out_dir,
                                      tuple(result["budgets"]), primary))
  frontier = [(m, r) for m, r, _ in fitted if m.predicts == "compute_optimal"]
  if frontier:
    path = os.path.join(out_dir, "frontier.png")
    plots_lib.plot_frontier(frontier, result["budgets"], path)
    written.append(os.path.basename(path))
  return written


def write_outputs(result: Dict[str, Any], out_dir: str) -> None:
  os.makedirs(out_dir, exist_ok=True)
  fit_schema.write(result, os.path.join(out_dir, "fit.json"))
  with open(os.path.join(out_dir, "fit.md"), "w") as f:
    f.write(tables.markdown_table(result))
  with open(os.path.join(out_dir, "fit.tex"), "w") as f:
    f.write(tables.latex_table(result))
