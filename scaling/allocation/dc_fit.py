"""Fitting the data-constrained law (Muennighoff et al. 2023) to a user's runs.

Two stages, in the order the paper builds the law (Sec. 3.1: the
single-epoch Chinchilla law, then the decay of repeated data and of excess
parameters):

1. E, A, B, alpha, beta: Approach 3 (``scaling.approach3.parametric.fit_parametric``,
   Hoffmann's grid + L-BFGS on the Huber loss of log L) on the runs that do
   not repeat data (epochs <= 1), or taken from a given base law
   (``base=``: a published law or a fit.json's Approach 3).
2. R_N*, R_D*: minimise sum_i Huber_delta(log L_hat_i - log L_i), delta =
   1e-3 (the Approach-3 objective, Hoffmann et al. 2022 Eq. 10) over
   (log R_N*, log R_D*) with the stage-1 parameters fixed: L-BFGS-B from a
   4 x 4 grid of starts (R* = 1, 4.6, 21.5, 100), best objective kept.

R_D* is identified only by runs that repeat data (epochs > 1); R_N* only by
runs with N above the Chinchilla-optimal N for their unique tokens (excess
parameters). Without such runs the fit refuses (R_D*) or keeps the
published R_N* and says so. ``published_law()`` is the default law.

Registration: the fit-method registry (``scaling.report.registry``) fits a
``scaling.io.types.Runs`` table, which carries no unique-token count, into one
of fit.json's fixed families; this family therefore is a standalone fit
(``fit_data_constrained``) with its own CLI
(``python -m scaling.allocation.fit_data_constrained``) whose law .json
``scaling.allocate --law=`` reads.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
from typing import Any, Dict, Optional

import numpy as np
from scipy import optimize
from scipy.special import huber

from scaling.allocation import data_constrained
from scaling.allocation import output
from scaling.allocation import laws as laws_lib
from scaling.allocation.errors import AllocationError
from scaling.approach3 import parametric
from scaling.io import ledger_schema

HUBER_DELTA = 1e-3      # Hoffmann et al. 2022, Sec. 3.3.
_R_GRID = np.exp(np.linspace(math.log(1.0), math.log(100.0), 4))


@dataclasses.dataclass(frozen=True)
class DCRuns:
  """Runs for the data-constrained fit: N, D, unique tokens U, loss."""
  N: np.ndarray
  D: np.ndarray
  U: np.ndarray
  loss: np.ndarray
  source: str

  @property
  def epochs(self) -> np.ndarray:
    return self.D / self.U


@dataclasses.dataclass(frozen=True)
class DCFit:
  """A fitted data-constrained law.

  Attributes:
    law: the law (laws.Law with R_N*, R_D*).
    objective: the stage-2 Huber sum at the solution.
    rmse_log: root mean square of log L_hat - log L over all runs.
    n_points, n_repeated, n_excess_params: runs; runs with epochs > 1; runs
      with N above the Chinchilla-optimal N of their unique tokens.
    R_N_identified: False when R_N* is the published value (no run had
      excess parameters).
    base: where E, A, B, alpha, beta came from.
  """
  law: laws_lib.Law
  objective: float
  rmse_log: float
  n_points: int
  n_repeated: int
  n_excess_params: int
  R_N_identified: bool
  base: str

  def to_dict(self) -> Dict[str, Any]:
    law = self.law
    return {
        "kind": "data_constrained_law", "label": law.label,
        "citation": law.citation, "N_convention": law.N_convention,
        "parameters": dict(law.params, R_N_star=law.R_N_star,
                           R_D_star=law.R_D_star),
        "objective": self.objective, "rmse_log": self.rmse_log,
        "n_points": self.n_points, "n_repeated": self.n_repeated,
        "n_excess_params": self.n_excess_params,
        "R_N_identified": self.R_N_identified, "base": self.base,
        "procedure": ("stage 1: E, A, B, alpha, beta from " + self.base +
                      "; stage 2: R_N*, R_D* by L-BFGS-B on sum Huber_1e-3("
                      "log L_hat - log L) from a 4x4 grid"),
        "source": law.source}


def published_law() -> laws_lib.Law:
  """The default law: Muennighoff et al. 2023's published fit."""
  return laws_lib.published("muennighoff2023")


def _check(runs: DCRuns) -> None:
  for name in ("N", "D", "U", "loss"):
    v = getattr(runs, name)
    if v.size == 0 or not np.all(np.isfinite(v) & (v > 0)):
      raise AllocationError(f"{runs.source}: {name} must be positive and "
                            "finite on every run")
  if not (runs.N.shape == runs.D.shape == runs.U.shape == runs.loss.shape):
    raise AllocationError("N, D, U and loss must have the same length")


def _objective(theta, P, runs: DCRuns):
  P = dict(P, R_N_star=math.exp(theta[0]), R_D_star=math.exp(theta[1]))
  L = data_constrained._loss(P, runs.N, runs.D, np.minimum(runs.U, runs.D))  # pylint: disable=protected-access
  return float(np.sum(huber(HUBER_DELTA, np.log(L) - np.log(runs.loss))))


