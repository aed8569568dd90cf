"""Optimal learning-rate and batch laws from tuned runs (the math of the hparams family).

Procedure (Li et al. 2025, "Predictable Scale: Part I", arXiv:2503.04715,
Step Law; band as DeepSeek LLM, Bi et al. 2024, arXiv:2401.02954, Sec. 3.1):

1. group runs into cells of equal (N, D); every cell needs >= ``MIN_LRS``
   distinct learning rates (one ``error:`` line otherwise);
2. keep the runs of each cell whose loss is within ``band`` (relative) of the
   cell's best loss: the near-optimal (lr, batch) points;
3. least squares on logs over the kept runs:
     ln lr = ln c + alpha ln N + beta ln D       (eta*(N, D) = c N^alpha D^beta, Step Law)
     ln B  = ln k + gamma ln D                   (B*(D) = k D^gamma, Step Law; B in tokens)
     ln lr = ln k + e ln C,  ln B = ln k + e ln C (eta*(C), B*(C), DeepSeek LLM Eq. 1)
   B laws are fitted only when the batch was tuned (some cell has >= 2
   batch sizes);
4. intervals: bootstrap over runs, stratified by cell (each cell's runs
   resampled with replacement, so every cell stays), with steps 2-3 redone
   on every resample (the band moves with the resampled best loss);
   percentile intervals at ``level``.

A cell whose best run's learning rate is the smallest or largest of its grid
gets one warning naming it: its optimum may lie outside the grid.
"""
from __future__ import annotations

import dataclasses
import warnings
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from scaling.io.types import ScalingDataError
from scaling.hparams.inputs import HparamRuns

MIN_LRS = 3            # a cell's optimum is bracketed by >= 3 learning rates
PROCEDURE = ("cells of equal (N, D), each with >= 3 learning rates; keep the "
             "runs within the band (relative) of their cell's best loss; "
             "least squares of ln lr on (1, ln N, ln D) and (1, ln C), of ln "
             "B (tokens) on (1, ln D) and (1, ln C), over the kept runs")
CITATION_STEP = ("Li et al. 2025, Predictable Scale: Part I (Step Law), "
                 "arXiv:2503.04715")
CITATION_DEEPSEEK = ("Bi et al. 2024, DeepSeek LLM, arXiv:2401.02954, Sec. 3.1, "
                     "Eq. 1")
# name -> (y column, x columns, form, citation)
LAWS = {
    "eta_ND": ("lr", ("N", "D"), "lr*(N, D) = c N^alpha D^beta", CITATION_STEP),
    "B_D": ("batch_tokens", ("D",), "B*(D) = k D^gamma (tokens)",
            CITATION_STEP),
    "eta_C": ("lr", ("C",), "lr*(C) = k C^e", CITATION_DEEPSEEK),
    "B_C": ("batch_tokens", ("C",), "B*(C) = k C^e (tokens)",
            CITATION_DEEPSEEK),
}
# Exponent names per law, as the papers write them.
EXPONENTS = {"eta_ND": ("alpha", "beta"), "B_D": ("gamma",), "eta_C": ("e",),
             "B_C": ("e",)}


