"""The laws an allocation is computed from: published ones and fit.json entries.

A :class:`Law` is L(N, D) = E + A/N^alpha + B/D^beta (Hoffmann et al. 2022,
Eq. 2), optionally with the data-constrained decay constants R_N*, R_D*
(Muennighoff et al. 2023) and bootstrap ``replicates`` of its parameters.
A :class:`PowerLaw` is N* = k_N C^a, D* = k_D C^b (Approaches 1 and 2),
which answers only the ``--C`` question.

Published laws (``PUBLISHED``; one entry each, with citation):

* ``chinchilla``: Hoffmann et al. 2022, Eq. 10 as printed (E=1.69,
  A=406.4, B=410.7, alpha=0.34, beta=0.28), from
  ``scaling/datasets/hoffmann2022_approach3_parametric_params.csv``.
* ``chinchilla_tex``: the unrounded TeX values (anchors.json).
* ``epoch``: Besiroglu et al. 2024's headline refit (Huber likelihood),
  from the same CSV (row ``besiroglu2024_mle_huber_likelihood``).
* ``muennighoff2023``: the data-constrained law's published fit
  (huggingface/datablations README, Apache-2.0).

Laws without R_N*, R_D* get Muennighoff's published values when a
data-constrained question is asked (recorded in the provenance).
"""
from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np

from scaling.io import loaders as data_lib
from scaling.report import fit_schema
from scaling.allocation.errors import AllocationError

PARAMS = ("E", "A", "B", "alpha", "beta")
C_CONVENTION = "C = 6ND (Hoffmann et al. 2022, Sec. 3.3; Kaplan et al. 2020, Sec. 2.1)"

# Muennighoff et al. 2023, huggingface/datablations README "Parametric Fit":
# a, b, e, alpha, beta, rd_star, rn_star (A, B, E = exp of a, b, e).
MUENNIGHOFF_RAW = dict(a=6.255414, b=7.3049974, e=0.6254804, alpha=0.3526596,
                       beta=0.3526596, R_D_star=15.387756, R_N_star=5.309743)
MUENNIGHOFF_CITATION = (
    "Muennighoff et al. 2023, 'Scaling Data-Constrained Language Models', "
    "NeurIPS 2023, arXiv:2305.16264; parameters from huggingface/datablations "
    "README 'Parametric Fit' (Apache-2.0)")


@dataclasses.dataclass(frozen=True)
class Law:
  """L(N, D) = E + A/N^alpha + B/D^beta [+ data-constrained R_N*, R_D*].

  Attributes:
    name: registry key or 'fit.json:<method>'.
    label, citation, source: what the law is, who published it, where the
      numbers were read (file and row, or fit.json path).
    E, A, B, alpha, beta: Hoffmann et al. 2022, Eq. 2.
    R_N_star, R_D_star: Muennighoff et al. 2023's decay constants (None:
      the law has none of its own).
    replicates: bootstrap draws {'E', 'A', ...: (S,) arrays} or None.
    percentiles: (lo, hi) percentiles of intervals from the replicates.
    interval_procedure: how the replicates were made (None without).
    N_convention: how N is counted (e.g. 'total').
  """
  name: str
  label: str
  citation: str
  source: str
  E: float
  A: float
  B: float
  alpha: float
  beta: float
  R_N_star: Optional[float] = None
  R_D_star: Optional[float] = None
  replicates: Optional[Dict[str, np.ndarray]] = None
  percentiles: Tuple[float, float] = (2.5, 97.5)
  interval_procedure: Optional[str] = None
  N_convention: str = "total"
  C_convention: str = C_CONVENTION

  @property
  def params(self) -> Dict[str, float]:
    return {k: getattr(self, k) for k in PARAMS}

  @property
  def has_dc(self) -> bool:
    return self.R_N_star is not None and self.R_D_star is not None

  def with_dc_defaults(self) -> "Law":
    """This law with Muennighoff's published R_N*, R_D* where it has none."""
    if self.has_dc:
      return self
    return dataclasses.replace(self, R_N_star=MUENNIGHOFF_RAW["R_N_star"],
                               R_D_star=MUENNIGHOFF_RAW["R_D_star"])

  def provenance(self) -> Dict[str, Any]:
    d = {"law": self.name, "label": self.label, "citation": self.citation,
         "source": self.source, "parameters": self.params,
         "N_convention": self.N_convention, "C_convention": self.C_convention,
         "interval_procedure": self.interval_procedure,
         "n_replicates": (0 if self.replicates is None
                          else int(self.replicates["E"].size))}
    if self.has_dc:
      d["parameters"] = dict(d["parameters"], R_N_star=self.R_N_star,
                             R_D_star=self.R_D_star)
    return d


