"""Runs an IsoFLOP plan, resumably, through a runner (``experiments.runners``).

Layout of a sweep directory::

  DIR/sweep.json         config, plan and its hash (a changed config is refused)
  DIR/results.jsonl      the ledger: one line per run outcome (experiments.ledger)
  DIR/runs/<run_id>/     lm.trainer workdir: checkpoints, metrics.jsonl, run.json
  DIR/trunks/<trunk_id>/ sweep.scheme='wsd_trunk': the trunks (experiments.trunks)
  DIR/report/            written by experiments.analyze

The executor plans, skips runs with a final outcome in the ledger, hands the
rest to a runner (``local``: this process, in order; ``ray``: Ray tasks, in
parallel) and appends each outcome to the ledger as it comes back: this
process is the ledger's only writer. What is submitted when is the
scheduler's (``experiments.scheduler``): every run at once, or for a
wsd_trunk sweep trunk segments and the branches their checkpoints unlock. The
same command after a crash, SIGKILL
or Ctrl-C skips finished runs and resumes unfinished ones from their
checkpoints: nothing is lost and nothing runs twice. A run that fails (an
exception, a crashed worker, a lost node) is retried up to
``sweep.max_retries`` times, then recorded ``failed`` with its error; the
next invocation tries it again. Every process of a multi-host job runs the
same command; only process 0 writes sweep.json and the ledger.
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
from typing import Any, Callable, Dict, List, Optional

import jax

from experiments import branches as branches_lib
from experiments import planner as planner_lib
from experiments import compute as compute_lib
from experiments import provenance as provenance_lib
from experiments import runners as runners_lib
from experiments import scheduler as scheduler_lib
from experiments.ledger import FINAL, Ledger
from experiments.runners.base import Outcome, RunTask
from lm import logs, safe_io
from lm import workdir as workdir_lib
from lm.config import ConfigError
from lm import sharding


class SweepConfigChanged(ValueError):
  pass


def _sweep_record(cfg, plan) -> Dict[str, Any]:
  return {"name": cfg.get("name", ""), "config_hash": plan.config_hash,
          "config": json.loads(cfg.to_json_best_effort()),
          "scheme": plan.scheme,
          "runs": [r.to_dict() for r in plan.runs],
          "trunks": [t.to_dict() for t in plan.trunks],
          # sweep.branches=k: planned points predicted, never trained.
          **({"branches": plan.branches,
              "predicted": [r.to_dict() for r in plan.predicted]}
             if plan.predicted else {}),
          "skipped": [vars(s) if hasattr(s, "__dict__") else str(s)
                      for s in plan.skipped]}


SWEEP_JSON_HINT = ("delete it and run the sweep command again to rewrite it "
                   "(each run's checkpoints prove which config wrote it)")


def check_workdir(workdir: str, cfg, plan, *, write: bool) -> None:
  """Refuses a config that differs from the one that started ``workdir``."""
  path = os.path.join(workdir, "sweep.json")
  old = logs.read_json(path, hint=SWEEP_JSON_HINT)
  if old is not None and old.get("config_hash") != plan.config_hash:
    raise SweepConfigChanged(
        f"{workdir} was started with a different sweep config (hash "
        f"{old.get('config_hash', '?')[:12]} != {plan.config_hash[:12]}); use a "
        "new --workdir, or restore the original config to resume")
  if old is None:  # a deleted sweep.json must not make old results adoptable
    provenance_lib.check_unrecorded(workdir, plan.config_hash)
  if old is None and write:
    logs.write_json_atomic(path, _sweep_record(cfg, plan))


class EvalSetMismatch(ValueError):
  """Two runs of one sweep scored on different eval token ids."""


# run.json keys copied into the ledger line as they are (lm.trainer, lm.evaluate).
_MEASUREMENT_KEYS = ("eval_loss_se", "eval_tokens", "eval_sha256", "eval_flops",
                     "epochs", "flops_per_token")


def ledger_record(run, meta: Dict[str, Any], status: str,
                  error: Optional[str] = None) -> Dict[str, Any]:
  """The ledger line of ``run`` (a PlannedRun) from its run.json ``meta``
  (fields: scaling.io.ledger_schema, docs/ledger.md)."""
  # N as instantiated (a SentencePiece vocab can come out smaller than planned).
  N = (meta.get("params") or {}).get(run.param_convention, run.N)
  rec = {
      "run_id": run.run_id, "budget": run.budget, "N": N, "D": run.D,
      "C": meta.get("flops", run.flops),  # as counted by the trainer
      "eval_loss": meta.get("eval_loss", float("nan")),
      "train_loss": meta.get("train_loss", float("nan")), "status": status,
      "wall_time_s": meta.get("wall_time_s"),
      "flop_convention": run.flop_convention,
      "param_convention": run.param_convention, "shape": dict(run.shape),
      "params": meta.get("params"), "steps": run.steps,
      "batch_size": run.batch_size, "seq_len": run.seq_len, "lr": run.lr,
      "lr_multiplier": run.lr_multiplier, "b2": run.b2,
      "batch_tokens": run.batch_size * run.seq_len,
      "seed": run.seed, "repeat_of": run.repeat_of,
      "scheme": "wsd_trunk" if run.trunk_id else "independent",
      "schedule": ((meta.get("schedule") or {}).get("name")
                   or run.schedule or None),
      # What this result trained itself (a branch: its cooldown).
      "compute_spent": meta.get("compute_spent", run.planned_spend),
  }
  if run.trunk_id:
    rec.update(trunk_id=run.trunk_id, branch_step=run.branch_step)
  rec.update({k: meta[k] for k in _MEASUREMENT_KEYS if meta.get(k) is not None})
  if error is not None:
    rec["error"] = error  # status "failed": why, one line
  return rec


def check_eval_set(rec: Dict[str, Any], records: List[Dict[str, Any]]) -> None:
  """Refuses a result scored on other eval token ids than the sweep's: the
  points of one IsoFLOP curve must differ only in the model."""
  sha = rec.get("eval_sha256")
  other = next((r for r in records if r.get("eval_sha256")
                and r["eval_sha256"] != sha and r["status"] == "ok"), None)
  if sha and other is not None:
    raise EvalSetMismatch(
        f"run {rec['run_id']} was scored on eval set {sha[:12]} but run "
        f"{other['run_id']} of this sweep on {other['eval_sha256'][:12]} (the "
        "corpus, tokenizer or eval settings changed, e.g. another Python's "
        "stdlib as the default corpus); finish the sweep where it started, "
        "or use a new --workdir")


class _Progress:
  """Overall bar over the FLOPs the plan spends (runs done, ETA)."""

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
    self.advance(flops)

  def advance(self, flops: float) -> None:
    if self.bar is not None:
      self.bar.update(flops)

  def close(self) -> None:
    if self.bar is not None:
      self.bar.close()


def run_sweep(cfg, workdir: str, *, executor: str = "local",
              executor_options: Optional[Dict[str, Any]] = None,
              progress: bool = True, trainer: str = RunTask.trainer,
              log: Callable[[str], None] = print,
              plan=None) -> List[Dict[str, Any]]:
  """Executes every planned run without a final outcome; returns the ledger.

  ``executor``: a key of ``experiments.runners.RUNNERS``; ``executor_options``
  go to that runner (e.g. ``address`` for ``ray``). ``trainer``: the train
  function's import path (tests swap in a faulty one). Returns one record per
  run in the ledger (its outcome); failed runs are in it with status
  ``failed``. The driver holds ``DIR/.lock`` (lm.workdir) throughout: a
  second driver on the same directory is refused, naming the first.
  ``plan``: ``cfg``'s plan when the caller has made it already (else made
  here, counting the data's unique tokens for the epoch guard).
  """
  if plan is None:
    plan = planner_lib.make_plan(
        cfg, unique_train_tokens=planner_lib.count_unique_tokens(cfg))
  spec = runners_lib.get(executor)
  if spec.multi_host:
    sharding.maybe_initialize_distributed(cfg.lm.mesh)
    multi, is_main = jax.process_count() > 1, jax.process_index() == 0
  elif sharding.distributed_args(cfg.lm.mesh) is not None:
    raise ConfigError(f"--executor={executor} trains each run in one worker "
                      "process; a multi-host mesh (mesh.distributed, "
                      "mesh.num_processes, ...) needs --executor=local")
  else:  # this driver never starts a JAX backend: the devices are the workers'
    multi, is_main = False, True
  if not is_main:
    log = lambda msg: None  # noqa: E731  (one voice per multi-host job)
  options = dict(executor_options or {}, log=log, catch_errors=not multi,
                 resources=cfg.sweep.get("resources_per_run", "auto"))
  runner = spec.make(**options)  # a missing extra fails before any write
  os.makedirs(workdir, exist_ok=True)
  with workdir_lib.locked(workdir, what="sweep driver", enabled=is_main):
    check_workdir(workdir, cfg, plan, write=is_main)
    ledger = Ledger(os.path.join(workdir, "results.jsonl"))
    latest = ledger.latest()  # also validates every existing line
    done = {k for k, r in latest.items() if r["status"] in FINAL}
    todo = [r for r in plan.runs if r.run_id not in done]
    if done or latest:
      retried = sum(r.run_id in latest for r in todo)
      log(f"resuming {workdir}: {len(done)} runs in the ledger, "
          f"{len(todo)} to go" + (f" ({retried} failed before, retried now)"
                                  if retried else ""))
    bar = _Progress(plan.spent_flops(), len(plan.runs),
                    _done_flops(plan, done, workdir),
                    len(plan.runs) - len(todo), progress and is_main)
    sched = _scheduler(cfg, plan, workdir, todo, progress and executor ==
                       "local", trainer)
    try:
      if todo:  # nothing to do starts nothing (no Ray instance)
        with runner:
          log(runner.describe())
          _drain(runner, sched, {r.run_id: r for r in todo},
                 int(cfg.sweep.get("max_retries", 0)),
                 ledger if is_main else None, bar, log)
    finally:
      bar.close()
    records = ledger.read()
  log(compute_lib.summary_line(compute_lib.sweep_compute(workdir, records)))
  if plan.predicted:
    log(branches_lib.summary_line(plan, records))
  failed = [r["run_id"] for r in records if r["status"] == "failed"]
  if failed:
    log(f"warning: {len(failed)} run(s) failed and are recorded as 'failed' "
        f"in {ledger.path}: {', '.join(failed)}; run the same command again "
        "to retry them")
  return records


def _scheduler(cfg, plan, workdir: str, todo, verbose: bool, trainer: str):
  """The sweep's scheduler, with the RunTasks it hands out."""
  prov = provenance_lib.provenance(plan.config_hash)

  def run_task(run, init_from=None) -> RunTask:
    return RunTask(run.run_id, run.lm_config(cfg.lm).to_dict(),
                   os.path.abspath(safe_io.confined(
                       workdir, "runs", run.run_id, what="run directory")),
                   verbose=verbose, trainer=trainer, provenance=prov,
                   init_from=init_from)

  if not plan.trunks:
    return scheduler_lib.Independent([run_task(r) for r in todo])
  sched = None

  def trunk_task(trunk, stop_at: int) -> RunTask:
    return RunTask(trunk.trunk_id, trunk.lm_config(cfg.lm).to_dict(),
                   sched.trunk_dir(trunk.trunk_id), verbose=verbose,
                   trainer=trainer, provenance=prov, kind="trunk",
                   stop_at=stop_at)

  sched = scheduler_lib.Trunks(plan, workdir, todo, run_task, trunk_task)
  return sched