@dataclasses.dataclass(frozen=True)
class Law:
  """y = k prod_j x_j^exponent_j fitted by least squares on logs.

  Attributes:
    name: 'eta_ND', 'B_D', 'eta_C' or 'B_C' (``LAWS``).
    y, x: column names.
    k: prefactor; exponents: one per x, named ``EXPONENTS[name]``.
    n_points: kept runs fitted; rmse_log: RMS of ln y_hat - ln y.
    samples: 'k' and exponent names -> bootstrap arrays (empty: none).
    ci: the same names -> (lo, hi) percentile intervals.
  """
  name: str
  y: str
  x: Tuple[str, ...]
  k: float
  exponents: Tuple[float, ...]
  n_points: int
  rmse_log: float
  samples: Dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
  ci: Dict[str, Tuple[float, float]] = dataclasses.field(default_factory=dict)

  @property
  def exponent_names(self) -> Tuple[str, ...]:
    return EXPONENTS[self.name]

  def formula(self) -> str:
    terms = " ".join(f"{x}^{e:.4g}" for x, e in zip(self.x, self.exponents))
    return f"{self.y}* = {self.k:.4g} {terms}"

  def predict(self, *xs) -> np.ndarray:
    out = self.k * np.ones(np.broadcast(*xs).shape)
    for x, e in zip(xs, self.exponents):
      out = out * np.asarray(x, np.float64) ** e
    return out

  def band(self, *xs, level: float = 0.95):
    """Pointwise percentile band of the prediction (None: no samples)."""
    if not self.samples:
      return None
    lx = [np.log(np.asarray(x, np.float64)).ravel() for x in xs]
    ln = np.log(self.samples["k"])[:, None] + sum(
        self.samples[n][:, None] * l[None] for n, l in
        zip(self.exponent_names, lx))
    q = 50.0 * (1.0 - level), 50.0 * (1.0 + level)
    return (np.exp(np.percentile(ln, q[0], axis=0)),
            np.exp(np.percentile(ln, q[1], axis=0)))

  def to_dict(self) -> Dict[str, Any]:
    d = dict(formula=self.formula(), form=LAWS[self.name][2],
             citation=LAWS[self.name][3], y=self.y, x=list(self.x), k=self.k,
             n_points=self.n_points, rmse_log=self.rmse_log,
             ci={n: [float(v[0]), float(v[1])] for n, v in self.ci.items()})
    d.update(zip(self.exponent_names, self.exponents))
    if self.samples:
      d["bootstrap_mean"] = {n: float(np.mean(v)) for n, v in
                             self.samples.items()}
    return d


@dataclasses.dataclass(frozen=True)
class Cell:
  """One (N, D) cell: its learning-rate grid and near-optimal runs."""
  N: float
  D: float
  C: float
  n_runs: int
  lrs: Tuple[float, ...]           # distinct learning rates, ascending
  batches: Tuple[float, ...]       # distinct batch sizes (tokens), ascending
  best_lr: float
  best_batch: float
  best_loss: float
  n_kept: int
  kept_lr_range: Tuple[float, float]
  on_edge: str                     # '', 'smallest' or 'largest'

  def name(self) -> str:
    return f"N={self.N:.4g}, D={self.D:.4g}"

  def to_dict(self) -> Dict[str, Any]:
    d = dataclasses.asdict(self)
    d["lrs"], d["batches"] = list(self.lrs), list(self.batches)
    d["kept_lr_range"] = list(self.kept_lr_range)
    return d


@dataclasses.dataclass(frozen=True)
class HparamsFit:
  """The fitted laws, the cells and how intervals were made.

  Attributes:
    laws: name -> Law for each law fitted (``LAWS`` order).
    not_fitted: name -> why a law was not fitted.
    cells: every (N, D) cell.
    kept: boolean mask of the band-kept runs (full data).
    band: relative loss band; level: interval level.
    n_bootstrap, n_failed, seed: resampling settings and outcome.
  """
  runs: HparamRuns
  laws: Dict[str, Law]
  not_fitted: Dict[str, str]
  cells: Tuple[Cell, ...]
  kept: np.ndarray
  band: float
  level: float
  n_bootstrap: int
  n_failed: int
  seed: int

  @property
  def interval_procedure(self) -> Optional[str]:
    if not self.n_bootstrap:
      return None
    lo, hi = 50.0 * (1 - self.level), 50.0 * (1 + self.level)
    return (f"bootstrap over runs stratified by (N, D) cell, band re-applied "
            f"per resample, n={self.n_bootstrap - self.n_failed}, percentile "
            f"{lo:g}-{hi:g}%")


def _cells(runs: HparamRuns) -> Tuple[np.ndarray, np.ndarray]:
  """(cell index per run, (n_cells, 2) array of (N, D)) in (N, D) order."""
  ND = np.column_stack([runs.N, runs.D])
  keys, idx = np.unique(ND, axis=0, return_inverse=True)
  return idx.ravel(), keys