def fit_data_constrained(runs: DCRuns, base: Optional[laws_lib.Law] = None,
                         *, method: str = "grid_lbfgs",
                         stage1: Optional[Dict[str, Any]] = None) -> DCFit:
  """Fits R_N*, R_D* (and, without ``base``, E, A, B, alpha, beta).

  stage1: extra keyword options of ``fit_parametric`` (e.g. a coarser grid).
  """
  _check(runs)
  repeated = runs.D > runs.U * (1 + 1e-9)
  if not repeated.any():
    raise AllocationError(
        f"{runs.source}: no run repeats data (every epochs <= 1): R_D* "
        "cannot be fitted; use the published law (--law=muennighoff2023)")
  if base is None:
    one = ~repeated
    try:
      p = parametric.fit_parametric(runs.N[one], runs.D[one], runs.loss[one],
                                    method=method, **(stage1 or {}))
    except parametric.ParametricFitError as e:
      raise AllocationError(
          f"stage 1 (E, A, B, alpha, beta on the {int(one.sum())} runs that "
          f"do not repeat data): {e}; or give a base law (--base_law / "
          "--base_fit)") from None
    P = p.params
    base_text = (f"Approach 3 ({p.method}) on the {int(one.sum())} "
                 "single-epoch runs")
  else:
    P = base.params
    base_text = f"{base.label} ({base.source})"
  U_eff = np.minimum(runs.U, runs.D)
  excess = runs.N > data_constrained.n_opt_for_tokens(P, U_eff)
  pub = laws_lib.MUENNIGHOFF_RAW
  best = None
  for rn in (_R_GRID if excess.any() else [pub["R_N_star"]]):
    for rd in _R_GRID:
      x0 = np.log([rn, rd])
      if excess.any():
        res = optimize.minimize(_objective, x0, args=(P, runs),
                                method="L-BFGS-B",
                                bounds=[(-5.0, 12.0), (-5.0, 12.0)])
        x, f = res.x, res.fun
      else:
        fn = lambda t: _objective([x0[0], t[0]], P, runs)
        res = optimize.minimize(fn, x0[1:], method="L-BFGS-B",
                                bounds=[(-5.0, 12.0)])
        x, f = np.array([x0[0], res.x[0]]), res.fun
      if best is None or f < best[1]:
        best = (x, float(f))
  x, f = best
  law = laws_lib.Law(
      name="data_constrained_fit",
      label=f"data-constrained law fitted to {os.path.basename(runs.source)}",
      citation=laws_lib.MUENNIGHOFF_CITATION + " (functional form)",
      source=runs.source, **{k: float(P[k]) for k in laws_lib.PARAMS},
      R_N_star=float(math.exp(x[0])), R_D_star=float(math.exp(x[1])))
  Pf = dict(law.params, R_N_star=law.R_N_star, R_D_star=law.R_D_star)
  L = data_constrained._loss(Pf, runs.N, runs.D, U_eff)  # pylint: disable=protected-access
  return DCFit(law=law, objective=f,
               rmse_log=float(np.sqrt(np.mean((np.log(L) - np.log(runs.loss))**2))),
               n_points=int(runs.N.size), n_repeated=int(repeated.sum()),
               n_excess_params=int(excess.sum()),
               R_N_identified=bool(excess.any()), base=base_text)


def load_runs(path: str) -> DCRuns:
  """Runs with unique tokens from a ledger (.jsonl: ``epochs`` = D / unique
  tokens, scaling.io.ledger_schema) or a .csv (N, D, loss and U or epochs)."""
  lower = path.lower()
  if lower.endswith(".jsonl"):
    try:
      with open(path, "rb") as f:
        recs = ledger_schema.parse(f.read(), path)
    except OSError as e:
      raise AllocationError(f"cannot read {path!r}: {e.strerror}") from None
    recs = [r for r in recs if r["status"] == "ok"]
    missing = [r["run_id"] for r in recs if not r.get("epochs")]
    if missing:
      raise AllocationError(
          f"{path}: {len(missing)} ok run(s) have no 'epochs' (D / unique "
          f"tokens), e.g. {missing[0]}: the data-constrained fit needs it")
    rows = [(r["N"], r["D"], r["D"] / r["epochs"], r["eval_loss"])
            for r in recs]
  elif lower.endswith(".csv"):
    try:
      with open(path, encoding="utf-8-sig") as f:
        recs = list(csv.DictReader(f))
    except OSError as e:
      raise AllocationError(f"cannot read {path!r}: {e.strerror}") from None
    if not recs:
      raise AllocationError(f"{path}: no rows")
    cols = {k.strip().lower(): k for k in recs[0]}
    need = [c for c in ("n", "d", "loss") if c not in cols]
    u_col = next((cols[c] for c in ("u", "unique_tokens") if c in cols), None)
    if need or (u_col is None and "epochs" not in cols):
      raise AllocationError(f"{path}: needs columns N, D, loss and U (or "
                            f"unique_tokens, or epochs); has "
                            f"{', '.join(recs[0])}")
    try:
      rows = [(float(r[cols["n"]]), float(r[cols["d"]]),
               float(r[u_col]) if u_col else
               float(r[cols["d"]]) / float(r[cols["epochs"]]),
               float(r[cols["loss"]])) for r in recs]
    except (TypeError, ValueError, ZeroDivisionError) as e:
      raise AllocationError(f"{path}: a value is not a number ({e})") from None
  else:
    raise AllocationError(f"--input={path!r}: give a ledger (.jsonl) or a "
                          ".csv")
  if not rows:
    raise AllocationError(f"{path}: no finished runs")
  a = np.asarray(rows, np.float64)
  runs = DCRuns(N=a[:, 0], D=a[:, 1], U=a[:, 2], loss=a[:, 3],
                source=os.path.abspath(path))
  _check(runs)
  return runs


def write(fit: DCFit, path: str) -> str:
  return output.write_json(fit.to_dict(), path)


def read(path: str) -> laws_lib.Law:
  return laws_lib.from_law_file(path)


def dumps(fit: DCFit) -> str:
  return json.dumps(fit.to_dict(), indent=2)