@dataclasses.dataclass(frozen=True)
class PowerLaw:
  """N* = k_N C^a, D* = k_D C^b (Approaches 1 and 2) with its replicates."""
  name: str
  label: str
  citation: str
  source: str
  a: float
  k_N: float
  b: float
  k_D: float
  replicates: Optional[Dict[str, np.ndarray]] = None   # a, log_k_N, b, log_k_D
  percentiles: Tuple[float, float] = (2.5, 97.5)
  interval_procedure: Optional[str] = None
  N_convention: str = "total"
  C_convention: str = C_CONVENTION

  def provenance(self) -> Dict[str, Any]:
    return {"law": self.name, "label": self.label, "citation": self.citation,
            "source": self.source,
            "parameters": dict(a=self.a, k_N=self.k_N, b=self.b, k_D=self.k_D),
            "N_convention": self.N_convention,
            "C_convention": self.C_convention,
            "interval_procedure": self.interval_procedure,
            "n_replicates": (0 if self.replicates is None
                             else int(self.replicates["a"].size))}


# ----------------------------------------------------------------------------
# Published laws.

def _csv_row(source: str) -> Dict[str, str]:
  fname = "hoffmann2022_approach3_parametric_params.csv"
  path = os.path.join(data_lib.DATASETS_DIR, fname)
  with open(path, encoding="utf-8") as f:
    for row in csv.DictReader(f):
      if row["source"] == source:
        return row
  raise AllocationError(f"{fname} has no row {source!r}")


def _from_csv(name, row_name, label, citation) -> Law:
  r = _csv_row(row_name)
  return Law(name=name, label=label, citation=citation,
             source=f"scaling/datasets/hoffmann2022_approach3_parametric_"
                    f"params.csv, row {row_name}",
             **{k: float(r[k]) for k in PARAMS})


def _chinchilla() -> Law:
  return _from_csv("chinchilla", "hoffmann2022_eq10_rounded",
                   "Chinchilla Approach 3 (Eq. 10 as printed)",
                   "Hoffmann et al. 2022, arXiv:2203.15556, Sec. 3.3 / Eq. 10")


def _chinchilla_tex() -> Law:
  path = os.path.join(data_lib.DATASETS_DIR, "anchors.json")
  with open(path, encoding="utf-8") as f:
    p = json.load(f)["hoffmann2022_chinchilla"]["approach3_params_unrounded_tex"]
  return Law(name="chinchilla_tex",
             label="Chinchilla Approach 3 (unrounded TeX values)",
             citation="Hoffmann et al. 2022, arXiv:2203.15556 (TeX source), "
                      "as used by Besiroglu et al. 2024",
             source="scaling/datasets/anchors.json, hoffmann2022_chinchilla."
                    "approach3_params_unrounded_tex",
             E=math.exp(p["log_E"]), A=math.exp(p["log_A"]),
             B=math.exp(p["log_B"]), alpha=p["alpha"], beta=p["beta"])


def _epoch() -> Law:
  return _from_csv("epoch", "besiroglu2024_mle_huber_likelihood",
                   "Epoch refit of Chinchilla (Huber likelihood, 240 points)",
                   "Besiroglu, Erdil, Barnett & You 2024, 'Chinchilla Scaling: "
                   "A replication attempt', arXiv:2404.10102")


def _muennighoff() -> Law:
  m = MUENNIGHOFF_RAW
  return Law(name="muennighoff2023",
             label="data-constrained scaling law (Muennighoff et al. 2023)",
             citation=MUENNIGHOFF_CITATION,
             source="huggingface/datablations README (published parameters)",
             E=math.exp(m["e"]), A=math.exp(m["a"]), B=math.exp(m["b"]),
             alpha=m["alpha"], beta=m["beta"], R_N_star=m["R_N_star"],
             R_D_star=m["R_D_star"])


PUBLISHED: Dict[str, Callable[[], Law]] = {
    "chinchilla": _chinchilla, "chinchilla_tex": _chinchilla_tex,
    "epoch": _epoch, "muennighoff2023": _muennighoff,
}


def published(name: str) -> Law:
  if name not in PUBLISHED:
    raise AllocationError(f"unknown --law {name!r} (valid: "
                          f"{', '.join(PUBLISHED)}, or a law .json written "
                          "by scaling.allocation.fit_data_constrained)")
  return PUBLISHED[name]()


# ----------------------------------------------------------------------------
# fit.json and law files.

FAMILY_ORDER = ("approach3", "approach2", "approach1")


def _replicates(entry, keys) -> Tuple[Optional[Dict[str, np.ndarray]], Tuple]:
  rep = entry.get("replicates") or {}
  draws = rep.get("draws") or {}
  if not all(k in draws for k in keys):
    return None, (2.5, 97.5)
  arr = {k: np.asarray([np.nan if v is None else v for v in draws[k]],
                       np.float64) for k in keys}
  ok = np.all([np.isfinite(v) for v in arr.values()], axis=0)
  if not ok.any():
    return None, (2.5, 97.5)
  return ({k: v[ok] for k, v in arr.items()},
          tuple(float(p) for p in rep.get("percentiles", (2.5, 97.5))))


