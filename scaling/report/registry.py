"""The fit-method registry: every fit ``scaling.report.analysis`` runs is one entry.

A method is a small frozen object (``FitMethod``): a registry ``key``
(``approach2.akima``), the ``family`` it belongs to (the fit.json slot:
approach1/2/3, loss_vs_compute, powerlaw), a ``label`` and a ``citation``,
what it ``needs`` (final-loss runs or training curves) and a ``fit``
function. ``fit(inputs, options)`` returns a *result* with

  predict(C)   -> {'N_opt', 'D_opt', 'tokens_per_param'[, 'loss']} at budgets C
                  (families that predict something else say so in ``predicts``)
  interval(C)  -> the same keys as (lo, hi) bands, or None
  interval_procedure  str naming how its intervals were made, or None
  quantities() -> [(name, value, (lo, hi) or None)] for the tables
  to_dict()    -> the method-specific part of its fit.json entry
  plot(ctx)    -> PNG file names it wrote (optional)

``scaling.report.analysis`` iterates over the selected methods and never calls into
an approach directly; adding an estimator or an approach is one
``register`` call in its family's folder. This module imports no family:
``scaling.report.families`` imports every family folder (one line each), so
that their ``register`` calls have run.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from scaling.io.loaders import ScalingDataError


@dataclasses.dataclass(frozen=True)
class FitInputs:
  """Everything a method may use; built once by scaling.report.analysis."""
  runs: Any                      # scaling.io.loaders.Runs or None
  curves: Any                    # scaling.io.curves.Curves or None
  budgets: Tuple[float, ...]
  bootstrap: int
  seed: int
  flops_per_token: Any           # scaling.numerics.token_flops.TokenFlops or None
  table: Optional[Dict[str, np.ndarray]] = None   # columns (powerlaw family)
  # Primary results of the families fitted before this one (fit.json order:
  # approach1, approach2, approach3, loss_vs_compute, powerlaw), e.g. a
  # loss-vs-compute method reads previous['approach2'].fit.minima.
  previous: Dict[str, Any] = dataclasses.field(default_factory=dict)


class MethodSkipped(Exception):
  """Raised by a method that does not apply to this input (the report warns
  and goes on: e.g. the loss-vs-compute fit on fewer than 3 budgets)."""


@dataclasses.dataclass(frozen=True)
class FitMethod:
  key: str
  family: str
  label: str
  citation: str
  needs: str                     # 'runs' | 'curves' | 'table'
  fit: Callable[[FitInputs, Dict[str, Any]], Any]
  default: bool = False          # the family's default method
  predicts: str = "compute_optimal"   # or 'loss' (L* at budgets C), 'y'
  order: int = 0                 # display order within its family


METHODS: Dict[str, FitMethod] = {}


def register(method: FitMethod) -> FitMethod:
  """Adds a method; a key may be registered once."""
  if method.key in METHODS:
    raise ValueError(f"fit method {method.key!r} registered twice")
  METHODS[method.key] = method
  return method


def get(key: str) -> FitMethod:
  if key not in METHODS:
    raise ScalingDataError(f"unknown fit method {key!r} (valid: "
                           f"{', '.join(METHODS)})")
  return METHODS[key]


def family_methods(family: str) -> List[FitMethod]:
  return sorted((m for m in METHODS.values() if m.family == family),
                key=lambda m: (not m.default, m.order, m.key))


def default_method(family: str) -> FitMethod:
  ms = [m for m in family_methods(family) if m.default]
  if len(ms) != 1:
    raise ValueError(f"family {family!r} needs exactly one default method")
  return ms[0]


def resolve(family: str, choice: Optional[str]) -> Tuple[List[FitMethod], FitMethod]:
  """Methods to fit for a family and its primary one.

  ``choice`` is None (the default), a method name within the family (the
  part after the dot, e.g. 'akima') or 'all' (every method; the default is
  primary).
  """
  if choice in (None, ""):
    m = default_method(family)
    return [m], m
  if choice == "all":
    return family_methods(family), default_method(family)
  key = f"{family}.{choice}" if "." not in choice else choice
  if key not in METHODS or METHODS[key].family != family:
    names = [m.key.split(".", 1)[-1] for m in family_methods(family)]
    raise ScalingDataError(f"unknown {family} method {choice!r} (valid: "
                           f"{', '.join(names)}, all)")
  return [METHODS[key]], METHODS[key]


def approach2_minima(inputs: FitInputs, min_budgets: int):
  """(Approach-2 result, C, L*) of the per-budget minima a loss-vs-compute
  method fits; MethodSkipped without Approach 2 or with too few budgets."""
  a2 = inputs.previous.get("approach2")
  if a2 is None:
    raise MethodSkipped("needs Approach 2's per-budget minima")
  minima = a2.fit.minima
  if len(minima) < min_budgets:
    raise MethodSkipped(
        f"needs >= {min_budgets} Approach-2 budgets, has {len(minima)}")
  return (a2, np.array([m["C"] for m in minima]),
          np.array([m["L_opt"] for m in minima]))


def bootstrap_counts(requested: int, ok: int) -> Dict[str, int]:
  """Bootstrap replicates asked for, used and discarded (fit.json keys)."""
  return dict(n_bootstrap_requested=int(requested), n_bootstrap_ok=int(ok),
              n_bootstrap_failed=int(requested) - int(ok))


def resampled_counts(fit) -> Dict[str, int]:
  """bootstrap_counts of a fit with n_bootstrap, n_failed and samples."""
  ok = fit.n_bootstrap - fit.n_failed if fit.samples else 0
  return bootstrap_counts(fit.n_bootstrap, ok)


class PowerLawResult:
  """predict / interval / quantities of fits with N* = k_N C^a, D* ~ k_D C^b.

  Mixed into the results of Approaches 1 and 2, whose ``fit`` has
  ``predict``, ``predict_ci``, ``ci`` and bootstrap ``samples``.
  """

  def predict(self, C):
    return self.fit.predict(C)

  def interval(self, C):
    return self.fit.predict_ci(C) if self.fit.samples["a"].size else None

  def quantities(self):
    ci = self.fit.ci
    return [(n, getattr(self.fit, n), ci.get(n)) for n in ("a", "b", "k_N", "k_D")]

  def counts(self, requested: int) -> Dict[str, int]:
    return bootstrap_counts(requested, self.fit.samples["a"].size)


def optimal_rows(pred: Dict[str, np.ndarray], budgets: Sequence[float],
                 band: Optional[Dict[str, Tuple]] = None) -> Dict[str, Any]:
  """compute_optimal rows of a fit.json entry, keyed by budget '%.3g'."""
  rows = {}
  for i, C in enumerate(budgets):
    row = {"C": float(C)}
    for k in ("N_opt", "D_opt", "tokens_per_param", "loss"):
      if k in pred:
        row[k] = float(np.asarray(pred[k])[i])
      if band and k in band:
        row[f"{k}_ci"] = [float(band[k][0][i]), float(band[k][1][i])]
    rows[f"{C:.3g}"] = row
  return rows


@dataclasses.dataclass(frozen=True)
class CheckContext:
  """What a check sees: the pass's inputs and its fitted families."""
  runs: Any
  """scaling.io.types.Runs (final losses) or None."""
  families: Tuple[str, ...]
  """Families the pass was asked to fit."""
  choices: Dict[str, Optional[str]]
  """Method choice per family (e.g. {'approach2': 'akima'})."""
  options: Dict[str, Dict[str, Any]]
  """Options per family name (as FitMethod.fit takes them)."""
  bootstrap: int
  """Bootstrap replicates of the pass."""
  seed: int
  """Bootstrap seed of the pass."""
  flops_per_token: Any
  """F(N) of the runs' convention (scaling.numerics.token_flops.TokenFlops)."""
  fitted: Dict[str, Any]
  """Primary result of every family that was fitted, by family."""


