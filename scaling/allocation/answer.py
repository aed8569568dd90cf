"""``allocate``: one allocation question on one law -> a JSON-able answer.

The question is chosen by which inputs are given (docs/allocation.md):

  N, D [, U]                 loss        L(N, D[, U]) of the law
  C                          chinchilla  N*, D*, L* at C = 6ND (Eq. 4)
  C, U                       data_constrained  N, D, L, epochs under U unique
                                         tokens, and the loss given up
  target_loss | C, D_inf     inference   least 6 N D_train + 2 N D_inf
                                         reaching the target (or the loss of
                                         the Chinchilla model at C)

Every number is computed at the point law and, when the law carries
bootstrap replicates, on every replicate: ``ci`` is the percentile interval
over the replicates (their own percentiles, e.g. 2.5-97.5 %), ``None``
without replicates. An answer is ``{question, inputs, answer: {name:
{value, ci}}, interval, provenance}``.
"""
from __future__ import annotations

import datetime
import math
from typing import Any, Dict, Optional

import numpy as np

from scaling.allocation import chinchilla
from scaling.allocation import data_constrained
from scaling.allocation import inference
from scaling.allocation import laws as laws_lib
from scaling.allocation.errors import AllocationError

COST_CONVENTION = ("training 6 N D FLOPs, inference 2 N FLOPs per token "
                   "(Sardana et al. 2023, Sec. 2; Kaplan et al. 2020, Sec. 2.1)")


def _number(name: str, v, allow_zero: bool = False) -> Optional[float]:
  if v is None:
    return None
  try:
    x = float(v)
  except (TypeError, ValueError):
    raise AllocationError(f"--{name} must be a number, got {v!r}") from None
  ok = math.isfinite(x) and (x >= 0 if allow_zero else x > 0)
  if not ok:
    raise AllocationError(f"--{name} must be a {'non-negative' if allow_zero else 'positive'} "
                          f"finite number, got {v!r}")
  return x


def question_of(C=None, unique_tokens=None, target_loss=None,
                inference_tokens=None, N=None, D=None) -> str:
  """The question the given inputs ask (module docstring), or an error."""
  if N is not None or D is not None:
    if N is None or D is None:
      raise AllocationError("a loss query needs both --N and --D")
    if any(v is not None for v in (C, target_loss, inference_tokens)):
      raise AllocationError("--N/--D ask for the law's loss; drop --C, "
                            "--target_loss and --inference_tokens")
    return "loss"
  if target_loss is not None or inference_tokens is not None:
    if unique_tokens is not None:
      raise AllocationError("--unique_tokens with --inference_tokens/"
                            "--target_loss is not supported: ask one question "
                            "at a time")
    if (target_loss is None) == (C is None):
      raise AllocationError("the inference-aware question needs exactly one "
                            "of --target_loss and --C (the loss of the "
                            "Chinchilla model at C)")
    return "inference"
  if C is not None:
    return "data_constrained" if unique_tokens is not None else "chinchilla"
  raise AllocationError("nothing to answer: give --C (optionally with "
                        "--unique_tokens or --inference_tokens), "
                        "--target_loss, or --N and --D")


def _band(draws, percentiles):
  arr = np.asarray(draws, np.float64).ravel()
  arr = arr[np.isfinite(arr)]
  if arr.size < 2:
    return None
  lo, hi = np.percentile(arr, percentiles)
  return [float(lo), float(hi)]


def _pack(point: Dict[str, Any], reps: Optional[Dict[str, Any]], law,
          keys) -> Dict[str, Dict[str, Any]]:
  out = {}
  for k in keys:
    ci = None if reps is None else _band(reps[k], law.percentiles)
    out[k] = {"value": float(np.asarray(point[k])), "ci": ci}
  return out


def _solve(question, law, P, C, U, target, D_inf, N, D):
  """(result dict, keys) of ``question`` for parameters P (point or draws)."""
  if question == "loss":
    if U is not None or law.has_dc:
      return {"L": data_constrained.loss(P, N, D, U),
              "epochs": D / (D if U is None else U)}, ("L", "epochs")
    return {"L": chinchilla.loss(P, N, D)}, ("L",)
  if question == "chinchilla":
    r = chinchilla.optimum(P, C)
    r["tokens_per_param"] = r["D"] / r["N"]
    return r, ("N", "D", "L", "tokens_per_param")
  if question == "data_constrained":
    r = data_constrained.optimum(P, C, U)
    r["tokens_per_param"] = r["D"] / r["N"]
    return r, ("N", "D", "L", "epochs", "tokens_per_param",
               "N_unlimited", "D_unlimited", "L_unlimited", "loss_given_up")
  if target is None:
    target = chinchilla.optimum(P, C)["L"]
  r = inference.optimum(P, target, D_inf)
  return r, ("N", "D", "L", "tokens_per_param", "C_train", "C_inference",
             "C_total", "N_chinchilla", "D_chinchilla", "C_total_chinchilla",
             "saving")


