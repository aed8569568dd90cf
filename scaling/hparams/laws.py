"""Learning-rate and batch laws usable by name, or read from a fit.json.

A ``HparamLaw`` predicts the peak learning rate and the batch (tokens per
step) of a run from N, D (Step Law's form) and/or C (DeepSeek LLM's form),
and names the conventions its N and C are counted under. Built-ins
(``PUBLISHED``):

* ``steplaw2025`` -- Li et al. 2025, "Predictable Scale: Part I -- Optimal
  Hyperparameter Scaling Law in LLM Pretraining" (Step Law),
  arXiv:2503.04715: eta = 1.7973 N^-0.7129 D^0.3075, B = 0.5807 D^0.5709
  tokens (the mean of their 1000 bootstrap fits); N = non-embedding
  parameters, D = training tokens. Their example N = 7e9, D = 1.4e12 gives
  eta = 9.35e-4 and B = 5.0e6 tokens.
* ``deepseek2024`` -- Bi et al. 2024, "DeepSeek LLM", arXiv:2401.02954,
  Sec. 3.1, Eq. 1: eta_opt = 0.3118 C^-0.1250, B_opt = 0.2920 C^0.3271
  tokens, with C = M D FLOPs and M = non-embedding FLOPs per token
  including causal attention (their Eq. 2, 72 n_layer d_model^2 + 6 n_layer
  d_model l_seq for their blocks; in general 6 N_non-embedding + 6 n_layer
  d_model l_seq): the convention ``deepseek_M``.

``from_fit(path)`` turns the ``hparams`` entry of a fit.json
(``python -m scaling.fit --approach=hparams``) into a law under the
conventions that fit.json records.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, Optional, Tuple

import numpy as np

from scaling.io.types import ScalingDataError
from scaling.report import fit_schema

FORMS = ("auto", "N_D", "C")
# FLOP conventions of law C's that are not keys of lm.flops.CONVENTIONS.
LAW_FLOP_CONVENTIONS = {
    "deepseek_M": "C = M D, M = non-embedding FLOPs per token incl. causal "
                  "attention: 6 N_non-embedding + 6 n_layer d_model l_seq "
                  "(Bi et al. 2024, DeepSeek LLM, Eq. 2)",
}


@dataclasses.dataclass(frozen=True)
class HparamLaw:
  """eta*(N, D) = c N^alpha D^beta, B*(D) = k D^gamma and/or eta*(C), B*(C).

  Attributes:
    name: registry name or the fit.json path it came from.
    citation: where the numbers come from.
    lr_ND: (c, alpha, beta) or None.
    batch_D: (k, gamma), batch in tokens, or None.
    lr_C: (k, e) or None; batch_C: (k, e), tokens, or None.
    param_convention: how N is counted (lm.params key; None: not recorded).
    flop_convention: how C is counted (lm.flops key or LAW_FLOP_CONVENTIONS;
      None: no C form).
  """
  name: str
  citation: str
  lr_ND: Optional[Tuple[float, float, float]] = None
  batch_D: Optional[Tuple[float, float]] = None
  lr_C: Optional[Tuple[float, float]] = None
  batch_C: Optional[Tuple[float, float]] = None
  param_convention: Optional[str] = None
  flop_convention: Optional[str] = None

  def _form(self, form: str, nd, c) -> str:
    if form not in FORMS:
      raise ScalingDataError(f"law form must be one of {FORMS}, got {form!r}")
    if form == "auto":
      form = "N_D" if nd is not None else "C"
    if (nd if form == "N_D" else c) is None:
      raise ScalingDataError(f"law {self.name!r} has no {form} form (it has: "
                             f"{', '.join(self.forms()) or 'none'})")
    return form

  def forms(self) -> Tuple[str, ...]:
    return tuple(f for f, v in (("N_D", self.lr_ND or self.batch_D),
                                ("C", self.lr_C or self.batch_C)) if v)

  def lr(self, N=None, D=None, C=None, form: str = "auto"):
    """Peak learning rate: Step Law's c N^alpha D^beta (form 'N_D') or
    DeepSeek's k C^e (form 'C'); 'auto' prefers N_D."""
    if self._form(form, self.lr_ND, self.lr_C) == "N_D":
      c, a, b = self.lr_ND
      return c * np.asarray(N, np.float64)**a * np.asarray(D, np.float64)**b
    k, e = self.lr_C
    return k * np.asarray(C, np.float64)**e

  def batch_tokens(self, D=None, C=None, form: str = "auto"):
    """Tokens per step: k D^gamma (form 'N_D') or k C^e (form 'C')."""
    if self._form(form, self.batch_D, self.batch_C) == "N_D":
      k, g = self.batch_D
      return k * np.asarray(D, np.float64)**g
    k, e = self.batch_C
    return k * np.asarray(C, np.float64)**e

  def describe(self) -> str:
    parts = []
    if self.lr_ND:
      parts.append("lr = {:.4g} N^{:.4g} D^{:.4g}".format(*self.lr_ND))
    if self.batch_D:
      parts.append("B = {:.4g} D^{:.4g} tokens".format(*self.batch_D))
    if self.lr_C:
      parts.append("lr = {:.4g} C^{:.4g}".format(*self.lr_C))
    if self.batch_C:
      parts.append("B = {:.4g} C^{:.4g} tokens".format(*self.batch_C))
    conv = (f"N as {self.param_convention or 'given'}"
            + (f", C as {self.flop_convention}" if self.flop_convention
               else ""))
    return f"{self.name}: " + "; ".join(parts) + f" ({conv}; {self.citation})"


