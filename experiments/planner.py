"""IsoFLOP sweep planner: budgets -> model sizes -> runs (no JAX, no data).

For each training-FLOP budget C (counted under ``sweep.flop_convention``):

1. centre N*(C): a prior ``prior_k * (C / prior_c0)**prior_a`` or a previous
   fit.json (``center_N``);
2. ``n_sizes`` targets log-spaced over ``size_range`` (max/min), geometric
   centre N*(C) (Hoffmann et al. 2022, Sec. 3.2: "IsoFLOP profiles", a fixed
   set of sizes per budget);
3. each target -> the nearest shape of ``lm.params.shape_for_params``
   (identical shapes within a budget are deduplicated);
4. batch size (``batch_rule``), then steps = round(C / (F * B * T)) with F the
   convention's training FLOPs per token, so the counted FLOPs F * B * T *
   steps are within ``tolerance`` of C; learning rate (``lr_rule``) and warmup.

Candidates that cannot meet their budget are kept in ``Plan.skipped`` with a
one-line reason. Sweep config fields and defaults: ``SWEEP_FIELDS``; config
files start from ``default_sweep(**overrides)``.

This module assembles and checks the plan (``make_plan``); steps 2-4 are
``experiments.shape_search`` (one grid per budget) or ``experiments.trunks``
(one shared grid, WSD trunks), the records ``experiments.plan_records``. The
names of those modules, of ``sweep_config``, ``centering`` and ``plan_table``
that callers use are re-exported here.
"""
from __future__ import annotations

import math
import warnings
from typing import Dict, Optional

from experiments import b2_grid, lr_grid
from experiments import branches as branches_lib
from experiments import schemes as schemes_lib
from experiments import trunks as trunks_lib
from experiments.centering import SIX_N_CONVENTIONS, center_N
from experiments.plan_records import Plan, PlannedRun, SkippedCandidate
from experiments.plan_table import (CPU_RUN_OVERHEAD_S, CPU_THROUGHPUT,
                                    cpu_tokens_per_s, estimate_seconds,
                                    format_plan)
from experiments.shape_search import (BYTE_VOCAB, aligned_steps, choose_batch,
                                      marin_lr, plan_per_budget, seed_repeats,
                                      shape_kwargs, size_targets,
                                      vocab_size_of)
from experiments.sweep_config import (HASH_EXCLUDED, SWEEP_FIELDS,
                                      SWEEP_HASH_EXCLUDED, PlanError, _budgets,
                                      config_hash, default_sweep,
                                      validate_sweep)
from lm.data import DataError, count_train_tokens
from experiments.sweep_flops import planner_flops_per_token

__all__ = [
    "make_plan", "count_unique_tokens", "check_epochs",
    # experiments.plan_records
    "Plan", "PlannedRun", "SkippedCandidate",
    # experiments.shape_search
    "BYTE_VOCAB", "aligned_steps", "choose_batch", "marin_lr", "seed_repeats",
    "size_targets", "vocab_size_of",
    # experiments.sweep_config
    "HASH_EXCLUDED", "SWEEP_FIELDS", "SWEEP_HASH_EXCLUDED", "PlanError",
    "config_hash", "default_sweep", "validate_sweep",
    # experiments.centering
    "SIX_N_CONVENTIONS", "center_N",
    # experiments.plan_table
    "CPU_RUN_OVERHEAD_S", "CPU_THROUGHPUT", "cpu_tokens_per_s",
    "estimate_seconds", "format_plan",
]


def count_unique_tokens(cfg) -> Optional[int]:
  """Unique training tokens of the sweep's data at ``sweep.seq_len``, or None
  when they cannot be counted without tokenizing (tfds or SentencePiece
  without a token cache, or a tfds dataset not prepared here; the trainer
  then checks ``train.max_epochs`` itself).
  Touches data (builds a byte-level token cache), unlike ``make_plan``."""
  data = dict(cfg.lm.data.to_dict() if hasattr(cfg.lm.data, "to_dict")
              else cfg.lm.data)
  data["seq_len"] = int(cfg.sweep.seq_len)
  try:
    return count_train_tokens(data)
  except DataError:
    if data.get("source") != "tfds":
      raise
    return None  # not prepared on this machine (--plan_only on a laptop)


def check_epochs(plan: Plan) -> None:
  """PlanError naming the first run that would repeat data beyond
  ``max_epochs`` (Muennighoff et al. 2023: repeated tokens are worth less, so
  loss falls differently with D), and how much more text it needs."""
  if not plan.max_epochs or not plan.unique_train_tokens:
    return
  U = plan.unique_train_tokens
  over = [r for r in plan.runs if r.D > plan.max_epochs * U]
  if over:
    r = max(over, key=lambda x: x.D)
    more = math.ceil(r.D / plan.max_epochs) - U
    raise PlanError(
        f"run {r.run_id} would train D={r.D:,} tokens = {r.D / U:.3g} epochs "
        f"of the {U:,} unique training tokens (sweep.max_epochs="
        f"{plan.max_epochs:g}; {len(over)} run(s) over); it needs {more:,} "
        "more unique tokens: raise lm.data.max_corpus_bytes (or use more "
        "data), lower sweep.budgets, or raise sweep.max_epochs")