def _power_law(law: laws_lib.PowerLaw, C: float):
  """N* = k_N C^a, D* = k_D C^b of Approaches 1/2, and its draws."""
  point = {"N": law.k_N * C**law.a, "D": law.k_D * C**law.b}
  point["tokens_per_param"] = point["D"] / point["N"]
  reps = None
  if law.replicates is not None:
    r = law.replicates
    reps = {"N": np.exp(r["log_k_N"] + r["a"] * math.log(C)),
            "D": np.exp(r["log_k_D"] + r["b"] * math.log(C))}
    reps["tokens_per_param"] = reps["D"] / reps["N"]
  return point, reps, ("N", "D", "tokens_per_param")


def allocate(law, *, C=None, unique_tokens=None, target_loss=None,
             inference_tokens=None, N=None, D=None,
             command_line: Optional[str] = None) -> Dict[str, Any]:
  """Answers one question on ``law`` (a laws.Law or laws.PowerLaw).

  Raises AllocationError (one line) on bad input.
  """
  C = _number("C", C)
  U = _number("unique_tokens", unique_tokens)
  target = _number("target_loss", target_loss)
  D_inf = _number("inference_tokens", inference_tokens, allow_zero=True)
  N, D = _number("N", N), _number("D", D)
  question = question_of(C, U, target, D_inf, N, D)
  notes = []
  if isinstance(law, laws_lib.PowerLaw):
    if question != "chinchilla":
      raise AllocationError(
          f"the {question} question needs L(N, D): use an Approach-3 fit "
          f"(--family=approach3) or a published --law; {law.label} gives "
          "only N*(C)")
    point, reps, keys = _power_law(law, C)
  else:
    if question == "inference" and target is not None and target <= law.E:
      raise AllocationError(
          f"--target_loss={target:g} is at or below the law's irreducible "
          f"loss E={law.E:.4g}: no finite model reaches it")
    if question in ("data_constrained", "loss") and (
        U is not None and not law.has_dc):
      law = law.with_dc_defaults()
      notes.append("R_N*, R_D* are Muennighoff et al. 2023's published "
                   "values (this law has none of its own); E, A, B, alpha, "
                   "beta are the law's")
    P = chinchilla.point(law)
    Pr = chinchilla.replicates(law)
    with np.errstate(all="ignore"):
      point, keys = _solve(question, law, P, C, U, target, D_inf or 0.0, N, D)
      reps = None if Pr is None else _solve(
          question, law, Pr, C, U, target, D_inf or 0.0, N, D)[0]
  answer = _pack(point, reps, law, keys)
  n_reps = 0 if law.replicates is None else int(
      next(iter(law.replicates.values())).size)
  if reps is None:
    interval = {"procedure": None, "reason": (
        "published point estimate: no bootstrap replicates"
        if law.name in laws_lib.PUBLISHED else
        "the fit has no stored bootstrap replicates (bootstrap=0, or a "
        "fit.json written before replicates were stored): refit with "
        "python -m scaling.fit / experiments.analyze to get intervals")}
  else:
    first = np.asarray(reps[keys[0]], np.float64)
    interval = {"procedure": (f"{law.interval_procedure}; the question "
                              "re-solved on every bootstrap replicate"),
                "percentiles": list(law.percentiles),
                "n_replicates": n_reps,
                "n_valid": int(np.sum(np.isfinite(first)))}
  return {
      "question": question,
      "inputs": {"C": C, "unique_tokens": U, "target_loss": target,
                 "inference_tokens": D_inf, "N": N, "D": D},
      "answer": answer,
      "interval": interval,
      "notes": notes,
      "provenance": dict(
          law.provenance(), cost_convention=COST_CONVENTION,
          command_line=command_line,
          date_utc=datetime.datetime.now(datetime.timezone.utc).isoformat(
              timespec="seconds")),
  }
