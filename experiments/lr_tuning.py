"""Learning-rate tuning in the analysis of a sweep (``sweep.lr_multipliers``).

A sweep whose ledger holds several learning-rate multipliers per (N, C) point
(``experiments.lr_grid``) is fitted on *tuned* points: per (budget, N) cell,
the loss at the learning-rate optimum interpolated over log lr
(``scaling.approach2.lr_optimum``: the parabola through the best grid point and its
neighbours; Akima as Porian et al. 2024 reported next to it). A cell whose
best learning rate is the smallest or largest of its grid is flagged: the
sweep must widen the grid on that side.

Uncertainty: every per-lr loss is perturbed by the run-to-run sigma (seed
repeats at the reference multiplier, ``scaling.approach2.seed_noise``'s
pooled std, or
``analysis.seed_noise_std``), the interpolation is redone per replicate, and
the pooled spread of the tuned losses (sigma_tuned) is the noise the
Approach-2 seed-noise bootstrap perturbs the tuned points by, so their
intervals include the uncertainty of the interpolated optimum.

Every report (tuned or not) also gets ``fit['lr_tuning']``: which
hyper-parameters were tuned, over which grid, which were fixed and at what
values; a under every Approach-2 estimator; and, for a tuned sweep, a at each
single multiplier (the learning-rate sensitivity of a), the learning-rate
optimum per cell, and a plot of loss against learning rate per size at a few
budgets (``lr_tuning.png``). ``experiments.analyze`` calls ``prepare`` before
the analysis pass and hands ``check_inputs`` to it; the rest is the registered
check ``lr_tuning`` (``scaling.report.registry.Check``: its record, plot and
printed lines; the lines and the plot in ``experiments.lr_report``).
"""
from __future__ import annotations

import dataclasses
import os
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from experiments import lr_report
from experiments import b2_grid, b2_tuning
from experiments.tuned_hparams import (b2_of, b2_values_of, hyperparameters,
                                      multipliers_of)
from scaling.approach2 import lr_optimum
from scaling.approach2.estimators import DEFAULT_ESTIMATOR, ESTIMATORS
from scaling.approach2.isoflop import fit_isoflop
from scaling.approach2.seed_noise import pooled_std
from scaling.io.types import Runs, ScalingDataError
from scaling.report import families as _families  # noqa: F401 (the families' checks register first: their lines print before this one's)
from scaling.report import fit_schema
from scaling.report import registry

KEY = "lr_tuning"            # the check's key in fit.json and CHECKS

METHOD = "parabola"          # the tuned loss; 'akima' is reported beside it
POINT_BOOTSTRAP = 200        # replicates of the side fits (their weights)
MIN_REPLICATES = 200         # interpolation replicates even at bootstrap=0


@dataclasses.dataclass(frozen=True)
class Cell:
  """One (budget, N) point trained at several learning rates."""
  budget: float
  N: float
  D: float
  C: float
  lrs: Tuple[float, ...]          # ascending
  losses: Tuple[float, ...]       # eval loss at each lr
  multipliers: Tuple[float, ...]
  n_not_ok: int                   # diverged/failed runs of the cell (left out)
  optimum: Dict[str, lr_optimum.LrOptimum]   # method -> optimum
  loss_sd: float                  # replicate std of the tuned loss (METHOD)
  log_lr_sd: float                # replicate std of ln lr_opt (METHOD)
  b2: Optional[float] = None      # the AdamW beta2 of these runs (the best
  #                                 of b2_tried with a sweep.b2_values grid)
  b2_tried: Tuple[float, ...] = ()    # ascending; () : one b2 (not tuned)
  b2_losses: Tuple[float, ...] = ()   # the lr-tuned loss at each b2_tried
  b2_edge: Optional[str] = None   # 'low' | 'high': best b2 at the grid's end

  def to_dict(self) -> Dict[str, Any]:
    d = dataclasses.asdict(self)
    d["optimum"] = {k: v.to_dict() for k, v in self.optimum.items()}
    return d