def _check_trunk_settings(cfg, grid: str) -> None:
  """wsd_trunk trains WSD runs on the shared grid: say so when not set."""
  schedule = cfg.lm.train.get("schedule", "cosine")
  if schedule != "wsd":
    raise PlanError(f"sweep.scheme='{cfg.sweep.scheme}' trains warmup-stable-"
                    f"decay runs, but lm.train.schedule={schedule!r}; set "
                    "--config.lm.train.schedule=wsd (its cooldown_fraction "
                    "and cooldown_shape apply)")
  if grid != "shared":
    raise PlanError(f"sweep.scheme='{cfg.sweep.scheme}' needs one grid of "
                    "shapes across budgets: sweep.size_grid='shared' (or "
                    f"'auto'), not {grid!r}")


def _check_runs(budgets, runs, skipped) -> None:
  """PlanError when a budget has no run, or none has the 3 sizes a parabola
  needs, or run ids repeat; a warning for a budget with 1-2 sizes."""
  counts: Dict[float, int] = {}
  for C in budgets:
    counts[C] = sum(r.budget == C and r.repeat_of is None for r in runs)
    if counts[C] == 0:
      first = next((k.reason for k in skipped if k.budget == C), "no shape")
      raise PlanError(f"budget C={C:.3g} too small for any model: {first}")
    if counts[C] < 3:
      warnings.warn(f"budget C={C:.3g} has only {counts[C]} usable sizes (< 3 "
                    "cannot fit a parabola); see the skipped candidates")
  if max(counts.values()) < 3:
    raise PlanError("budget too small for any model: no budget has >= 3 usable "
                    "sizes; raise sweep.budgets or lower sweep.min_steps")
  ids = [r.run_id for r in runs]
  if len(set(ids)) != len(ids):
    raise PlanError("duplicate run ids; make sweep.budgets more distinct")


def make_plan(cfg, *, unique_train_tokens: Optional[int] = None) -> Plan:
  """The runs of the sweep config ``cfg`` (``cfg.sweep`` and ``cfg.lm``).

  With ``unique_train_tokens`` (``count_unique_tokens(cfg)``), a plan whose
  runs exceed ``sweep.max_epochs`` is refused (``check_epochs``).
  """
  if "sweep" not in cfg or "lm" not in cfg:
    raise PlanError("the sweep config needs both c.sweep and c.lm sections")
  s = cfg.sweep
  validate_sweep(s)
  vocab = vocab_size_of(cfg.lm.data)
  kwargs = shape_kwargs(cfg.lm)
  spc = int(cfg.lm.train.get("steps_per_call", 1))
  seed = int(cfg.lm.train.get("seed", 0))
  budgets = sorted(_budgets(s))
  F = None
  if s.center != "prior" and s.flop_convention not in SIX_N_CONVENTIONS:
    F = planner_flops_per_token({"sweep": s.to_dict(), "lm": cfg.lm.to_dict()},
                                10.0 * max(budgets) ** 0.5)
  centers = {C: center_N(C, s, F) for C in budgets}
  grid = schemes_lib.size_grid(s)
  if schemes_lib.SCHEMES[s.scheme].trunks:
    _check_trunk_settings(cfg, grid)
  if grid == "shared":
    runs, skipped = trunks_lib.plan_shared(s, centers, vocab, kwargs, spc,
                                           seed, cfg.lm.train)
  else:
    runs, skipped = plan_per_budget(s, budgets, centers, vocab, kwargs, spc,
                                    seed)
  _check_runs(budgets, runs, skipped)
  runs = lr_grid.expand(runs, lr_grid.multipliers(s))
  base_b2 = float(cfg.lm.train.get("b2", 0.95))
  runs = b2_grid.expand(runs, b2_grid.values(s), base_b2)
  trunks = ()
  if schemes_lib.SCHEMES[s.scheme].trunks:
    runs, trunks = trunks_lib.attach_trunks(runs, seed, base_b2)
  k = branches_lib.parse(s)
  runs, predicted, trunks = branches_lib.select(runs, trunks, k)
  plan = Plan(runs=tuple(runs), skipped=tuple(skipped),
              config_hash=config_hash(cfg), centers=centers,
              est_flops_per_s=float(s.est_flops_per_s),
              unique_train_tokens=unique_train_tokens,
              max_epochs=float(s.max_epochs), scheme=s.scheme,
              trunks=tuple(trunks), predicted=tuple(predicted), branches=k)
  check_epochs(plan)
  return plan