def from_fit(path: str, family: Optional[str] = None, need_loss: bool = False):
  """The law of a fit.json: its Approach-3 entry (Law) or, when only N*(C)
  is needed, Approach 2 or 1 (PowerLaw).

  Args:
    path: fit.json written by scaling.fit / experiments.analyze.
    family: 'approach3', 'approach2' or 'approach1' (default: the first of
      those present; approach3 when ``need_loss``).
    need_loss: the question needs L(N, D) (data-constrained, inference,
      loss queries): only Approach 3 will do.
  """
  try:
    result = fit_schema.read(path)
  except fit_schema.FitFileError as e:
    raise AllocationError(str(e)) from None
  present = [f for f in FAMILY_ORDER if fit_schema.primary(result, f)]
  if family is None:
    family = "approach3" if need_loss else (present[0] if present else None)
  if family not in FAMILY_ORDER:
    raise AllocationError(f"--family must be one of {', '.join(FAMILY_ORDER)}, "
                          f"got {family!r}")
  if need_loss and family != "approach3":
    raise AllocationError(f"this question needs L(N, D) (Approach 3); "
                          f"--family={family} gives only N*(C)")
  entry = fit_schema.primary(result, family)
  if entry is None:
    have = ", ".join(present) or "none of approach1/2/3"
    raise AllocationError(
        f"{path} has no {family} fit (it has {have}); "
        + ("refit with --approach=3 (python -m scaling.fit ... --approach=2,3)"
           if family == "approach3" else f"choose --family among {have}"))
  conv = fit_schema.conventions(result)
  N_conv = conv.get("param_convention") or "not recorded"
  C_conv = (f"C under the fit's convention "
            f"{conv.get('flop_convention') or 'not recorded'}")
  if family == "approach3":
    reps, pct = _replicates(entry, PARAMS)
    fpt = conv.get("flops_per_token") or {}
    ratio = fpt.get("F_over_6N_range") or [1.0, 1.0]
    six_n = (fpt.get("rule") in (None, "six_n")
             or max(abs(r - 1.0) for r in ratio) < 1e-6)
    C_conv = C_CONVENTION if six_n else (
        C_CONVENTION + f"; the fit's own C convention is "
        f"{conv.get('flop_convention')} (F(N) rule {fpt.get('rule')}): budgets here are "
        "6ND, not that convention")
    return Law(name=f"fit.json:{entry.get('method', family)}",
               label=entry.get("label", family),
               citation=entry.get("citation", ""), source=os.path.abspath(path),
               E=float(entry["E"]), A=float(entry["A"]), B=float(entry["B"]),
               alpha=float(entry["alpha"]), beta=float(entry["beta"]),
               replicates=reps, percentiles=pct,
               interval_procedure=(entry.get("interval_procedure")
                                   if reps is not None else None),
               N_convention=N_conv, C_convention=C_conv)
  reps, pct = _replicates(entry, ("a", "log_k_N", "b", "log_k_D"))
  return PowerLaw(name=f"fit.json:{entry.get('method', family)}",
                  label=entry.get("label", family),
                  citation=entry.get("citation", ""),
                  source=os.path.abspath(path), a=float(entry["a"]),
                  k_N=float(entry["k_N"]), b=float(entry["b"]),
                  k_D=float(entry["k_D"]), replicates=reps, percentiles=pct,
                  interval_procedure=(entry.get("interval_procedure")
                                      if reps is not None else None),
                  N_convention=N_conv, C_convention=C_conv)


def from_law_file(path: str) -> Law:
  """A law .json written by ``scaling.allocation.fit_data_constrained``."""
  try:
    with open(os.path.expanduser(path), encoding="utf-8") as f:
      d = json.load(f)
  except (OSError, json.JSONDecodeError) as e:
    raise AllocationError(f"cannot read law file {path!r} ({e})") from None
  if not isinstance(d, dict) or d.get("kind") != "data_constrained_law":
    raise AllocationError(f"{path}: not a law file (kind "
                          "'data_constrained_law', written by python -m "
                          "scaling.allocation.fit_data_constrained)")
  p = d["parameters"]
  return Law(name=f"law:{os.path.basename(path)}", label=d["label"],
             citation=d["citation"], source=os.path.abspath(path),
             E=p["E"], A=p["A"], B=p["B"], alpha=p["alpha"], beta=p["beta"],
             R_N_star=p["R_N_star"], R_D_star=p["R_D_star"],
             N_convention=d.get("N_convention", "not recorded"))


def resolve(law: Optional[str], fit: Optional[str], family: Optional[str],
            need_loss: bool):
  """The law named by --law / --fit (exactly one of them)."""
  if bool(law) == bool(fit):
    raise AllocationError("give exactly one of --law=<name or law .json> "
                          f"({', '.join(PUBLISHED)}) and --fit=<fit.json>")
  if fit:
    return from_fit(fit, family, need_loss)
  if family:
    raise AllocationError("--family applies to --fit only")
  if law.endswith(".json"):
    return from_law_file(law)
  return published(law)