def _done_flops(plan, done, workdir: str) -> float:
  """Planned spend already behind the sweep: finished runs, trunk steps."""
  flops = sum(r.planned_spend for r in plan.runs if r.run_id in done)
  for t in plan.trunks:
    at = scheduler_lib.checkpoint_steps(
        os.path.join(workdir, scheduler_lib.TRUNKS_DIR, t.trunk_id))
    flops += t.flops_per_step * min(max(at, default=0), max(t.branch_steps))
  return flops


def _drain(runner, sched, runs: Dict[str, Any], max_retries: int,
           ledger: Optional[Ledger], bar: "_Progress",
           log: Callable[[str], None]) -> None:
  """Submits the scheduler's tasks, retries failures, records outcomes as
  they arrive and submits what each finished trunk segment unlocks."""
  for task in sched.initial():
    runner.submit(task)
  while runner.pending():
    out = runner.next_outcome()
    name = ("trunk " if out.task.kind == "trunk" else "run ") + out.task.run_id
    if out.fatal is not None:  # bad input: retrying cannot help
      bar.write(f"error in {name}: {out.error}; sweep stopped", log)
      raise out.fatal
    status = out.status
    if status == "error":
      tries = f"attempt {out.task.attempt} of {max_retries + 1}"
      if out.task.attempt <= max_retries:
        bar.write(f"warning: {name} failed ({tries}, {out.where}): "
                  f"{out.error}; retrying from its checkpoint", log)
        runner.submit(dataclasses.replace(out.task,
                                          attempt=out.task.attempt + 1))
        continue
      status = "failed"
    if out.task.kind == "trunk":
      _trunk_outcome(out, status, sched, runner, ledger, bar, log)
      continue
    if status == "diverged":
      bar.write(f"warning: run {out.task.run_id} diverged "
                f"({out.meta.get('error')}); recorded as 'diverged' and "
                "excluded from fits", log)
    meta = out.meta or logs.read_json(
        os.path.join(out.task.run_dir, "run.json")) or {}
    error = None
    if status == "failed":
      error = (f"{out.error} (after {out.task.attempt} attempt"
               f"{'s' if out.task.attempt > 1 else ''}; last on "
               f"{out.where or '?'})")
    _record(runs[out.task.run_id], meta, status, error, out.wall_s, ledger,
            bar, log)