@dataclasses.dataclass(frozen=True)
class Tuning:
  cells: Tuple[Cell, ...]
  multipliers: Tuple[float, ...]
  sigma_seed: Optional[float]     # per-run noise the replicates perturb by
  sigma_source: str
  sigma_tuned: Optional[float]    # pooled spread of the tuned losses
  runs: Any                       # scaling.io.types.Runs of the tuned points
  b2_values: Tuple[float, ...] = ()   # the ledger's beta2 grid (>1: tuned)
  by_b2: Dict[float, Tuple[Cell, ...]] = dataclasses.field(
      default_factory=dict)       # per b2: its lr-tuned cells (b2 grid only)


def _seed_sigma(records, stated) -> Tuple[Optional[float], str]:
  """Pooled std (scaling.approach2.seed_noise.pooled_std) of runs identical
  in (budget, N, D, lr) but seed; or the stated sigma."""
  if stated is not None:
    return float(stated), "stated (analysis.seed_noise_std)"
  ok = [r for r in records
        if r["status"] == "ok" and r.get("eval_loss") is not None]
  groups: Dict[Tuple, List[int]] = {}
  for i, r in enumerate(ok):
    key = (float(r["budget"]), float(r["N"]), float(r["D"]),
           float(r.get("lr") or 0), b2_of(r))
    groups.setdefault(key, []).append(i)
  noise = pooled_std([np.array(g) for g in groups.values() if len(g) >= 2],
                     [float(r["eval_loss"]) for r in ok])
  if noise is None:
    return None, "none: no seed repeats"
  return noise.sigma, noise.describe()


def _lr_cell(C_b: float, N: float, rs, sigma, R, rng):
  """(Cell over the lr axis of runs ``rs`` of one (budget, N, b2), its
  replicate tuned losses (R,) and ln lr optima (R,), or Nones); None when
  no run is ok."""
  ok = sorted((r for r in rs if r["status"] == "ok"),
              key=lambda r: float(r["lr"]))
  if not ok:
    return None, None, None
  lrs = np.array([float(r["lr"]) for r in ok])
  loss = np.array([float(r["eval_loss"]) for r in ok])
  opt = {m: lr_optimum.optimum(lrs, loss, m) for m in lr_optimum.INTERPOLATIONS}
  if len(lrs) == 1:   # lr not tuned here (a b2-only grid): no lr edge
    opt = {m: dataclasses.replace(o, edge=None) for m, o in opt.items()}
  sd = lsd = float("nan")
  loss_r = log_lr_r = None
  if sigma and R:
    lr_r, loss_r = lr_optimum.replicates(lrs, loss, sigma, R, rng, METHOD)
    log_lr_r = np.log(lr_r)
    sd, lsd = float(np.std(loss_r)), float(np.std(log_lr_r))
  cell = Cell(
      budget=C_b, N=N, D=float(ok[0]["D"]),
      C=float(np.mean([float(r["C"]) for r in ok])), lrs=tuple(lrs),
      losses=tuple(loss),
      multipliers=tuple(float(r.get("lr_multiplier") or 1.0) for r in ok),
      n_not_ok=len(rs) - len(ok), optimum=opt, loss_sd=sd, log_lr_sd=lsd,
      b2=b2_of(ok[0]))
  return cell, loss_r, log_lr_r


def _cells(records, sigma, R, seed) -> List[Cell]:
  """Per (budget, N): the lr-tuned cell (at its best b2 with a b2 grid)."""
  return _cells_by_b2(records, sigma, R, seed)[0]


def _cells_by_b2(records, sigma, R, seed
                 ) -> Tuple[List[Cell], Dict[float, list]]:
  """(per (budget, N): the cell at its best b2, per b2: its cells)."""
  by: Dict[Tuple[float, float], Dict[Any, List[Dict[str, Any]]]] = {}
  for r in records:
    if r.get("repeat_of"):
      continue
    by.setdefault((float(r["budget"]), float(r["N"])), {}).setdefault(
        b2_of(r), []).append(r)
  rng = np.random.default_rng(seed)
  out: List[Cell] = []
  by_b2: Dict[float, list] = {}
  for (C_b, N), groups in sorted(by.items()):
    cells, reps = [], []
    for b2, rs in sorted(groups.items(), key=lambda kv: kv[0] or 0.0):
      cell, loss_r, log_lr_r = _lr_cell(C_b, N, rs, sigma, R, rng)
      if cell is not None:
        cells.append(cell)
        reps.append((loss_r, log_lr_r, b2 or 0.0))
    if not cells:
      continue
    if len(groups) > 1:
      for c in cells:
        by_b2.setdefault(c.b2, []).append(c)
    out.append(b2_tuning.best_b2(cells, reps, METHOD))
  return out, by_b2


