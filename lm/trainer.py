"""The training loop as an importable function: ``train(config, workdir)``.

Everything a run needs to resume exactly lives in ``workdir``: orbax
checkpoints (params, optimizer state, step, data-iterator position),
``metrics.jsonl``, TensorBoard events and ``run.json`` (config, parameter
counts, FLOP convention, schedule, corpus hash, versions, status, final eval
loss). Re-running the same call continues from the newest sound checkpoint
(``lm.checkpoint``: digests and config verified). One driver per workdir: the
run holds ``workdir/.lock`` (``lm.workdir``) while it runs.

A run can also start from another run's checkpoint (``init_from``, a WSD
trunk's branch point: ``lm.init_from``), stop early at a step (``stop_at``:
the trunk trained to its next branch point) and keep the checkpoints of
chosen steps (``train.keep_steps``).

``_train`` is a sequence of steps, one function each: ``load`` (config
checks, data, eval set, compiled steps), ``start_at`` (own checkpoint, another
run's, or a fresh init), ``run_meta`` (run.json) and ``Evaluation``, all in
``lm.run_setup``; then ``_loop`` (the jitted chunks, divergence, logging,
evals, checkpoints) and ``_finish``.
"""
from __future__ import annotations

import os
import time
from typing import Any, Callable, Dict, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from lm import config as config_lib
from lm import flops as flops_lib
from lm import hardware, logs, sharding, step as step_lib
from lm import integrity
from lm import profiling
from lm import workdir as workdir_lib
from lm.checkpoint import Checkpointer
from lm.config import ConfigError
from lm.run_setup import (MFU_CONVENTION, Evaluation, Setup, Start,
                          load, run_meta, start_at)
from lm.config.config_dict import ConfigDict
from lm.data.tokenizers import save_tokenizer


class TrainingDiverged(RuntimeError):
  """Loss became NaN/Inf; the run is marked ``diverged`` in run.json."""


class _SuspectCheckpoint(Exception):
  """NaN/Inf on the first step after a restore: the checkpoint was moved
  aside; training starts again from the one before it."""


def _crossed(step: int, k: int, every: int) -> bool:
  """Did the chunk (step - k, step] pass a multiple of ``every``?"""
  return bool(every) and step // every > (step - k) // every


def _to_config_dict(config: Any):
  if isinstance(config, ConfigDict):
    return config
  return ConfigDict(config)


def train(config: Any, workdir: str, *, verbose: bool = True,
          provenance: Optional[Dict[str, Any]] = None,
          init_from: Optional[Tuple[str, int]] = None,
          stop_at: Optional[int] = None) -> Dict[str, Any]:
  """Trains (or resumes) the run in ``workdir``; returns a summary dict.

  ``provenance`` (e.g. ``{"sweep_config_hash": ...}``) is stored in run.json
  and in every checkpoint, and a checkpoint recording other values is refused.
  ``init_from=(run_dir, step)``: when ``workdir`` has no checkpoint yet, start
  from ``run_dir``'s checkpoint at ``step`` instead of from scratch, if it
  proves to be this run's own first ``step`` steps (``lm.init_from``; never
  writes to ``run_dir``; recorded in run.json ``init_from``).
  ``stop_at``: train only up to that step (< train.steps), save a checkpoint
  there and return with status ``stopped``, without the final eval.
  Raises ``ConfigError`` for bad input, ``WorkdirBusy`` when another process
  trains in ``workdir`` and ``TrainingDiverged`` on NaN/Inf.
  """
  cd = _to_config_dict(config)
  # Validate every section before touching data (vocab is a placeholder here).
  pre = config_lib.from_config_dict(cd, vocab_size=256)
  sharding.maybe_initialize_distributed(pre.mesh)
  if pre.train.flop_convention not in flops_lib.CONVENTIONS:
    raise ConfigError(f"train.flop_convention must be one of "
                      f"{sorted(flops_lib.CONVENTIONS)}, got "
                      f"{pre.train.flop_convention!r}")
  if stop_at is not None and not (isinstance(stop_at, int) and
                                  0 < stop_at <= pre.train.steps):
    raise ConfigError(f"stop_at must be a step in [1, train.steps="
                      f"{pre.train.steps}], got {stop_at!r}")
  with workdir_lib.locked(workdir, what="lm.train run",
                          enabled=jax.process_index() == 0):
    while True:
      try:
        return _train(cd, pre, workdir, verbose, provenance, init_from,
                      stop_at or pre.train.steps)
      except _SuspectCheckpoint:
        continue  # the suspect checkpoint is moved aside: the next is older


