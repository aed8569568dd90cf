"""``sweep.lr_rule='law'`` and ``sweep.batch_rule='law'``: a run's learning rate and batch from a law.

A researcher tunes the learning rate (and batch) at small scale, fits
``python -m scaling.fit --approach=hparams --input=RUNS --out=DIR``, and
plans the large sweep with ``--config.sweep.lr_rule=law
--config.sweep.lr_law=DIR/fit.json`` (and ``batch_rule=law``,
``batch_law=...``); or uses a published law by name (``steplaw2025``,
``deepseek2024``: ``scaling.hparams.laws.PUBLISHED``).

Each run's N and C are counted under the LAW's conventions, not the
sweep's: Step Law's N is non-embedding parameters; DeepSeek's C is M D with
M the non-embedding FLOPs per token including causal attention
(``deepseek_M``); a fitted law uses the conventions its fit.json records
(the sweep's where it records none). D is the run's training tokens
(``wsd_trunk``: one learning rate per trunk, from the trunk's -- its longest
branch's -- tokens). The learning rate is clamped to ``sweep.lr_max`` (a
warning says so); the batch is round(B* / seq_len) sequences, clamped to
[min_batch_size, max_batch_size].
"""
from __future__ import annotations

import functools
import hashlib
import os
import warnings
from typing import Any, Dict, Tuple

from experiments.plan_records import PlanError
from lm import flops as flops_lib
from lm import params as params_lib
from scaling.io.types import ScalingDataError
from scaling.hparams import laws as laws_lib

RULE = "law"
# Fields this module adds to SWEEP_FIELDS (their defaults leave config_hash
# as it was before they existed).
FIELD_DEFAULTS = {"lr_law": "", "batch_law": "", "law_form": "auto"}
_SIX_ND = {"6ND": "6N"}   # scaling's name of C = 6ND -> lm.flops' key


@functools.lru_cache(maxsize=32)
def _resolve(name: str, stamp: Tuple[int, int]):
  del stamp   # part of the cache key: a refit file is read again
  return laws_lib.resolve(name)


def law_for(name: str, field: str):
  """The HparamLaw named by sweep.<field> (published name or fit.json)."""
  if not name:
    raise PlanError(f"sweep.{field} is empty: name a published law "
                    f"({', '.join(laws_lib.PUBLISHED)}) or a fit.json with an "
                    "hparams entry (python -m scaling.fit --approach=hparams)")
  path = os.path.expanduser(name)
  try:
    st = os.stat(path) if name not in laws_lib.PUBLISHED else None
  except OSError:
    st = None
  stamp = (st.st_mtime_ns, st.st_size) if st else (0, 0)
  try:
    return _resolve(name if name in laws_lib.PUBLISHED else path, stamp)
  except ScalingDataError as e:
    raise PlanError(f"sweep.{field}: {e}") from None


def validate(s) -> None:
  """PlanError (one line) for a 'law' rule without a usable law."""
  form = s.get("law_form", "auto")
  if form not in laws_lib.FORMS:
    raise PlanError(f"unknown sweep.law_form {form!r} (valid: "
                    f"{', '.join(laws_lib.FORMS)})")
  for rule, field, what in (("lr_rule", "lr_law", "lr"),
                            ("batch_rule", "batch_law", "batch")):
    if s[rule] != RULE:
      continue
    law = law_for(s.get(field, ""), field)
    have = law.lr_ND if what == "lr" else law.batch_D
    have_c = law.lr_C if what == "lr" else law.batch_C
    ok = {"auto": have or have_c, "N_D": have, "C": have_c}[form]
    if not ok:
      raise PlanError(f"sweep.{field}={law.name!r} has no {what} law in form "
                      f"{form!r} ({law.describe()})")


def _N_C(law, model, s, D: float) -> Tuple[float, float]:
  """N and C = F D of one run under the law's conventions."""
  T = int(s.seq_len)
  pconv = law.param_convention or s.param_convention
  N = float(params_lib.n_params(model, pconv))
  conv = law.flop_convention
  if conv in (None, "as_given"):
    conv = s.flop_convention
  conv = _SIX_ND.get(conv, conv)
  if conv == "deepseek_M":   # Bi et al. 2024, DeepSeek LLM, Eq. 2
    M = (6.0 * params_lib.n_params(model, "non_embedding")
         + 6.0 * model.n_layers * model.d_model * T)
    return N, M * D
  return N, float(flops_lib.training_flops(model, T, D, conv))


def law_lr(s, model, D: float) -> float:
  """Peak learning rate of a run of ``model`` on D tokens, clamped to lr_max."""
  law = law_for(s.lr_law, "lr_law")
  N, C = _N_C(law, model, s, float(D))
  lr = float(law.lr(N=N, D=float(D), C=C, form=s.law_form))
  if lr > s.lr_max:
    warnings.warn(f"sweep.lr_rule='law': {law.name} gives learning rates above "
                  f"sweep.lr_max={s.lr_max:g} for some runs; they are clamped "
                  "to it (raise sweep.lr_max to use the law's values)")
    return float(s.lr_max)
  return lr


def law_batch(s, model, D: float) -> int:
  """Batch size (sequences) of a run of ``model`` on about D tokens."""
  law = law_for(s.batch_law, "batch_law")
  _, C = _N_C(law, model, s, float(D))
  tokens = float(law.batch_tokens(D=float(D), C=C, form=s.law_form))
  B = max(1, int(round(tokens / int(s.seq_len))))
  return int(min(max(B, s.min_batch_size), s.max_batch_size))


def add_hash_material(material: Dict[str, Any], s) -> None:
  """config_hash: drop this module's fields at their defaults (old hashes
  stay valid); hash the bytes of a fit.json law (a refit changes the plan)."""
  sweep = material["sweep"]
  for k, default in FIELD_DEFAULTS.items():
    if sweep.get(k, default) == default:
      sweep.pop(k, None)
  for field in ("lr_law", "batch_law"):
    name = s.get(field, "")
    if name and name not in laws_lib.PUBLISHED:
      try:
        with open(os.path.expanduser(name), "rb") as f:
          material[f"{field}_sha256"] = hashlib.sha256(f.read()).hexdigest()
      except OSError:
        material[f"{field}_sha256"] = None