def _tuned_runs(cells: Sequence[Cell], raw, method: str = METHOD):
  prov = dict(raw.provenance)
  prov["lr_tuning"] = (f"loss at the lr optimum per (budget, N), "
                       f"{lr_optimum.CITATIONS[method]}")
  arr = lambda f: np.array([f(c) for c in cells], np.float64)
  return Runs(N=arr(lambda c: c.N), D=arr(lambda c: c.D),
              C=arr(lambda c: c.C),
              loss=arr(lambda c: c.optimum[method].loss_opt),
              budget=arr(lambda c: c.budget),
              run_id=np.array([f"tuned_C{c.budget:.3g}_N{c.N:.3g}"
                               for c in cells], dtype=object),
              provenance=prov)


def prepare(records, raw_runs, settings):
  """(runs to fit, settings, Tuning or None): a sweep with one lr per point
  is returned as it is; a tuned one as its tuned points, with
  ``seed_noise_std`` set to sigma_tuned (unless no sigma is known)."""
  grid = multipliers_of(records)
  b2s = b2_values_of(records)
  if len(grid) < 2 and len(b2s) < 2:
    return raw_runs, settings, None
  sigma, source = _seed_sigma(records, settings.seed_noise_std)
  R = max(int(settings.bootstrap), MIN_REPLICATES)
  cells, by_b2 = _cells_by_b2(records, sigma, R, settings.seed)
  sds = np.array([c.loss_sd for c in cells])
  sigma_tuned = (float(np.sqrt(np.nanmean(sds**2)))
                 if sigma and np.isfinite(sds).any() else None)
  if sigma_tuned is None:
    warnings.warn("lr tuning: no seed repeats and no analysis.seed_noise_std:"
                  " the tuned points' intervals omit the uncertainty of the "
                  "interpolated lr optimum (set sweep.seed_repeats)")
  elif settings.isoflop_scheme != "seed_noise":
    warnings.warn("lr tuning: analysis.isoflop_scheme='runs' resamples the "
                  "tuned points and omits the uncertainty of the "
                  "interpolated lr optimum; use isoflop_scheme='seed_noise'")
  tuning = Tuning(tuple(cells), grid, sigma, source, sigma_tuned,
                  _tuned_runs(cells, raw_runs),
                  b2s if len(b2s) > 1 else (),
                  {b: tuple(cs) for b, cs in sorted(by_b2.items())})
  if sigma_tuned is not None:
    settings = dataclasses.replace(settings, seed_noise_std=sigma_tuned)
  edges = [c for c in cells if c.optimum[METHOD].edge]
  if edges:
    warnings.warn(
        f"lr tuning: {len(edges)} of {len(cells)} (budget, N) cells have "
        "their best learning rate on the edge of the grid ("
        + ", ".join(f"C={c.budget:.3g} N={c.N:.3g} {c.optimum[METHOD].edge}"
                    for c in edges[:6]) + (", ..." if len(edges) > 6 else "")
        + "): their tuned loss is the best grid loss; widen "
        "sweep.lr_multipliers on that side")
  b2_edges = [c for c in cells if c.b2_edge]
  if b2_edges:
    warnings.warn(
        f"b2 tuning: {len(b2_edges)} of {len(cells)} (budget, N) cells have "
        "their best AdamW beta2 on the edge of the grid ("
        + ", ".join(f"C={c.budget:.3g} N={c.N:.3g} b2={c.b2:g} {c.b2_edge}"
                    for c in b2_edges[:6])
        + (", ..." if len(b2_edges) > 6 else "")
        + "); widen sweep.b2_values on that side")
  return tuning.runs, settings, tuning


# ----------------------------------------------------------------------------
# Side fits: a per estimator, a per multiplier.