# -------------------------------------------------------------------- run


def _train(cd, pre, workdir: str, verbose: bool,
           provenance: Optional[Dict[str, Any]], init_from, stop: int
           ) -> Dict[str, Any]:
  t_start = time.time()
  su = load(cd, pre, workdir)
  tc = su.cfg.train
  os.makedirs(workdir, exist_ok=True)
  ckpt = Checkpointer(os.path.join(workdir, "checkpoints"),
                      keep=tc.keep_checkpoints, keep_steps=tc.keep_steps)
  try:
    start = start_at(su, ckpt, workdir, provenance, init_from)
  except BaseException:
    ckpt.close()
    raise
  old = su.old
  if (start.own and start.step >= tc.steps and old
      and old.get("status") == "completed"):
    ckpt.close()
    return old  # finished before: nothing to do, nothing to rewrite
  meta = run_meta(su, start, workdir, provenance)
  prior_wall = meta["wall_time_s"]
  is_main = jax.process_index() == 0

  def write_meta(**updates) -> None:
    meta.update(updates, wall_time_s=prior_wall + time.time() - t_start)
    if is_main:
      logs.write_json_atomic(os.path.join(workdir, "run.json"), meta)

  write_meta()
  if is_main:
    save_tokenizer(su.dataset.tokenizer, workdir)
  evaluate = Evaluation(su, meta, (old or {}) if start.own else {})
  ckpt_record = {"config": su.cfg_json,
                 "config_sha256": integrity.config_sha256(su.cfg_json),
                 "provenance": dict(provenance or {}),
                 "init_from": start.init_record}
  try:
    state, step, last = _loop(su, start, stop, ckpt, ckpt_record, evaluate,
                              write_meta, workdir, verbose)
  finally:
    ckpt.close()
  return _finish(su, start, state, step, stop, last, evaluate, write_meta,
                 meta, workdir)


def _chunk(step: int, stop: int, K: int, keep_steps) -> int:
  """Steps of the next call: to the next multiple of K, or sooner to the next
  kept step or ``stop``. Calls end on multiples of K whatever step a run
  starts from, so a run restored at any step logs the same report windows
  as the uninterrupted run."""
  nxt = min([s for s in keep_steps if s > step] + [stop])
  return min(K - step % K, nxt - step)


def _check_finite(losses: np.ndarray, step: int, start: Start,
                  ckpt: Checkpointer, write_meta: Callable) -> None:
  """NaN/Inf: a suspect own checkpoint (first chunk after restoring it) is
  moved aside and retried from the one before; else the run diverged."""
  if np.all(np.isfinite(losses)):
    return
  bad_loss = losses[~np.isfinite(losses)][0]
  bad = step + int(np.argmin(np.isfinite(losses))) + 1
  if start.own and step == start.step:
    # Bad checkpoint first, divergence second: retrain from the one before
    # (a run that really diverges here diverges again later).
    ckpt.reject(start.step, f"the loss was {bad_loss} on the first step after "
                "restoring it")
    raise _SuspectCheckpoint()
  write_meta(status="diverged", diverged_at_step=bad,
             error=f"loss {bad_loss} at step {bad}")
  raise TrainingDiverged(f"loss became {bad_loss} at step {bad}")


