"""One budget's runs: size targets -> shapes -> steps, batch size, lr.

Steps 2-4 of ``experiments.planner`` for ``sweep.size_grid='per_budget'``
(the shared grid of ``experiments.trunks`` reuses the batch, lr and run-id
rules): log-spaced size targets around N*(C), the nearest shape of
``lm.params.shape_for_params`` for each, and the steps that spend C within
``sweep.tolerance``; candidates that cannot are skipped with a reason. No JAX,
no data.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Dict, List, Optional, Tuple

from lm import flops as flops_lib
from lm import params as params_lib
from lm.config import ConfigError
from experiments import hparam_rules
from experiments.plan_records import PlannedRun, SkippedCandidate
from experiments.sweep_config import PlanError

SHAPE_KEYS = ("d_model", "n_layers", "n_heads", "d_ff")   # a run's shape
_SIZE_KEYS = SHAPE_KEYS + ("max_seq_len",)                # set per run
BYTE_VOCAB = 257  # lm.data.tokenizers.ByteTokenizer: 256 bytes + EOS


def size_targets(center: float, n_sizes: int, size_range: float) -> List[float]:
  """n_sizes log-spaced targets: max/min = size_range, geometric mean center."""
  return [center * size_range ** (i / (n_sizes - 1) - 0.5)
          for i in range(n_sizes)]


def vocab_size_of(data) -> int:
  """Vocab from the tokenizer config alone (no data is touched).

  byte: 257. sentencepiece: data.sp_vocab_size (a trained model can have fewer
  pieces on a tiny corpus; the trainer records the real parameter count).
  """
  if data.tokenizer == "byte":
    return BYTE_VOCAB
  if data.tokenizer == "sentencepiece":
    return int(data.sp_vocab_size)
  raise PlanError(f"lm.data.tokenizer must be byte or sentencepiece, got "
                  f"{data.tokenizer!r}")


def marin_lr(batch_size: int, d_model: int, s, model=None, D=None) -> float:
  """Peak learning rate, clamped to lr_max ('law': of ``model`` on D tokens)."""
  if s.lr_rule == hparam_rules.RULE:
    return hparam_rules.law_lr(s, model, D)
  if s.lr_rule == "fixed":
    return float(min(s.lr_constant, s.lr_max))
  # Marin recipe.py ScalingRecipe.compute_learning_rate: 0.33 sqrt(B) / d.
  return float(min(s.lr_constant * math.sqrt(batch_size) / d_model, s.lr_max))


def choose_batch(budget: float, fpt: float, d_model: int, s, model=None) -> int:
  """Batch size (sequences) under ``s.batch_rule``."""
  if s.batch_rule == hparam_rules.RULE:   # B*(D) at D = C / F tokens
    return hparam_rules.law_batch(s, model, budget / fpt)
  if s.batch_rule == "fixed":
    return int(s.batch_size)
  # Marin experiments/isoflop_sweep.py candidate_configs: B = 2^ceil(log2(
  # C / (F T steps))), halved while lr(B) > max lr, rejected below min batch.
  exact = budget / (fpt * s.seq_len * s.target_steps)
  B = 2 ** max(0, math.ceil(math.log2(max(exact, 1.0))))
  if s.lr_rule == "marin":
    while (B > s.min_batch_size
           and s.lr_constant * math.sqrt(B) / d_model > s.lr_max):
      B //= 2
  return int(min(max(B, s.min_batch_size), s.max_batch_size))


def shape_kwargs(lm_cfg) -> Dict[str, Any]:
  """The base config's model fields other than the sizes the planner sets
  (mlp, tie_embeddings, ...): passed to ``lm.params.shape_for_params``."""
  model = lm_cfg.model
  model = dict(model.to_dict() if hasattr(model, "to_dict") else model)
  return {k: v for k, v in model.items() if k not in _SIZE_KEYS}


def format_run_id(budget: float, N: int, shape: Dict[str, int]) -> str:
  """A run's id: its budget, N and shape, filesystem-safe."""
  return f"C{budget:.3g}_N{N:.3g}_d{shape['d_model']}_L{shape['n_layers']}"


