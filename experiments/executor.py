"""Runs an IsoFLOP plan, resumably, through a runner (``experiments.runners``).

Layout of a sweep directory::

  DIR/sweep.json         config, plan and its hash (a changed config is refused)
  DIR/results.jsonl      the ledger: one line per run outcome (experiments.ledger)
  DIR/runs/<run_id>/     lm.trainer workdir: checkpoints, metrics.jsonl, run.json
  DIR/report/            written by experiments.analyze

The executor plans, skips runs with a final outcome in the ledger, hands the
rest to a runner (``local``: this process, in order; ``ray``: Ray tasks, in
parallel) and appends each outcome to the ledger as it comes back: this
process is the ledger's only writer. The same command after a crash, SIGKILL
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

from experiments import planner as planner_lib
from experiments import provenance as provenance_lib
from experiments import runners as runners_lib
from experiments.ledger import Ledger
from experiments.runners.base import Outcome, RunTask
from lm import logs
from lm import workdir as workdir_lib
from lm.config import ConfigError


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


class EvalSetMismatch(ValueError):
  """Two runs of one sweep scored on different eval token ids."""


# run.json keys copied into the ledger line as they are (lm.trainer, lm.evaluate).
_MEASUREMENT_KEYS = ("eval_loss_se", "eval_tokens", "eval_sha256", "eval_flops",
                     "epochs", "flops_per_token")


def ledger_record(run, meta: Dict[str, Any], status: str,
                  error: Optional[str] = None) -> Dict[str, Any]:
  """The ledger line of ``run`` (a PlannedRun) from its run.json ``meta``
  (fields: scaling.ledger_schema, docs/ledger.md)."""
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
      "seed": run.seed, "repeat_of": run.repeat_of,
  }
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


def run_sweep(cfg, workdir: str, *, executor: str = "local",
              executor_options: Optional[Dict[str, Any]] = None,
              progress: bool = True, trainer: str = RunTask.trainer,
              log: Callable[[str], None] = print) -> List[Dict[str, Any]]:
  """Executes every planned run without a final outcome; returns the ledger.

  ``executor``: a key of ``experiments.runners.RUNNERS``; ``executor_options``
  go to that runner (e.g. ``address`` for ``ray``). ``trainer``: the train
  function's import path (tests swap in a faulty one). Returns one record per
  run in the ledger (its outcome); failed runs are in it with status
  ``failed``. The driver holds ``DIR/.lock`` (lm.workdir) throughout: a
  second driver on the same directory is refused, naming the first.
  """
  from lm import sharding
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
    done = ledger.finished_ids()
    todo = [r for r in plan.runs if r.run_id not in done]
    if done or latest:
      retried = sum(r.run_id in latest for r in todo)
      log(f"resuming {workdir}: {len(done)} runs in the ledger, "
          f"{len(todo)} to go" + (f" ({retried} failed before, retried now)"
                                  if retried else ""))
    bar = _Progress(sum(r.flops for r in plan.runs), len(plan.runs),
                    sum(r.flops for r in plan.runs if r.run_id in done),
                    len(plan.runs) - len(todo), progress and is_main)
    prov = provenance_lib.provenance(plan.config_hash)
    tasks = [RunTask(run.run_id, run.lm_config(cfg.lm).to_dict(),
                     os.path.abspath(os.path.join(workdir, "runs", run.run_id)),
                     verbose=progress and executor == "local", trainer=trainer,
                     provenance=prov)
             for run in todo]
    try:
      if todo:  # nothing to do starts nothing (no Ray instance)
        with runner:
          log(runner.describe())
          _drain(runner, tasks, {r.run_id: r for r in todo},
                 int(cfg.sweep.get("max_retries", 0)),
                 ledger if is_main else None, bar, log)
    finally:
      bar.close()
    records = ledger.read()
  failed = [r["run_id"] for r in records if r["status"] == "failed"]
  if failed:
    log(f"warning: {len(failed)} run(s) failed and are recorded as 'failed' "
        f"in {ledger.path}: {', '.join(failed)}; run the same command again "
        "to retry them")
  return records


def _drain(runner, tasks: List[RunTask], runs: Dict[str, Any],
           max_retries: int, ledger: Optional[Ledger], bar: "_Progress",
           log: Callable[[str], None]) -> None:
  """Submits ``tasks``, retries failures, records outcomes as they arrive."""
  for task in tasks:
    runner.submit(task)
  while runner.pending():
    out = runner.next_outcome()
    run = runs[out.task.run_id]
    if out.fatal is not None:  # bad input: retrying cannot help
      bar.write(f"error in run {run.run_id}: {out.error}; sweep stopped", log)
      raise out.fatal
    status = out.status
    if status == "error":
      tries = f"attempt {out.task.attempt} of {max_retries + 1}"
      if out.task.attempt <= max_retries:
        bar.write(f"warning: run {run.run_id} failed ({tries}, {out.where}): "
                  f"{out.error}; retrying from its checkpoint", log)
        runner.submit(dataclasses.replace(out.task,
                                          attempt=out.task.attempt + 1))
        continue
      status = "failed"
    elif status == "diverged":
      bar.write(f"warning: run {run.run_id} diverged ({out.meta.get('error')});"
                " recorded as 'diverged' and excluded from fits", log)
    _record(run, out, status, max_retries, ledger, bar, log)


def _record(run, out: Outcome, status: str, max_retries: int,
            ledger: Optional[Ledger], bar: "_Progress",
            log: Callable[[str], None]) -> None:
  meta = out.meta or logs.read_json(
      os.path.join(out.task.run_dir, "run.json")) or {}
  error = None
  if status == "failed":
    error = (f"{out.error} (after {out.task.attempt} attempt"
             f"{'s' if out.task.attempt > 1 else ''}; last on {out.where or '?'})")
  rec = ledger_record(run, meta, status, error=error)
  if ledger is not None:
    check_eval_set(rec, ledger.read())
    ledger.append(rec)
  bar.finished(run.flops)
  el = rec["eval_loss"]
  bar.write(f"[{bar.n_done}/{bar.n_runs}] C={run.budget:.3g} N={run.N:,} "
            f"D={run.D:,} -> eval_loss "
            f"{el if el is None else format(el, '.4f')} ({status}, "
            f"{out.wall_s:.1f}s)" + (f": {error}" if error else ""), log)