def _trunk_outcome(out: Outcome, status: str, sched, runner,
                   ledger: Optional[Ledger], bar: "_Progress",
                   log: Callable[[str], None]) -> None:
  """A trunk segment came back: submit what it unlocks, or record the
  branches that now cannot run (a trunk that diverged at step t: an
  uninterrupted run diverges there too; a failed one: retried next time)."""
  tid, trunk = out.task.run_id, sched.trunks[out.task.run_id]
  prev = out.meta.get("resumed_from_step") or 0
  if status == "ok":
    reached = out.meta.get("stopped_at_step", out.task.stop_at)
    bar.advance(trunk.flops_per_step * max(0, reached - prev))
    tasks = sched.trunk_finished(out.task)
    bar.write(f"trunk {tid}: step {prev:,} -> {reached:,} ({out.wall_s:.1f}s);"
              f" {sum(t.kind != 'trunk' for t in tasks)} branch(es) ready",
              log)
    for task in tasks:
      runner.submit(task)
    return
  if status == "diverged":
    why = f"its trunk {tid} diverged ({out.meta.get('error', '?')})"
  else:
    why = (f"its trunk {tid} failed: {out.error} (after {out.task.attempt} "
           "attempts)")
  bar.write(f"warning: trunk {tid} {status}; its waiting branches are "
            f"recorded '{status}'", log)
  for run in sched.drop(tid):
    _record(run, {}, status, why, 0.0, ledger, bar, log)


def _record(run, meta: Dict[str, Any], status: str, error: Optional[str],
            wall_s: float, ledger: Optional[Ledger], bar: "_Progress",
            log: Callable[[str], None]) -> None:
  rec = ledger_record(run, meta, status, error=error)
  if ledger is not None:
    check_eval_set(rec, ledger.read())
    ledger.append(rec)
  bar.finished(run.planned_spend)
  el = rec["eval_loss"]
  bar.write(f"[{bar.n_done}/{bar.n_runs}] C={run.budget:.3g} N={run.N:,} "
            f"D={run.D:,} -> eval_loss "
            f"{el if el is None else format(el, '.4f')} ({status}, "
            f"{wall_s:.1f}s)" + (f": {error}" if error else ""), log)