def aligned_steps(exact: float, steps_per_call: int, window: float
                  ) -> Tuple[int, int]:
  """(steps, steps_per_call for the run): the integer nearest ``exact`` within
  relative ``window`` that has a divisor k in [steps_per_call/2,
  steps_per_call] (or is itself <= steps_per_call), so the trainer's fused
  calls all have one length and no remainder call is compiled; else
  (round(exact), steps_per_call)."""
  base = max(1, int(round(exact)))
  reach = int(window * exact)
  for delta in sorted(range(-reach, reach + 1), key=lambda x: (abs(x), x)):
    n = base + delta
    if n < 1 or abs(n / exact - 1) > window:
      continue
    if n <= steps_per_call:
      return n, n
    for k in range(steps_per_call, (steps_per_call + 1) // 2 - 1, -1):
      if n % k == 0:
        return n, k
  return base, steps_per_call


def seed_repeats(runs: List[PlannedRun], center: float, k: int
                 ) -> List[PlannedRun]:
  """k extra seeds of the run nearest (in log N) to ``center``: same shape,
  tokens and lr, seeds base+1..base+k; they measure run-to-run noise
  (Porian et al. 2024, Sec. 3: seed noise of the final loss)."""
  if not k or not runs:
    return []
  base = min(runs, key=lambda r: (abs(math.log(r.N / center)), r.N))
  return [dataclasses.replace(base, run_id=f"{base.run_id}_s{base.seed + j}",
                              seed=base.seed + j, repeat_of=base.run_id)
          for j in range(1, k + 1)]


def skip_reason(exact: float, steps: int, B: int, err: float, tpp: float,
                s) -> Optional[str]:
  """Why a candidate of ``steps`` (``exact`` before rounding) at batch B,
  counted-FLOP error ``err`` and D/N ``tpp`` is skipped, or None."""
  if steps < s.min_steps:
    return (f"{exact:.1f} steps at batch {B} < min_steps={s.min_steps}: "
            "model too large for this budget")
  if abs(err) > s.tolerance:
    return (f"rounding {exact:.2f} steps to {steps} misses C by {err:+.2%} "
            f"(> tolerance {s.tolerance:.2%})")
  if s.min_tokens_per_param and tpp < s.min_tokens_per_param:
    return f"D/N = {tpp:.3g} < min_tokens_per_param={s.min_tokens_per_param}"
  if s.max_tokens_per_param and tpp > s.max_tokens_per_param:
    return f"D/N = {tpp:.3g} > max_tokens_per_param={s.max_tokens_per_param}"
  return None


def plan_candidate(budget, cfg_model, s, n_params, steps_per_call, seed):
  """(PlannedRun, None) or (None, reason): one shape at one budget."""
  T, conv = int(s.seq_len), s.flop_convention
  fpt = flops_lib.flops_per_token(cfg_model, T, conv)
  B = choose_batch(budget, fpt, cfg_model.d_model, s, cfg_model)
  exact = budget / (fpt * B * T)   # C = F x D (Kaplan et al. 2020, Sec. 2.1)
  # Half the tolerance for alignment; the exact check below uses all of it.
  steps, spc = aligned_steps(exact, steps_per_call, s.tolerance / 2)
  D = steps * B * T
  flops = flops_lib.training_flops(cfg_model, T, D, conv)
  err = flops / budget - 1.0
  reason = skip_reason(exact, steps, B, err, D / n_params, s)
  if reason:
    return None, reason
  warmup = max(int(s.min_warmup_steps), int(round(s.warmup_fraction * steps)))
  shape = {k: int(getattr(cfg_model, k)) for k in SHAPE_KEYS}
  return PlannedRun(
      run_id=format_run_id(budget, n_params, shape), budget=float(budget),
      N=int(n_params), shape=shape, D=int(D), steps=steps, batch_size=B,
      seq_len=T, lr=marin_lr(B, cfg_model.d_model, s, cfg_model, D),
      warmup_steps=min(warmup, steps - 1), flops=float(flops),
      flops_error=float(err), flop_convention=conv,
      param_convention=s.param_convention, steps_per_call=spc, seed=seed,
      max_epochs=float(s.max_epochs)), None


def shape_for_target(N_t: float, s, vocab: int, kwargs):
  """The model shape of ``N_t`` parameters under the sweep's shape rule
  (``lm.params.shape_for_params``); ConfigError when none exists."""
  return params_lib.shape_for_params(
      N_t, vocab_size=vocab, seq_len=int(s.seq_len),
      convention=s.param_convention, head_dim=int(s.head_dim),
      ff_multiple=int(s.ff_multiple), **kwargs)


def plan_per_budget(s, budgets, centers, vocab, kwargs, spc, seed):
  """(runs, skipped): each budget's n_sizes targets centred on its N*(C)."""
  runs: List[PlannedRun] = []
  skipped: List[SkippedCandidate] = []
  for C in budgets:
    seen: Dict[Tuple[int, ...], float] = {}
    for N_t in size_targets(centers[C], int(s.n_sizes), float(s.size_range)):
      try:
        m = shape_for_target(N_t, s, vocab, kwargs)
      except ConfigError as e:
        run, reason = None, f"no shape: {e}"
      else:
        key = tuple(int(getattr(m, k)) for k in SHAPE_KEYS)
        if key in seen:
          run, reason = None, (f"same shape as N_target={seen[key]:.4g} "
                               f"(d_model={m.d_model}, n_layers={m.n_layers})")
        else:
          seen[key] = N_t
          run, reason = plan_candidate(
              C, m, s, params_lib.n_params(m, s.param_convention), spc, seed)
      if run is None:
        skipped.append(SkippedCandidate(C, float(N_t), reason))
      else:
        runs.append(run)
    runs += seed_repeats([r for r in runs if r.budget == C], centers[C],
                         int(s.seed_repeats))
  return runs, skipped