PUBLISHED: Dict[str, HparamLaw] = {
    "steplaw2025": HparamLaw(
        name="steplaw2025",
        citation="Li et al. 2025, Step Law, arXiv:2503.04715 (mean of their "
                 "1000 bootstrap fits)",
        lr_ND=(1.7973, -0.7129, 0.3075), batch_D=(0.5807, 0.5709),
        param_convention="non_embedding"),
    "deepseek2024": HparamLaw(
        name="deepseek2024",
        citation="Bi et al. 2024, DeepSeek LLM, arXiv:2401.02954, Sec. 3.1, "
                 "Eq. 1 (C = M D, M from Eq. 2)",
        lr_C=(0.3118, -0.1250), batch_C=(0.2920, 0.3271),
        param_convention="non_embedding", flop_convention="deepseek_M"),
}


def _pair(entry: Dict[str, Any], name: str, keys) -> Optional[tuple]:
  law = (entry.get("laws") or {}).get(name)
  if not law:
    return None
  vals = (law.get("k"),) + tuple(law.get(k) for k in keys)
  ok = all(isinstance(v, (int, float)) and np.isfinite(v) for v in vals)
  return tuple(float(v) for v in vals) if ok else None


def from_entry(entry: Dict[str, Any], name: str,
               conventions: Dict[str, Any]) -> HparamLaw:
  """The law of a fit.json ``hparams`` entry (``scaling.hparams.method``)."""
  law = HparamLaw(
      name=name, citation=f"fitted ({entry.get('label', 'hparams')})",
      lr_ND=_pair(entry, "eta_ND", ("alpha", "beta")),
      batch_D=_pair(entry, "B_D", ("gamma",)),
      lr_C=_pair(entry, "eta_C", ("e",)), batch_C=_pair(entry, "B_C", ("e",)),
      param_convention=conventions.get("param_convention"),
      flop_convention=conventions.get("flop_convention"))
  if not law.forms():
    raise ScalingDataError(f"{name}: the hparams entry has no fitted law")
  return law


def from_fit(path: str) -> HparamLaw:
  """The law of a fit.json's ``hparams`` entry."""
  try:
    result = fit_schema.read(path)
  except fit_schema.FitFileError as e:
    raise ScalingDataError(str(e)) from None
  entry = result.get("hparams")
  if not entry:
    raise ScalingDataError(
        f"{path}: no 'hparams' entry; make one with python -m scaling.fit "
        "--approach=hparams --input=RUNS --out=DIR")
  return from_entry(entry, path, fit_schema.conventions(result))


def resolve(name_or_path: str) -> HparamLaw:
  """A published law by name, or the fitted law of a fit.json path."""
  if name_or_path in PUBLISHED:
    return PUBLISHED[name_or_path]
  if str(name_or_path).endswith(".json"):
    return from_fit(name_or_path)
  raise ScalingDataError(
      f"unknown learning-rate law {name_or_path!r}: use one of "
      f"{', '.join(PUBLISHED)} or a fit.json path with an hparams entry")