def _point_a(runs, estimator, ctx, sigma) -> Dict[str, Any]:
  """a of one Approach-2 fit of ``runs`` with the pass's options (ctx)."""
  opts = ctx.options.get("approach2") or {}
  try:
    with warnings.catch_warnings():
      warnings.simplefilter("ignore")
      f = fit_isoflop(
          runs, estimator=estimator,
          estimator_options=(opts.get("estimator_options") or {}).get(
              estimator),
          bootstrap=min(POINT_BOOTSTRAP, ctx.bootstrap),
          seed=ctx.seed, scheme=opts.get("scheme", "runs"),
          weighted=opts.get("weighted", False) if ctx.bootstrap else False,
          seed_noise_std=sigma, on_edge=opts.get("on_edge", "warn"),
          flops_per_token=ctx.flops_per_token)
  except ScalingDataError as e:
    return {"a": None, "reason": " ".join(str(e).split())}
  return {"a": float(f.a), "n_budgets": len(f.minima)}


def _estimator(ctx) -> str:
  est = ctx.choices.get("approach2")
  return est if est and est != "all" else DEFAULT_ESTIMATOR


def _by_estimator(ctx) -> Dict[str, Any]:
  sigma = (ctx.options.get("approach2") or {}).get("seed_noise_std")
  return {e: _point_a(ctx.runs, e, ctx, sigma) for e in ESTIMATORS}


def reference_b2(tuning: Tuning, meta: Dict[str, Any]) -> Optional[float]:
  """With a b2 grid, the b2 the per-multiplier fits use: the base config's
  train.b2 when in the grid, else the grid value nearest it
  (``experiments.b2_grid.reference``); None without a grid."""
  if len(tuning.b2_values) < 2:
    return None
  train = ((meta.get("config") or {}).get("lm") or {}).get("train") or {}
  return b2_grid.reference(tuning.b2_values, float(train.get("b2", 0.95)))


def _by_multiplier(records, raw, ctx, tuning: Tuning, b2_ref=None):
  out = {}
  ids = np.array([str(x) for x in raw.run_id])
  for m in tuning.multipliers:
    keep = {r["run_id"] for r in records if r["status"] == "ok"
            and float(r.get("lr_multiplier") or 1.0) == m
            and (b2_ref is None or b2_of(r) == b2_ref)}
    sub = raw.subset(np.isin(ids, list(keep)))
    out[f"{m:g}"] = _point_a(sub, _estimator(ctx), ctx, tuning.sigma_seed)
  return out


def _by_b2(raw, ctx, tuning: Tuning):
  """a of the lr-tuned points at each single b2 (the b2 sensitivity)."""
  sigma = (ctx.options.get("approach2") or {}).get("seed_noise_std")
  return {f"{b:g}": _point_a(_tuned_runs(cells, raw), _estimator(ctx), ctx,
                             sigma)
          for b, cells in tuning.by_b2.items()}


# ----------------------------------------------------------------------------
# The check: fit.json's 'lr_tuning' record, its plot and printed lines.

@dataclasses.dataclass(frozen=True)
class SweepInputs:
  """What the check needs beyond the pass's CheckContext (run_fit's
  ``check_inputs[KEY]``, built by ``experiments.analyze``)."""
  records: Sequence[Dict[str, Any]]   # the ledger's lines
  raw_runs: Any                       # every run (all multipliers)
  meta: Dict[str, Any]                # sweep.json
  tuning: Optional[Tuning]            # prepare's; None: one lr per point


def check_inputs(records, raw_runs, meta, tuning) -> Dict[str, Any]:
  """run_fit's ``check_inputs`` for this check."""
  return {KEY: SweepInputs(records, raw_runs, meta, tuning)}


