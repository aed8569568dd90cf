"""The training loop as an importable function: ``train(config, workdir)``.

Everything a run needs to resume exactly lives in ``workdir``: orbax
checkpoints (params, optimizer state, step, data-iterator position),
``metrics.jsonl``, TensorBoard events and ``run.json`` (config, parameter
counts, FLOP convention, corpus hash, versions, status, final eval loss).
Re-running the same call continues from the newest sound checkpoint
(``lm.checkpoint``: digests and config verified). One driver per workdir: the
run holds ``workdir/.lock`` (``lm.workdir``) while it runs.
"""
from __future__ import annotations

import os
import platform
import time
from typing import Any, Dict, Optional

import jax
import jax.numpy as jnp
import numpy as np

from lm import config as config_lib
from lm import evaluate as evaluate_lib
from lm import flops as flops_lib
from lm import hardware, logs, optim, sharding, step as step_lib
from lm import integrity
from lm import params as params_lib
from lm import profiling
from lm import workdir as workdir_lib
from lm.checkpoint import Checkpointer
from lm.config import ConfigError


class TrainingDiverged(RuntimeError):
  """Loss became NaN/Inf; the run is marked ``diverged`` in run.json."""


class _SuspectCheckpoint(Exception):
  """NaN/Inf on the first step after a restore: the checkpoint was moved
  aside; training starts again from the one before it."""


MFU_CONVENTION = "attention_inclusive"  # PaLM App. B model FLOPs, as MFU is defined


def _versions() -> Dict[str, str]:
  import flax
  import optax
  import orbax.checkpoint as ocp
  return {"python": platform.python_version(), "jax": jax.__version__,
          "flax": flax.__version__, "optax": optax.__version__,
          "orbax": getattr(ocp, "__version__", "?"), "numpy": np.__version__}


def _check_resumable(old: Optional[dict], new_cfg: dict, workdir: str,
                     ignore=()) -> None:
  """Refuses a config that differs from the run already in ``workdir``
  (except ``lm.config.RESUME_MUTABLE`` fields, which cannot change results)."""
  if not old or "config" not in old:
    return
  skip = set(config_lib.RESUME_MUTABLE) | set(ignore)
  for section in ("model", "data", "train"):
    a, b = old["config"].get(section, {}), new_cfg.get(section, {})
    for key in sorted(set(a) | set(b)):
      if (section, key) in skip:
        continue
      if a.get(key) != b.get(key):
        raise ConfigError(
            f"{workdir} holds a run with {section}.{key}={a.get(key)!r}, but "
            f"this config says {b.get(key)!r}; use a new --workdir (or the "
            "same config) to resume")


def _crossed(step: int, k: int, every: int) -> bool:
  """Did the chunk (step - k, step] pass a multiple of ``every``?"""
  return bool(every) and step // every > (step - k) // every


def _peak_dtype(dtype: str) -> str:
  # XLA runs f32 matmuls on GPU tensor cores as TF32 unless asked for
  # "highest" precision, so f32 MFU is measured against the TF32 peak there.
  precision = str(jax.config.jax_default_matmul_precision or "").lower()
  if (dtype == "float32" and jax.default_backend() == "gpu"
      and precision not in ("highest", "float32")):
    return "tfloat32"
  return dtype


def _to_config_dict(config: Any):
  from lm.config_dict import ConfigDict
  if isinstance(config, ConfigDict):
    return config
  return ConfigDict(config)


def _checkpoint_check(cfg_json: dict, workdir: str,
                      provenance: Optional[dict]):
  """Refuses a checkpoint written by another config or another caller (the
  checkpoint's own record: deleting run.json does not bypass this)."""

  def check(step: int, record: dict) -> None:
    if not record:  # written before checkpoints carried their config
      return
    where = f"{workdir} (checkpoint at step {step})"
    _check_resumable({"config": record.get("config") or {}}, cfg_json, where)
    for key, want in sorted((provenance or {}).items()):
      got = (record.get("provenance") or {}).get(key)
      if got != want:
        raise ConfigError(
            f"{where} was written with {key}={str(got)[:16]!r}, not "
            f"{str(want)[:16]!r} (another sweep or config); use a new "
            "--workdir, or the original config to resume")
  return check


