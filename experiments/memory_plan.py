"""Memory-aware planning: each run's (micro-batch, grad_accum, remat) for a target.

With ``sweep.target`` (or ``--target``) every planned run gets the cheapest
setting whose memory per device is at most ``sweep.memory_fraction`` (0.9)
of the target's: the global batch, learning rate, steps and tokens stay as
planned, only how a step is computed changes (gradient accumulation over
micro-batches and per-block rematerialisation give the same losses as the
plain step: tests/test_memory_plan.py).

How the setting is chosen (cost, compile or model): ``lm.accel.choose``.

A run that fits at no setting is refused with one line naming it and what
would fit.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Sequence, Tuple

from experiments.shape_search import vocab_size_of
from experiments.plan_records import PlanError
from lm import config as config_lib
from lm.accel import memory_model, verdict_cache
from lm.accel.choose import MemoryChoice, choose, format_choices
from lm.accel.spec import StepSpec, spec_from_config
from lm.accel.targets import Target
from lm.config import ConfigError

PLAN_SCHEMA = "scalinglm.plan/1"


def run_specs(plan, cfg, target: Target) -> List[Tuple[Any, StepSpec]]:
  """(run, its StepSpec on the target) for every run of ``plan``."""
  vocab = vocab_size_of(cfg.lm.data)
  out = []
  for run in plan.runs:
    c = config_lib.from_config_dict(run.lm_config(cfg.lm), vocab_size=vocab)
    out.append((run, spec_from_config(c, target.n_devices)))
  return out


def apply(plan, choices: Sequence[MemoryChoice]):
  """``plan`` with each run's grad_accum and remat set from ``choices``."""
  by_id = {c.run_id: c for c in choices}
  runs = tuple(dataclasses.replace(
      r, grad_accum=by_id[r.run_id].spec.grad_accum,
      remat=by_id[r.run_id].spec.model.remat) for r in plan.runs)
  # A WSD trunk trains its branches' shape at their batch (one program,
  # traced schedule): it takes their setting.
  of_trunk = {r.trunk_id: by_id[r.run_id] for r in plan.runs if r.trunk_id}
  trunks = tuple(dataclasses.replace(
      t, grad_accum=of_trunk[t.trunk_id].spec.grad_accum,
      remat=of_trunk[t.trunk_id].spec.model.remat)
                 if t.trunk_id in of_trunk else t
                 for t in getattr(plan, "trunks", ()))
  return dataclasses.replace(plan, runs=runs, trunks=trunks)


def plan_for_target(plan, cfg, target: Target, *, fraction: float = 0.9,
                    workers: int = 1, progress: bool = True,
                    compile: bool = True):
  """(plan with settings applied, choices) for ``target``."""
  items = [(run.run_id, spec) for run, spec in run_specs(plan, cfg, target)]
  try:
    choices = choose(items, target, fraction=fraction, workers=workers,
                     progress=progress, compile=compile)
  except ConfigError as e:
    raise PlanError(str(e)) from None
  return apply(plan, choices), choices


def plan_json(plan, cfg, target: Target, choices: Sequence[MemoryChoice]
              ) -> Dict[str, Any]:
  """DIR/plan.json: each run's resolved model and train settings, mesh,
  target, memory per device and whether it was compiled or modelled."""
  vocab = vocab_size_of(cfg.lm.data)
  by_id = {c.run_id: c for c in choices}
  runs = []
  for run in plan.runs:
    c = config_lib.from_config_dict(run.lm_config(cfg.lm), vocab_size=vocab)
    runs.append({"run_id": run.run_id, "budget": run.budget, "N": run.N,
                 "D": run.D, "model": config_lib.to_jsonable(c.model),
                 "train": config_lib.to_jsonable(c.train),
                 "memory": by_id[run.run_id].to_dict()})
  return {"schema": PLAN_SCHEMA, "config_hash": plan.config_hash,
          "target": dataclasses.asdict(target),
          "memory_fraction": choices[0].limit_bytes / target.hbm_bytes
          if choices else None,
          "toolchain": (verdict_cache.toolchain()
                        if any(c.how == "compiled" for c in choices) else None),
          "memory_model": dataclasses.asdict(memory_model.CALIBRATED),
          "runs": runs}


def write_plan_json(path: str, obj: Dict[str, Any]) -> None:
  """Atomic write (temp file, fsync, rename), never through a symlink."""
  try:
    verdict_cache.write_json_atomic(path, obj)
  except ConfigError as e:
    raise PlanError(str(e)) from None


def summary_text(target: Target, choices: Sequence[MemoryChoice]) -> str:
  """The memory table of a plan: target, one line per run, totals."""
  lines = [f"memory per device for {target.describe()}; limit "
           f"{choices[0].limit_bytes / target.hbm_bytes:.0%} of it"
           if choices else f"memory for {target.describe()}: no runs",
           format_choices(choices)]
  compiled = [c for c in choices if c.how == "compiled"]
  if compiled:
    errs = [c.modelled_bytes / c.bytes_per_device - 1 for c in compiled]
    secs = [c.compiled["train_compile_s"] + c.compiled["eval_compile_s"]
            for c in compiled]
    lines.append(
        f"{len(compiled)} runs compiled for {target.topology} (train + eval "
        f"steps, XLA memory_analysis; compile {min(secs):.0f}-{max(secs):.0f}"
        f" s per program pair when first compiled); memory model vs compiler "
        f"on these: {memory_model.summary(errs)}")
  if len(compiled) < len(choices):
    lines.append(f"{len(choices) - len(compiled)} runs modelled "
                 f"(lm.accel.memory_model, {memory_model.CALIBRATED.source})")
  return "\n".join(lines)