@dataclasses.dataclass(frozen=True)
class Check:
  """A check the analysis pass runs after fitting the families.

  Its record is stored under ``key`` in fit.json (``scaling.report.
  fit_schema``); ``plot`` (optional) draws it into the report directory.
  """
  key: str
  """fit.json key of its record, e.g. 'extrapolation'."""
  label: str
  """One line saying what it checks."""
  run: Callable[[CheckContext], Dict[str, Any]]
  """Runs the check, returning its fit.json record."""
  skipped: Callable[[str], Dict[str, Any]]
  """The record of a check not run, with the one-line reason."""
  plot: Optional[Callable[[Dict[str, Any], str], Optional[str]]] = None
  """(record, out_dir) -> the file name it wrote, or None."""
  summary: Optional[Callable[[Optional[Dict[str, Any]]], List[str]]] = None
  """record (None: absent) -> its printed summary lines."""


CHECKS: Dict[str, Check] = {}


def register_check(check: Check) -> Check:
  """Adds a check; a key may be registered once."""
  if check.key in CHECKS:
    raise ValueError(f"check {check.key!r} registered twice")
  CHECKS[check.key] = check
  return check


@dataclasses.dataclass(frozen=True)
class Summary:
  """A family's lines in the printed summary (scaling.report.summary)."""
  family: str
  """The fit.json slot it summarises."""
  order: int
  """Position among the families' summaries (smaller first)."""
  lines: Callable[[Dict[str, Any]], List[str]]
  """fit.json (the whole file: alternatives too) -> lines; called only when
  the family has a primary entry."""


SUMMARIES: Dict[str, Summary] = {}


def register_summary(summary: Summary) -> Summary:
  """Adds a family's summary; one per family."""
  if summary.family in SUMMARIES:
    raise ValueError(f"summary of {summary.family!r} registered twice")
  SUMMARIES[summary.family] = summary
  return summary