def _wls(Z: np.ndarray, y: np.ndarray, W_BxN: np.ndarray) -> np.ndarray:
  """Weighted least squares of y on Z per row of W: coefficients (B, p);
  NaN rows where the normal matrix is singular (too few distinct x)."""
  M = np.einsum("bn,ni,nj->bij", W_BxN, Z, Z)
  v = np.einsum("bn,ni,n->bi", W_BxN, Z, y)
  coef = np.full(v.shape, np.nan)
  ok = np.linalg.cond(M) < 1e10
  if ok.any():
    coef[ok] = np.linalg.solve(M[ok], v[ok][..., None])[..., 0]
  return coef


def _kept(loss, cell, n_cells, band, W=None) -> np.ndarray:
  """Band mask (B, n): loss within ``band`` of its cell's best (present) run."""
  present = np.ones((1, loss.size), bool) if W is None else W > 0
  L = np.where(present, loss[None], np.inf)
  best = np.full((L.shape[0], n_cells), np.inf)
  for j in range(n_cells):
    best[:, j] = L[:, cell == j].min(axis=1)
  return present & (L <= best[:, cell] * (1.0 + band))


def _resamples(cell, n_cells, bootstrap, rng) -> np.ndarray:
  """(bootstrap, n) multiplicities: each cell's runs resampled in the cell."""
  W = np.zeros((bootstrap, cell.size))
  for j in range(n_cells):
    members = np.flatnonzero(cell == j)
    W[:, members] = rng.multinomial(members.size,
                                    np.full(members.size, 1.0 / members.size),
                                    size=bootstrap)
  return W


def _check_cells(runs, cell, keys) -> None:
  """One error line for cells with fewer than MIN_LRS learning rates."""
  few = []
  for j, (N, D) in enumerate(keys):
    lrs = np.unique(runs.lr[cell == j])
    if lrs.size < MIN_LRS:
      few.append(f"N={N:.4g}, D={D:.4g} ({lrs.size}: "
                 + ", ".join(f"{v:.3g}" for v in lrs) + ")")
  if few:
    raise ScalingDataError(
        f"hparams: {len(few)} (N, D) cell(s) have fewer than {MIN_LRS} "
        f"learning rates, so their optimum is not bracketed: {few[0]}"
        + (f" and {len(few) - 1} more" if len(few) > 1 else "")
        + f"; run >= {MIN_LRS} learning rates per cell or drop the cell")


def _cell_records(runs, cell, keys, kept) -> List[Cell]:
  out = []
  for j, (N, D) in enumerate(keys):
    sel = cell == j
    i = np.flatnonzero(sel)[np.argmin(runs.loss[sel])]
    lrs = tuple(float(v) for v in np.unique(runs.lr[sel]))
    bt = runs.batch_tokens[sel]
    batches = tuple(float(v) for v in np.unique(bt[np.isfinite(bt)]))
    edge = ("smallest" if runs.lr[i] == lrs[0] else
            "largest" if runs.lr[i] == lrs[-1] else "")
    klr = runs.lr[sel & kept]
    out.append(Cell(N=float(N), D=float(D), C=float(np.median(runs.C[sel])),
                    n_runs=int(sel.sum()), lrs=lrs, batches=batches,
                    best_lr=float(runs.lr[i]),
                    best_batch=float(runs.batch_tokens[i]),
                    best_loss=float(runs.loss[i]), n_kept=int(klr.size),
                    kept_lr_range=(float(klr.min()), float(klr.max())),
                    on_edge=edge))
  return out


def _edge_warning(cells: List[Cell]) -> None:
  edge = [c for c in cells if c.on_edge]
  if edge:
    text = "; ".join(f"{c.name()} (best lr {c.best_lr:.3g} is the {c.on_edge} "
                     f"of {len(c.lrs)})" for c in edge[:6])
    more = f"; and {len(edge) - 6} more" if len(edge) > 6 else ""
    warnings.warn(f"hparams: best learning rate on the edge of its grid in "
                  f"{len(edge)} cell(s): {text}{more}; the optimum may lie "
                  "outside the grid: widen it there (the fit keeps these "
                  "cells)")