def train(config: Any, workdir: str, *, verbose: bool = True,
          provenance: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
  """Trains (or resumes) the run in ``workdir``; returns a summary dict.

  ``provenance`` (e.g. ``{"sweep_config_hash": ...}``) is stored in run.json
  and in every checkpoint, and a checkpoint recording other values is refused.
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
  with workdir_lib.locked(workdir, what="lm.train run",
                          enabled=jax.process_index() == 0):
    while True:
      try:
        return _train(cd, pre, workdir, verbose, provenance)
      except _SuspectCheckpoint:
        continue  # the suspect checkpoint is moved aside: the next is older


def _train(cd, pre, workdir: str, verbose: bool,
           provenance: Optional[Dict[str, Any]]) -> Dict[str, Any]:
  from lm.data import build_dataset  # heavy imports kept local to the call
  from lm.data.tokenizers import save_tokenizer

  t_start = time.time()
  pi, pc = jax.process_index(), jax.process_count()
  is_main = pi == 0
  run_json = os.path.join(workdir, "run.json")
  old = logs.read_json(run_json)
  # Refuse a changed config before spending time on data / tokenizers.
  _check_resumable(old, config_lib.to_jsonable(pre), workdir,
                   ignore={("model", "vocab_size")})
  dataset = build_dataset(pre.data, batch_size=pre.train.batch_size,
                          seed=pre.train.seed, process_index=pi,
                          process_count=pc)
  cfg = config_lib.from_config_dict(cd, vocab_size=dataset.vocab_size)
  tc, mc = cfg.train, cfg.model
  T, B, K = cfg.data.seq_len, tc.batch_size, tc.steps_per_call
  # Refuse before training: too little data, or an eval set that cannot be made.
  eval_set = evaluate_lib.check_data(dataset, tc, T, pc)
  cfg_json = config_lib.to_jsonable(cfg)
  _check_resumable(old, cfg_json, workdir)

  mesh = sharding.make_mesh(cfg.mesh)
  compiled = step_lib.compiled_for(mc, step_lib.StepOptions.from_train(tc),
                                   mesh, cfg.mesh.rules)
  hp = {k: jnp.asarray(v, jnp.float32)
        for k, v in optim.hparams_from(tc).items()}
  os.makedirs(workdir, exist_ok=True)

  counts = params_lib.count_params(mc)
  fpt = flops_lib.flops_per_token(mc, T, tc.flop_convention)
  fpt_mfu = flops_lib.flops_per_token(mc, T, MFU_CONVENTION)
  # The peak only feeds MFU: an unknown device logs NaN MFU, it never stops a run.
  peak, peak_source = hardware.device_peak_flops(dtype=_peak_dtype(mc.dtype),
                                                 strict=False)
  n_dev = jax.device_count()

  ckpt = Checkpointer(os.path.join(workdir, "checkpoints"),
                      keep=tc.keep_checkpoints)
  try:
    restored = ckpt.restore_latest(
        compiled.abstract_state,
        check=_checkpoint_check(cfg_json, workdir, provenance))
  except BaseException:
    ckpt.close()
    raise
  ckpt_record = {"config": cfg_json,
                 "config_sha256": integrity.config_sha256(cfg_json),
                 "provenance": dict(provenance or {})}
  if restored is not None:
    start_step, state, data_state = (restored.step, restored.state,
                                     restored.data_state)
  else:
    start_step, data_state = 0, None
    state = compiled.init(jax.random.key(tc.seed))
  if (restored is not None and start_step >= tc.steps and old
      and old.get("status") == "completed"):
    ckpt.close()
    return old  # finished before: nothing to do, nothing to rewrite
  it = dataset.train_iterator(data_state)
  # Wall time accumulates over attempts (a resumed run adds to its old total).
  prior_wall = float((old or {}).get("wall_time_s") or 0.0) if restored else 0.0

  meta = {
      "status": "running", "config": cfg_json,
      "params": counts.to_dict(), "flop_convention": tc.flop_convention,
      "flop_convention_citation": flops_lib.CONVENTIONS[tc.flop_convention],
      "flops_per_token": fpt, "mfu_convention": MFU_CONVENTION,
      "peak_flops_per_device": peak, "peak_flops_source": peak_source,
      "n_devices": n_dev, "n_processes": pc,
      "mesh": dict(zip(mesh.axis_names, map(int, mesh.devices.shape))),
      "device_kind": jax.devices()[0].device_kind, "data": dataset.metadata,
      "versions": _versions(), "planned_steps": tc.steps,
      "tokens_per_step": B * T, "resumed_from_step": start_step or None,
      "wall_time_s": prior_wall, "provenance": dict(provenance or {}),
      **evaluate_lib.data_fields(dataset, eval_set, tc.steps * B * T),
  }

  def write_meta(**updates) -> None:
    meta.update(updates, wall_time_s=prior_wall + time.time() - t_start)
    if is_main:
      logs.write_json_atomic(run_json, meta)

  write_meta()
  if is_main:
    save_tokenizer(dataset.tokenizer, workdir)

  evaluator = evaluate_lib.Evaluator(
      compiled, eval_set, tc.eval_batch_size, flops_per_token=fpt,
      process_index=pi, process_count=pc)
  prior = (old or {}) if restored else {}
  meta.update(eval=evaluator.metadata(),
              eval_flops=float(prior.get("eval_flops") or 0.0),
              eval_time_s=float(prior.get("eval_time_s") or 0.0))

  def evaluate(st) -> Dict[str, float]:
    t0 = time.time()
    res = evaluator(st.params)  # cumulative cost over this run's evals:
    meta.update(eval_flops=meta["eval_flops"] + res.flops,
                eval_time_s=meta["eval_time_s"] + time.time() - t0)
    meta["eval"]["se_per_sequence"] = res.se_per_sequence  # for comparison
    return {"eval_loss": res.loss, "eval_loss_se": res.se}

  logger = logs.MetricsLogger(workdir, total_steps=tc.steps,
                              start_step=start_step, enabled=is_main,
                              tensorboard=tc.tensorboard,
                              progress=tc.progress and verbose,
                              desc=os.path.basename(os.path.normpath(workdir)))
  prof = profiling.StepTrace(tc.profile_steps, os.path.join(workdir, "profile"),
                             enabled=is_main)
  step = start_step
  window_loss, window_n, window_t0 = 0.0, 0, time.time()
  last: Dict[str, Any] = {}
  try:
    while step < tc.steps:
      k = min(K, tc.steps - step)
      prof.before(step)
      fn, batch_sh = compiled.train_fn(k, B)
      local = it.take(k)
      batch = step_lib.device_put_batch(local, batch_sh, (k, B, T + 1))
      state, m = fn(state, batch, hp)
      prof.after(step + k, m)
      losses = np.asarray(m["loss"])
      if not np.all(np.isfinite(losses)):
        bad = step + int(np.argmin(np.isfinite(losses))) + 1
        if restored is not None and step == start_step:
          # Bad checkpoint first, divergence second: retrain from the one
          # before (a run that really diverges here diverges again later).
          ckpt.reject(start_step, f"the loss was {losses[~np.isfinite(losses)][0]}"
                      " on the first step after restoring it")
          raise _SuspectCheckpoint()
        write_meta(status="diverged", diverged_at_step=bad,
                   error=f"loss {losses[~np.isfinite(losses)][0]} at step {bad}")
        raise TrainingDiverged(f"loss became {losses[~np.isfinite(losses)][0]}"
                               f" at step {bad}")
      step += k
      window_loss += float(losses.sum())
      window_n += k
      done = step >= tc.steps
      tok_s = window_n * B * T / max(time.time() - window_t0, 1e-9)
      mfu = hardware.mfu(tok_s * fpt_mfu, n_dev, peak)
      logger.advance(k, {"loss": f"{float(losses[-1]):.3f}",
                         "tok/s": f"{tok_s:,.0f}", "mfu": f"{mfu:.1%}"})
      do_eval = done or _crossed(step, k, tc.eval_every)
      if do_eval or _crossed(step, k, tc.log_every):
        rec = {"step": step, "tokens": step * B * T, "flops": fpt * step * B * T,
               "loss": window_loss / window_n, "lr": float(m["lr"][-1]),
               "grad_norm": float(m["grad_norm"][-1]),
               "tokens_per_s": tok_s, "mfu": mfu}
        if do_eval:
          rec.update(evaluate(state))
        logger.write(rec)
        last = rec
        window_loss, window_n, window_t0 = 0.0, 0, time.time()
      if done or _crossed(step, k, tc.ckpt_every):
        ckpt.save(step, state, it.get_state(), ckpt_record)
        if not done:
          write_meta()  # keeps wall_time_s current across crashes
  finally:
    prof.stop()
    logger.close()
    ckpt.close()

  if "eval_loss_se" not in last:  # crashed after the final save: recover it
    last = logs.last_record(os.path.join(workdir, "metrics.jsonl")) or {}
    if last.get("step") != step or "eval_loss_se" not in last:
      last = {**evaluate(state), "loss": float("nan")}
  write_meta(status="completed", final_step=step, eval_loss=last["eval_loss"],
             eval_loss_se=last["eval_loss_se"], train_loss=last["loss"],
             tokens=step * B * T, flops=fpt * step * B * T)
  return meta
