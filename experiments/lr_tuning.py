"""Learning-rate tuning in the analysis of a sweep (``sweep.lr_multipliers``).

A sweep whose ledger holds several learning-rate multipliers per (N, C) point
(``experiments.lr_grid``) is fitted on *tuned* points: per (budget, N) cell,
the loss at the learning-rate optimum interpolated over log lr
(``scaling.lr_optimum``: the parabola through the best grid point and its
neighbours; Akima as Porian et al. 2024 reported next to it). A cell whose
best learning rate is the smallest or largest of its grid is flagged: the
sweep must widen the grid on that side.

Uncertainty: every per-lr loss is perturbed by the run-to-run sigma (seed
repeats at the reference multiplier, ``scaling.seed_noise``'s pooled std, or
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
fitting and ``add_to_fit`` / ``summary_lines`` / ``estimator_lines`` after
(the printed lines and the plot: ``experiments.lr_report``).
"""
from __future__ import annotations

import dataclasses
import os
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from experiments import lr_report
from experiments.lr_report import estimator_lines, summary_lines  # noqa: F401
from scaling import lr_optimum

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
  runs: Any                       # scaling.data.Runs of the tuned points


def multipliers_of(records: Sequence[Dict[str, Any]]) -> Tuple[float, ...]:
  """Distinct lr multipliers of the ledger (1 for lines without the field)."""
  return tuple(sorted({float(r.get("lr_multiplier") or 1.0) for r in records
                       if r["status"] == "ok"}))


def _seed_sigma(records, stated) -> Tuple[Optional[float], str]:
  """Pooled std (scaling.seed_noise.pooled_std) of runs identical in
  (budget, N, D, lr) but seed; or the stated sigma."""
  from scaling.seed_noise import pooled_std
  if stated is not None:
    return float(stated), "stated (analysis.seed_noise_std)"
  ok = [r for r in records
        if r["status"] == "ok" and r.get("eval_loss") is not None]
  groups: Dict[Tuple, List[int]] = {}
  for i, r in enumerate(ok):
    key = (float(r["budget"]), float(r["N"]), float(r["D"]),
           float(r.get("lr") or 0))
    groups.setdefault(key, []).append(i)
  noise = pooled_std([np.array(g) for g in groups.values() if len(g) >= 2],
                     [float(r["eval_loss"]) for r in ok])
  if noise is None:
    return None, "none: no seed repeats"
  return noise.sigma, noise.describe()


def _cells(records, sigma, R, seed) -> List[Cell]:
  by: Dict[Tuple[float, float], List[Dict[str, Any]]] = {}
  for r in records:
    if r.get("repeat_of"):
      continue
    by.setdefault((float(r["budget"]), float(r["N"])), []).append(r)
  rng = np.random.default_rng(seed)
  out = []
  for (C_b, N), rs in sorted(by.items()):
    ok = sorted((r for r in rs if r["status"] == "ok"),
                key=lambda r: float(r["lr"]))
    if not ok:
      continue
    lrs = np.array([float(r["lr"]) for r in ok])
    loss = np.array([float(r["eval_loss"]) for r in ok])
    opt = {m: lr_optimum.optimum(lrs, loss, m) for m in lr_optimum.INTERPOLATIONS}
    sd = lsd = float("nan")
    if sigma and R:
      lr_r, loss_r = lr_optimum.replicates(lrs, loss, sigma, R, rng, METHOD)
      sd, lsd = float(np.std(loss_r)), float(np.std(np.log(lr_r)))
    out.append(Cell(
        budget=C_b, N=N, D=float(ok[0]["D"]),
        C=float(np.mean([float(r["C"]) for r in ok])), lrs=tuple(lrs),
        losses=tuple(loss),
        multipliers=tuple(float(r.get("lr_multiplier") or 1.0) for r in ok),
        n_not_ok=len(rs) - len(ok), optimum=opt, loss_sd=sd, log_lr_sd=lsd))
  return out


def _tuned_runs(cells: Sequence[Cell], raw, method: str = METHOD):
  from scaling.data import Runs
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
  if len(grid) < 2:
    return raw_runs, settings, None
  sigma, source = _seed_sigma(records, settings.seed_noise_std)
  R = max(int(settings.bootstrap), MIN_REPLICATES)
  cells = _cells(records, sigma, R, settings.seed)
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
                  _tuned_runs(cells, raw_runs))
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
  return tuning.runs, settings, tuning


# ----------------------------------------------------------------------------
# Side fits: a per estimator, a per multiplier.

def _point_a(runs, estimator, settings, F, sigma) -> Dict[str, Any]:
  from scaling.data import ScalingDataError
  from scaling.isoflop import fit_isoflop
  opts = settings.isoflop_options()
  try:
    with warnings.catch_warnings():
      warnings.simplefilter("ignore")
      f = fit_isoflop(
          runs, estimator=estimator,
          estimator_options=opts["estimator_options"].get(estimator),
          bootstrap=min(POINT_BOOTSTRAP, int(settings.bootstrap)),
          seed=settings.seed, scheme=opts["scheme"],
          weighted=opts["weighted"] if settings.bootstrap else False,
          seed_noise_std=sigma, on_edge=opts["on_edge"], flops_per_token=F)
  except ScalingDataError as e:
    return {"a": None, "reason": " ".join(str(e).split())}
  return {"a": float(f.a), "n_budgets": len(f.minima)}


