"""fit.json, the output of ``scaling.report.analysis.run_fit``: one schema for writers and readers.

``schema_version`` 2 (documented field by field in docs/ledger.md):

  schema_version  2
  budgets         FLOP budgets (under ``conventions.flop_convention``) at which
                  every method reports compute_optimal rows
  conventions     flop_convention (of C), param_convention (of N, null when
                  the input does not say), flops_per_token (F(N) used for
                  F(N) D = C: rule and label, see scaling.numerics.token_flops)
  approach1, approach2, approach3, loss_vs_compute, powerlaw, hparams
                  the primary fit of each family present (an *entry*;
                  hparams: docs/hparams.md)
  alternatives    {method key: entry} for every other fit (e.g. the other
                  Approach-2 estimators with --isoflop_estimator=all)
  extrapolation   (experiments.analyze) the extrapolation check: fit on every
                  budget but the largest, predict its N*, D*, L* with
                  intervals against the measured ones (record:
                  ``scaling.approach2.extrapolation.ExtrapolationCheck``; status
                  'done' or 'skipped' with a reason)
  warnings        every warning raised during the fit
  plots           PNG names written next to fit.json
  provenance      command_line, date_utc, versions, seed, bootstrap, input,
                  curves

Every entry carries ``method`` (registry key, e.g. ``approach2.akima``),
``family``, ``label``, ``citation``, ``default`` (whether it is its family's
registry default), ``interval_procedure`` (names how its intervals were
made; ``null`` without intervals), its method-specific numbers (with
``ci``) and, for compute-optimal families, ``compute_optimal`` keyed by
budget ``"%.3g"`` (C, N_opt, D_opt, tokens_per_param, optional loss, and
``*_ci`` intervals). An entry with bootstrap draws also carries
``replicates`` (``scaling.allocation.replicates``): ``draws`` ({name: one
value per replicate}; Approach 3: E, A, B, alpha, beta; Approaches 1/2: a,
log_k_N, b, log_k_D) and their ``percentiles`` [lo, hi], which
``scaling.allocate`` re-solves its questions on; absent without a bootstrap.

Version 1 files (no ``schema_version``) are read with their conventions
taken from ``provenance.input``.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, Iterator, Optional, Tuple

import numpy as np

from lm import safe_io  # stdlib-only: atomic writes, never through a link

SCHEMA_VERSION = 2
FAMILIES = ("approach1", "approach2", "approach3", "loss_vs_compute",
            "powerlaw", "hparams", "loss_curve")
ENTRY_KEYS = ("method", "family", "label", "citation", "default",
              "interval_procedure")
EXTRAPOLATION_KEYS = ("status", "reason", "n_budgets", "held_out_C",
                      "procedure", "N_opt", "D_opt", "L_opt")


class FitFileError(ValueError):
  """A fit.json that cannot be read; the message is one actionable line."""


def jsonable(x):
  """Strict-JSON copy: numpy scalars/arrays to Python, non-finite to None."""
  if isinstance(x, dict):
    return {str(k): jsonable(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [jsonable(v) for v in x]
  if isinstance(x, np.ndarray):
    return jsonable(x.tolist())
  if isinstance(x, (np.floating, float)):
    return float(x) if np.isfinite(x) else None
  if isinstance(x, np.integer):
    return int(x)
  if isinstance(x, np.bool_):
    return bool(x)
  return x


def new(budgets, conventions: Dict[str, Any]) -> Dict[str, Any]:
  return {"schema_version": SCHEMA_VERSION,
          "budgets": [float(b) for b in budgets],
          "conventions": dict(conventions), "alternatives": {}}


def add_entry(result: Dict[str, Any], entry: Dict[str, Any],
              primary: bool) -> None:
  """Stores ``entry`` as its family's primary fit or as an alternative."""
  missing = [k for k in ENTRY_KEYS if k not in entry]
  if missing or entry["family"] not in FAMILIES:
    raise ValueError(f"fit.json entry lacks {missing} or has an unknown "
                     f"family {entry.get('family')!r}")
  if primary:
    if entry["family"] in result:
      raise ValueError(f"two primary fits for {entry['family']}")
    result[entry["family"]] = entry
  else:
    result.setdefault("alternatives", {})[entry["method"]] = entry


def set_extrapolation(result: Dict[str, Any], record: Dict[str, Any]) -> None:
  """Stores the extrapolation check's record (``ExtrapolationCheck.to_dict``)."""
  missing = [k for k in EXTRAPOLATION_KEYS if k not in record]
  if missing or record["status"] not in ("done", "skipped"):
    raise ValueError(f"extrapolation record lacks {missing} or has status "
                     f"{record.get('status')!r}")
  result["extrapolation"] = jsonable(record)


def set_check(result: Dict[str, Any], key: str, record: Dict[str, Any]) -> None:
  """Stores a registered check's record under its key (validated when the
  schema knows the check)."""
  if key == "extrapolation":
    set_extrapolation(result, record)
  else:
    result[key] = jsonable(record)


def extrapolation(result: Dict[str, Any]) -> Optional[Dict[str, Any]]:
  """The extrapolation check's record, or None (files without one)."""
  return result.get("extrapolation") or None


def entries(result: Dict[str, Any]) -> Iterator[Tuple[str, Dict[str, Any]]]:
  """(method key, entry) of every fit: primaries first, then alternatives."""
  for fam in FAMILIES:
    if result.get(fam):
      yield result[fam].get("method", fam), result[fam]
  for key, entry in (result.get("alternatives") or {}).items():
    yield key, entry


def conventions(result: Dict[str, Any]) -> Dict[str, Any]:
  """The conventions of C and N (also for version-1 files)."""
  if "conventions" in result:
    return dict(result["conventions"])
  inp = (result.get("provenance") or {}).get("input") or {}
  return {"flop_convention": inp.get("flop_convention"),
          "param_convention": inp.get("param_convention"),
          "flops_per_token": None}


def write(result: Dict[str, Any], path: str) -> None:
  safe_io.atomic_write_json(path, jsonable(result), allow_nan=False)


def read(path: str) -> Dict[str, Any]:
  """Reads and checks a fit.json (versions 1 and 2)."""
  path = os.path.expanduser(path)
  try:
    with open(path) as f:
      result = json.load(f)
  except (OSError, json.JSONDecodeError) as e:
    raise FitFileError(f"cannot read fit.json {path!r} ({e})") from None
  if not isinstance(result, dict):
    raise FitFileError(f"{path}: not a fit.json object")
  version = result.get("schema_version", 1)
  if version not in (1, SCHEMA_VERSION):
    raise FitFileError(f"{path}: schema_version {version!r} is not supported "
                       f"(1 or {SCHEMA_VERSION})")
  return result


def primary(result: Dict[str, Any], family: str) -> Optional[Dict[str, Any]]:
  return result.get(family) or None