def _design(runs: HparamRuns, x: Tuple[str, ...]) -> np.ndarray:
  return np.column_stack([np.ones(len(runs))] +
                         [np.log(getattr(runs, n)) for n in x])


def _why_not(name: str, runs: HparamRuns, cells: List[Cell]) -> Optional[str]:
  y, x, _, _ = LAWS[name]
  if y == "batch_tokens":
    if not runs.has_batch:
      return "no batch_tokens column: batch not recorded"
    if max(len(c.batches) for c in cells) < 2:
      return "one batch size per cell: the batch was not tuned"
  for col in x:
    if np.unique(getattr(runs, col)).size < 2:
      return f"one value of {col}: its exponent is not identified"
  return None


def fit_hparams(runs: HparamRuns, *, band: float = 0.0025,
                level: float = 0.95, bootstrap: int = 0,
                seed: int = 0) -> HparamsFit:
  """Fits eta*(N, D), B*(D), eta*(C), B*(C) (see the module docstring)."""
  if not 0 < band < 1:
    raise ScalingDataError(f"hparams: band must be in (0, 1), got {band!r}")
  if not 0 < level < 1:
    raise ScalingDataError(f"hparams: level must be in (0, 1), got {level!r}")
  if bootstrap < 0 or bootstrap == 1:
    raise ScalingDataError(f"bootstrap must be 0 or >= 2, got {bootstrap}")
  cell, keys = _cells(runs)
  _check_cells(runs, cell, keys)
  kept = _kept(runs.loss, cell, len(keys), band)[0]
  cells = _cell_records(runs, cell, keys, kept)
  _edge_warning(cells)
  W = (_resamples(cell, len(keys), bootstrap, np.random.default_rng(seed))
       if bootstrap else None)
  Wk = None if W is None else W * _kept(runs.loss, cell, len(keys), band, W)
  laws, not_fitted, failed = {}, {}, np.zeros(bootstrap, bool)
  for name, (y, x, _, _) in LAWS.items():
    why = _why_not(name, runs, cells)
    if why is None:
      law, bad = _fit_law(name, runs, kept, Wk, level)
      if law is None:
        why = f"the kept runs do not identify {', '.join(x)}"
      else:
        laws[name] = law
        failed |= bad
    if why:
      if name == "eta_ND":
        raise ScalingDataError(
            f"hparams: lr*(N, D) cannot be fitted: {why}; the cells need >= 2 "
            "model sizes N and >= 2 token counts D, not all on one line in "
            "(log N, log D)")
      not_fitted[name] = why
  return HparamsFit(runs=runs, laws=laws, not_fitted=not_fitted,
                    cells=tuple(cells), kept=kept, band=float(band),
                    level=float(level), n_bootstrap=int(bootstrap),
                    n_failed=int(failed.sum()), seed=int(seed))


def _fit_law(name, runs, kept, Wk, level):
  """(Law or None, per-resample failure mask)."""
  y, x, _, _ = LAWS[name]
  Z, ly = _design(runs, x), np.log(getattr(runs, y))
  coef = _wls(Z, ly, kept[None].astype(float))[0]
  if not np.all(np.isfinite(coef)):
    return None, None
  sel = kept
  rmse = float(np.sqrt(np.mean((Z[sel] @ coef - ly[sel])**2)))
  samples, ci, bad = {}, {}, np.zeros(0, bool)
  if Wk is not None:
    cb = _wls(Z, ly, Wk)
    bad = ~np.all(np.isfinite(cb), axis=1)
    cb = cb[~bad]
    samples = {"k": np.exp(cb[:, 0])}
    samples.update({n: cb[:, 1 + i]
                    for i, n in enumerate(EXPONENTS[name])})
    q = 50.0 * (1.0 - level), 50.0 * (1.0 + level)
    ci = {n: (float(np.percentile(v, q[0])), float(np.percentile(v, q[1])))
          for n, v in samples.items()}
  return Law(name=name, y=y, x=x, k=float(np.exp(coef[0])),
             exponents=tuple(float(v) for v in coef[1:]),
             n_points=int(sel.sum()), rmse_log=rmse, samples=samples,
             ci=ci), bad