def record(ctx: registry.CheckContext) -> Dict[str, Any]:
  """``fit['lr_tuning']`` (module docstring) from the pass's context."""
  inp = ctx.inputs.get(KEY)
  if inp is None:
    return _skipped("no sweep ledger (experiments.analyze builds its inputs)")
  tuning = inp.tuning
  entry: Dict[str, Any] = {
      "status": "done",
      "hyperparameters": hyperparameters(inp.meta, inp.records),
      "approach1_fitted": "approach1" in ctx.fitted}
  a2 = "approach2" in ctx.fitted
  if a2:
    entry["a_by_estimator"] = _by_estimator(ctx)
    entry["side_fit_replicates"] = min(POINT_BOOTSTRAP, ctx.bootstrap)
  if tuning is None:
    entry["tuned"] = False
    return fit_schema.jsonable(entry)
  cells = tuning.cells
  entry.update(
      tuned=True, method=METHOD,
      method_citation=lr_optimum.CITATIONS[METHOD],
      multipliers=list(tuning.multipliers), sigma_seed=tuning.sigma_seed,
      sigma_source=tuning.sigma_source, sigma_tuned=tuning.sigma_tuned,
      cells=[c.to_dict() for c in cells],
      edge_cells=[f"C={c.budget:.3g} N={c.N:.4g} ({c.optimum[METHOD].edge})"
                  for c in cells if c.optimum[METHOD].edge],
      lr_opt_by_size=_lr_opt_by_size(cells))
  b2_ref = reference_b2(tuning, inp.meta)
  if tuning.b2_values:
    entry.update(
        b2_values=list(tuning.b2_values), b2_reference=b2_ref,
        b2_by_size=b2_tuning.b2_by_size(cells),
        b2_edge_cells=[f"C={c.budget:.3g} N={c.N:.4g} (b2={c.b2:g}, "
                       f"{c.b2_edge})" for c in cells if c.b2_edge])
  if a2:
    entry["a_by_multiplier"] = _by_multiplier(inp.records, inp.raw_runs, ctx,
                                              tuning, b2_ref)
    if tuning.b2_values:
      entry["a_by_b2"] = _by_b2(inp.raw_runs, ctx, tuning)
    sigma = (ctx.options.get("approach2") or {}).get("seed_noise_std")
    entry["a_akima_tuned"] = _point_a(
        _tuned_runs(cells, inp.raw_runs, "akima"), _estimator(ctx), ctx, sigma)
  return fit_schema.jsonable(entry)


def _skipped(reason: str) -> Dict[str, Any]:
  return {"status": "skipped", "reason": reason}


def cell_from_dict(d: Dict[str, Any]) -> Cell:
  """A Cell back from its fit.json record."""
  d = dict(d)
  d["optimum"] = {k: lr_optimum.LrOptimum(**v)
                  for k, v in d["optimum"].items()}
  for k in ("lrs", "losses", "multipliers", "b2_tried", "b2_losses"):
    if k in d:
      d[k] = tuple(d[k])
  return Cell(**d)


def _plot(entry: Dict[str, Any], out_dir: str) -> Optional[str]:
  if not entry.get("tuned"):
    return None
  return lr_report.plot_lr_curves(
      [cell_from_dict(c) for c in entry["cells"]],
      os.path.join(out_dir, "lr_tuning.png"), entry.get("method", METHOD))


def _summary(entry: Optional[Dict[str, Any]]) -> List[str]:
  if not entry or entry.get("status") != "done":
    return []
  lines = lr_report.summary_lines(entry)   # hyper-parameters line first
  return lines[:1] + lr_report.estimator_lines(entry) + lines[1:]


CHECK = registry.register_check(registry.Check(
    key=KEY, label="learning-rate tuning: hyper-parameters tuned and fixed, "
    "the tuned points' lr optima, a per estimator and per lr multiplier",
    run=record, skipped=_skipped, plot=_plot, summary=_summary))


def _lr_opt_by_size(cells: Sequence[Cell]) -> Dict[str, Any]:
  """Per N: the geometric mean of its bracketed cells' lr optima (and the
  count of edge cells)."""
  out = {}
  for N in sorted({c.N for c in cells}):
    mine = [c for c in cells if c.N == N]
    inside = [c.optimum[METHOD].lr_opt for c in mine
              if not c.optimum[METHOD].edge]
    out[f"{N:.6g}"] = {
        "lr_opt": float(np.exp(np.mean(np.log(inside)))) if inside else None,
        "n_cells": len(mine), "n_edge": len(mine) - len(inside),
        "edge_sides": sorted({c.optimum[METHOD].edge for c in mine
                              if c.optimum[METHOD].edge})}
  return out
