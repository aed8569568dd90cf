"""Runs an IsoFLOP plan locally, sequentially, resumably.

Layout of a sweep directory::

  DIR/sweep.json         config, plan and its hash (a changed config is refused)
  DIR/results.jsonl      the ledger: one line per finished run (experiments.ledger)
  DIR/runs/<run_id>/     lm.trainer workdir: checkpoints, metrics.jsonl, run.json
  DIR/report/            written by experiments.analyze

The same command after a crash, SIGKILL or Ctrl-C skips runs already in the
ledger and resumes the unfinished one from its checkpoint: nothing is lost and
nothing runs twice. Every process of a multi-host job runs the same command;
only process 0 writes sweep.json and the ledger.
"""
from __future__ import annotations

import functools
import json
import os
import sys
import time
from typing import Any, Callable, Dict, List

import jax

from experiments import planner as planner_lib
from experiments import provenance as provenance_lib
from experiments.ledger import Ledger
from lm import logs
from lm import workdir as workdir_lib


class SweepConfigChanged(ValueError):
  pass


def _sweep_record(cfg, plan) -> Dict[str, Any]:
  return {"name": cfg.get("name", ""), "config_hash": plan.config_hash,
          "config": json.loads(cfg.to_json_best_effort()),
          "runs": [r.to_dict() for r in plan.runs],
          "skipped": [vars(s) if hasattr(s, "__dict__") else str(s)
                      for s in plan.skipped]}


def check_workdir(workdir: str, cfg, plan, *, write: bool) -> None:
  """Refuses a config that differs from the one that started ``workdir``."""
  path = os.path.join(workdir, "sweep.json")
  old = logs.read_json(path)
  if old is not None and old.get("config_hash") != plan.config_hash:
    raise SweepConfigChanged(
        f"{workdir} was started with a different sweep config (hash "
        f"{old.get('config_hash', '?')[:12]} != {plan.config_hash[:12]}); use a "
        "new --workdir, or restore the original config to resume")
  if old is None:  # a deleted sweep.json must not make old results adoptable
    provenance_lib.check_unrecorded(workdir, plan.config_hash)
  if old is None and write:
    logs.write_json_atomic(path, _sweep_record(cfg, plan))


def ledger_record(run, meta: Dict[str, Any], status: str) -> Dict[str, Any]:
  # N as instantiated (a SentencePiece vocab can come out smaller than planned).
  N = (meta.get("params") or {}).get(run.param_convention, run.N)
  return {
      "run_id": run.run_id, "budget": run.budget, "N": N, "D": run.D,
      "C": meta.get("flops", run.flops),  # as counted by the trainer
      "eval_loss": meta.get("eval_loss", float("nan")),
      "train_loss": meta.get("train_loss", float("nan")), "status": status,
      "wall_time_s": meta.get("wall_time_s"),
      "flop_convention": run.flop_convention,
      "param_convention": run.param_convention, "shape": dict(run.shape),
      "params": meta.get("params"), "steps": run.steps,
      "batch_size": run.batch_size, "seq_len": run.seq_len, "lr": run.lr,
  }


class _Progress:
  """Overall bar over counted FLOPs (runs done, FLOPs done, ETA)."""

  def __init__(self, total_flops: float, n_runs: int, done_flops: float,
               n_done: int, enabled: bool):
    self.n_runs, self.n_done = n_runs, n_done
    self.bar = None
    if enabled and sys.stderr.isatty():
      from tqdm.auto import tqdm
      self.bar = tqdm(total=total_flops, initial=done_flops, unit="FLOP",
                      unit_scale=True, desc=f"sweep {n_done}/{n_runs} runs",
                      position=0, dynamic_ncols=True)

  def write(self, msg: str, log: Callable[[str], None]) -> None:
    """Prints above the bar (plain ``log`` when there is no bar)."""
    if self.bar is not None:
      self.bar.write(msg)
    else:
      log(msg)

  def finished(self, flops: float) -> None:
    self.n_done += 1
    if self.bar is not None:
      self.bar.set_description(f"sweep {self.n_done}/{self.n_runs} runs")
      self.bar.update(flops)

  def close(self) -> None:
    if self.bar is not None:
      self.bar.close()


def _one_driver(fn):
  """Holds ``DIR/.lock`` (lm.workdir) for the whole sweep: a second driver on
  the same directory is refused, naming the first. Process 0 only."""

  @functools.wraps(fn)
  def wrapper(cfg, workdir: str, **kwargs):
    from lm import sharding
    sharding.maybe_initialize_distributed(bool(cfg.lm.mesh.distributed))
    with workdir_lib.locked(workdir, what="sweep driver",
                            enabled=jax.process_index() == 0):
      return fn(cfg, workdir, **kwargs)
  return wrapper


@_one_driver
def run_sweep(cfg, workdir: str, *, progress: bool = True,
              log: Callable[[str], None] = print) -> List[Dict[str, Any]]:
  """Executes every planned run not yet in the ledger; returns the ledger."""
  from lm.trainer import TrainingDiverged, train

  plan = planner_lib.make_plan(cfg)
  from lm import sharding
  sharding.maybe_initialize_distributed(bool(cfg.lm.mesh.distributed))
  is_main = jax.process_index() == 0
  if not is_main:
    log = lambda msg: None  # noqa: E731  (one voice per multi-host job)
  os.makedirs(workdir, exist_ok=True)
  check_workdir(workdir, cfg, plan, write=is_main)
  ledger = Ledger(os.path.join(workdir, "results.jsonl"))
  done = ledger.run_ids()  # also validates every existing line
  todo = [r for r in plan.runs if r.run_id not in done]
  done_flops = sum(r.flops for r in plan.runs if r.run_id in done)
  bar = _Progress(sum(r.flops for r in plan.runs), len(plan.runs),
                  done_flops, len(plan.runs) - len(todo),
                  progress and is_main)
  if done:
    log(f"resuming {workdir}: {len(done)} runs in the ledger, "
        f"{len(todo)} to go")
  try:
    for run in todo:
      run_dir = os.path.join(workdir, "runs", run.run_id)
      t0 = time.time()
      try:
        meta = train(run.lm_config(cfg.lm), run_dir, verbose=progress,
                     provenance=provenance_lib.provenance(plan.config_hash))
        status = "ok"
      except TrainingDiverged as e:
        meta = logs.read_json(os.path.join(run_dir, "run.json")) or {}
        status = "diverged"
        bar.write(f"warning: run {run.run_id} diverged ({e}); recorded as "
                  "'diverged' and excluded from fits", log)
      rec = ledger_record(run, meta, status)
      if is_main:
        ledger.append(rec)
      bar.finished(run.flops)
      el = rec["eval_loss"]
      bar.write(f"[{bar.n_done}/{bar.n_runs}] C={run.budget:.3g} N={run.N:,} "
                f"D={run.D:,} -> eval_loss "
                f"{el if el is None else format(el, '.4f')} ({status}, "
                f"{time.time() - t0:.1f}s)", log)
  finally:
    bar.close()
  return ledger.read()