def _by_estimator(runs, settings, F) -> Dict[str, Any]:
  from scaling.isoflop_estimators import ESTIMATORS
  return {e: _point_a(runs, e, settings, F, settings.seed_noise_std)
          for e in ESTIMATORS}


def _by_multiplier(records, raw, settings, F, tuning: Tuning):
  out = {}
  ids = np.array([str(x) for x in raw.run_id])
  for m in tuning.multipliers:
    keep = {r["run_id"] for r in records if r["status"] == "ok"
            and float(r.get("lr_multiplier") or 1.0) == m}
    sub = raw.subset(np.isin(ids, list(keep)))
    est = settings.isoflop_estimator
    est = est if est != "all" else _default_estimator()
    out[f"{m:g}"] = _point_a(sub, est, settings, F, tuning.sigma_seed)
  return out


def _default_estimator() -> str:
  from scaling.isoflop_estimators import DEFAULT_ESTIMATOR
  return DEFAULT_ESTIMATOR


# ----------------------------------------------------------------------------
# Hyper-parameters: tuned and fixed.

def hyperparameters(meta: Dict[str, Any], records) -> Dict[str, Any]:
  """{'tuned': {name: grid description}, 'fixed': {name: value}} from the
  sweep config (sweep.json) and the ledger."""
  cfg = meta.get("config") or {}
  s, train = cfg.get("sweep") or {}, (cfg.get("lm") or {}).get("train") or {}
  grid = multipliers_of(records)
  rule = ""
  if s:
    from experiments.lr_grid import describe
    from lm.config_dict import ConfigDict
    try:
      rule = describe(ConfigDict(dict(s)), with_grid=len(grid) < 2)
    except (KeyError, AttributeError):
      rule = ""
  lrs = sorted({float(r["lr"]) for r in records if r.get("lr")})
  lr_range = (f"{lrs[0]:.3g}..{lrs[-1]:.3g}" if len(lrs) > 1
              else f"{lrs[0]:.3g}" if lrs else "?")
  tuned, fixed = {}, {}
  if len(grid) > 1:
    tuned["lr"] = (f"multipliers {{{', '.join(f'{m:g}' for m in grid)}}} of "
                   f"the rule ({rule or 'sweep.lr_rule'}); lrs {lr_range}")
  else:
    fixed["lr"] = f"{rule or 'sweep.lr_rule'}; lrs {lr_range}"
  bs = sorted({int(r["batch_size"]) * int(r.get("seq_len") or 1)
               for r in records if r.get("batch_size")})
  if bs:
    fixed["batch_tokens"] = (f"{bs[0]}" if len(bs) == 1 else
                             f"{bs[0]}..{bs[-1]} (sweep.batch_rule="
                             f"{s.get('batch_rule', '?')})")
  for k in ("b1", "b2", "eps", "weight_decay", "grad_clip", "min_lr_ratio",
            "schedule", "cooldown_fraction", "cooldown_shape"):
    if k in train:
      fixed[k] = train[k]
  if s:
    fixed["warmup"] = (f"max({s.get('min_warmup_steps')} steps, "
                       f"{s.get('warmup_fraction')} x steps)")
  return {"tuned": tuned, "fixed": fixed}


# ----------------------------------------------------------------------------
# Into fit.json, the printed summary and a plot.

def add_to_fit(fit: Dict[str, Any], tuning: Optional[Tuning], records,
               raw_runs, fit_runs, meta, settings, F,
               plot_dir: Optional[str]) -> None:
  """Adds ``fit['lr_tuning']`` (module docstring); a plot into plot_dir."""
  entry: Dict[str, Any] = {"hyperparameters": hyperparameters(meta, records)}
  if fit.get("approach2") is not None:
    entry["a_by_estimator"] = _by_estimator(fit_runs, settings, F)
    entry["side_fit_replicates"] = min(POINT_BOOTSTRAP, int(settings.bootstrap))
  if tuning is not None:
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
    if fit.get("approach2") is not None:
      entry["a_by_multiplier"] = _by_multiplier(records, raw_runs, settings, F,
                                                tuning)
      akima_runs = _tuned_runs(cells, raw_runs, "akima")
      entry["a_akima_tuned"] = _point_a(
          akima_runs, settings.isoflop_estimator if
          settings.isoflop_estimator != "all" else _default_estimator(),
          settings, F, settings.seed_noise_std)
    if plot_dir:
      path = lr_report.plot_lr_curves(cells,
                                      os.path.join(plot_dir, "lr_tuning.png"),
                                      METHOD)
      if path:
        fit.setdefault("plots", []).append(os.path.basename(path))
  else:
    entry["tuned"] = False
  from scaling import fit_schema
  fit["lr_tuning"] = fit_schema.jsonable(entry)


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
