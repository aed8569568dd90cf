"""Typed records of an IsoFLOP sweep plan: runs, skipped candidates, the plan.

Built by ``experiments.planner.make_plan`` (runs of each budget:
``experiments.shape_search``; the shared grid and WSD trunks:
``experiments.trunks``); read by the executor and the plan table.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Optional, Tuple
from lm.config.config_dict import ConfigDict


class PlanError(ValueError):
  """A sweep config that cannot be planned; the message is one line."""


@dataclasses.dataclass(frozen=True)
class PlannedRun:
  """One training run of the sweep."""
  run_id: str            # stable, filesystem-safe, unique within the plan
  budget: float          # the budget C this run belongs to
  N: int                 # parameters under param_convention
  shape: Dict[str, int]  # d_model, n_layers, n_heads, d_ff
  D: int                 # training tokens = steps * batch_size * seq_len
  steps: int
  batch_size: int
  seq_len: int
  lr: float
  warmup_steps: int
  flops: float           # counted training FLOPs of exactly these steps
  flops_error: float     # flops / budget - 1
  flop_convention: str
  param_convention: str
  steps_per_call: int    # a divisor of steps (see aligned_steps)
  seed: int = 0          # train.seed: initialisation and data order
  repeat_of: Optional[str] = None  # run_id of the base run of a seed repeat
  max_epochs: float = 0.0  # sweep.max_epochs -> train.max_epochs (0: none)
  schedule: str = ""       # train.schedule ("": the base config's)
  trunk_id: Optional[str] = None    # wsd_trunk: the trunk this branch cools from
  branch_step: Optional[int] = None  # wsd_trunk: its cooldown start P
  lr_multiplier: float = 1.0  # lr = the rule's lr x this (experiments.lr_grid)
  grad_accum: int = 0        # train.grad_accum (0: the base config's); set by
  #                            experiments.memory_plan for sweep.target
  remat: Optional[bool] = None  # model.remat (None: the base config's)
  b2: Optional[float] = None  # train.b2 (None: the base config's;
  #                            experiments.b2_grid)

  @property
  def planned_spend(self) -> float:
    """FLOPs this run trains itself: C, or its cooldown for a branch."""
    if self.branch_step is None or self.trunk_id is None:
      return self.flops
    return self.flops * (self.steps - self.branch_step) / self.steps

  def lm_config(self, base):
    """A copy of ``base`` (the sweep's ``c.lm``) with this run's fields."""
    c = ConfigDict(base.to_dict())
    for k, v in self.shape.items():
      c.model[k] = int(v)
    c.model.max_seq_len = self.seq_len
    c.data.seq_len = self.seq_len
    c.train.batch_size = self.batch_size
    c.train.steps = self.steps
    c.train.lr = self.lr
    c.train.warmup_steps = self.warmup_steps
    c.train.flop_convention = self.flop_convention
    c.train.steps_per_call = self.steps_per_call
    c.train.seed = self.seed
    c.train.max_epochs = float(self.max_epochs)
    if self.schedule:
      c.train.schedule = self.schedule
    if self.grad_accum:
      c.train.grad_accum = int(self.grad_accum)
    if self.remat is not None:
      c.model.remat = bool(self.remat)
    if self.b2 is not None:
      c.train.b2 = float(self.b2)
    return c

  def to_dict(self) -> Dict[str, Any]:
    d = dataclasses.asdict(self)
    d["shape"] = dict(self.shape)
    return d


@dataclasses.dataclass(frozen=True)
class SkippedCandidate:
  budget: float
  N_target: float
  reason: str


@dataclasses.dataclass(frozen=True)
class Plan:
  runs: Tuple[PlannedRun, ...]
  skipped: Tuple[SkippedCandidate, ...]
  config_hash: str       # sha256 of canonical sweep + lm config (+ fit.json)
  centers: Dict[float, float] = dataclasses.field(default_factory=dict)
  est_flops_per_s: float = 0.0   # sweep.est_flops_per_s (0: CPU model)
  unique_train_tokens: Optional[int] = None  # None: not counted (see
  #                                            count_unique_tokens)
  max_epochs: float = 0.0        # sweep.max_epochs
  scheme: str = "independent"    # sweep.scheme (experiments.schemes)
  trunks: Tuple[Any, ...] = ()   # wsd_trunk: experiments.trunks.PlannedTrunk
  # sweep.branches=k (experiments.branches): points not trained, predicted.
  predicted: Tuple[PlannedRun, ...] = ()
  branches: Optional[int] = None  # k, or None: every branch trained

  def spent_flops(self) -> float:
    """Training FLOPs this plan spends: every trunk, every run's own part."""
    return (sum(t.flops for t in self.trunks)
            + sum(r.planned_spend for r in self.runs))

  def independent_flops(self) -> float:
    """What the same runs cost trained independently: the sum of their C."""
    return sum(r.flops for r in self.runs)

  def epochs(self, run: PlannedRun) -> Optional[float]:
    """D / unique training tokens of ``run`` (None when not counted)."""
    if not self.unique_train_tokens:
      return None
    return run.D / self.unique_train_tokens

  def budgets(self) -> List[float]:
    return sorted({r.budget for r in self.runs})