def _loop(su: Setup, start: Start, stop: int, ckpt: Checkpointer,
          ckpt_record: dict, evaluate: Evaluation, write_meta: Callable,
          workdir: str, verbose: bool):
  """Trains from ``start`` to ``stop``: (state, step, last metrics record)."""
  tc, T = su.cfg.train, su.cfg.data.seq_len
  B, K = tc.batch_size, tc.steps_per_call
  is_main = jax.process_index() == 0
  fpt_mfu = flops_lib.flops_per_token(su.cfg.model, T, MFU_CONVENTION)
  peak, n_dev = evaluate.meta["peak_flops_per_device"], jax.device_count()
  it = su.dataset.train_iterator(start.data_state)
  fn, batch_sh = su.compiled.train_fn_upto(K, B)
  logger = logs.MetricsLogger(workdir, total_steps=tc.steps,
                              start_step=start.step, enabled=is_main,
                              tensorboard=tc.tensorboard,
                              progress=tc.progress and verbose,
                              desc=os.path.basename(os.path.normpath(workdir)))
  prof = profiling.StepTrace(tc.profile_steps, os.path.join(workdir, "profile"),
                             enabled=is_main)
  state, step, last = start.state, start.step, {}
  window_loss, window_n, window_t0 = 0.0, 0, time.time()
  try:
    while step < stop:
      k = _chunk(step, stop, K, tc.keep_steps)
      prof.before(step)
      local = it.take(k)
      if k < K:  # the traced trip count runs only the first k of K slots
        local = np.concatenate([local, np.zeros((K - k,) + local.shape[1:],
                                                local.dtype)])
      batch = step_lib.device_put_batch(local, batch_sh, (K, B, T + 1))
      state, m = fn(state, batch, jnp.int32(k), su.hp)
      prof.after(step + k, m)
      losses = np.asarray(m["loss"])[:k]
      _check_finite(losses, step, start, ckpt, write_meta)
      step += k
      window_loss += float(losses.sum())
      window_n += k
      done, at_stop = step >= tc.steps, step >= stop
      tok_s = window_n * B * T / max(time.time() - window_t0, 1e-9)
      mfu = hardware.mfu(tok_s * fpt_mfu, n_dev, peak)
      logger.advance(k, {"loss": f"{float(losses[-1]):.3f}",
                         "tok/s": f"{tok_s:,.0f}", "mfu": f"{mfu:.1%}"})
      do_eval = done or _crossed(step, k, tc.eval_every)
      if do_eval or at_stop or _crossed(step, k, tc.log_every):
        rec = {"step": step, "tokens": step * B * T,
               "flops": su.fpt * step * B * T,
               "loss": window_loss / window_n, "lr": float(m["lr"][k - 1]),
               "grad_norm": float(m["grad_norm"][k - 1]),
               "tokens_per_s": tok_s, "mfu": mfu}
        if do_eval:
          rec.update(evaluate(state))
        logger.write(rec)
        last = rec
        window_loss, window_n, window_t0 = 0.0, 0, time.time()
      if (at_stop or step in tc.keep_steps
          or _crossed(step, k, tc.ckpt_every)):
        ckpt.save(step, state, it.get_state(), ckpt_record)
        if not done:
          write_meta()  # keeps wall_time_s current across crashes
  finally:
    prof.stop()
    logger.close()
  return state, step, last


def _finish(su: Setup, start: Start, state, step: int, stop: int,
            last: dict, evaluate: Evaluation, write_meta: Callable,
            meta: Dict[str, Any], workdir: str) -> Dict[str, Any]:
  """Final run.json: 'stopped' at ``stop`` < train.steps, else 'completed'
  with the final eval (recovered from metrics.jsonl after a crash)."""
  tpt = su.tokens_per_step
  # FLOPs trained in this directory: all of them, or those after init_from.
  base = (start.init_record or {}).get("step", 0)
  counts = dict(tokens=step * tpt, flops=su.fpt * step * tpt,
                compute_spent=su.fpt * (step - base) * tpt)
  if stop < su.cfg.train.steps:
    write_meta(status="stopped", stopped_at_step=step, **counts)
    return meta
  if "eval_loss_se" not in last:  # crashed after the final save: recover it
    last = logs.last_record(os.path.join(workdir, "metrics.jsonl")) or {}
    if last.get("step") != step or "eval_loss_se" not in last:
      last = {**evaluate(state), "loss": float("nan")}
  write_meta(status="completed", final_step=step, eval_loss=last["eval_loss"],
             eval_loss_se=last["eval_loss_se"], train_loss=last["loss"],
             **counts)
  return meta
