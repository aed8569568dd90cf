"""The training loop as an importable function: ``train(config, workdir)``.

Everything a run needs to resume exactly lives in ``workdir``: orbax
checkpoints (params, optimizer state, step, data-iterator position),
``metrics.jsonl``, TensorBoard events and ``run.json`` (config, parameter
counts, FLOP convention, corpus hash, versions, status, final eval loss).
Re-running the same call continues from the newest readable checkpoint.
"""
from __future__ import annotations

import math
import os
import platform
import time
from typing import Any, Dict, Optional

import jax
import jax.numpy as jnp
import numpy as np

from lm import config as config_lib
from lm import flops as flops_lib
from lm import hardware, logs, optim, sharding, step as step_lib
from lm import params as params_lib
from lm.checkpoint import Checkpointer
from lm.config import ConfigError


class TrainingDiverged(RuntimeError):
  """Loss became NaN/Inf; the run is marked ``diverged`` in run.json."""


# Fields that may differ when resuming an existing workdir.
_RESUME_MUTABLE = {"train": {"progress", "tensorboard", "log_every",
                             "eval_every", "ckpt_every", "keep_checkpoints",
                             "steps_per_call", "eval_batches"}}
MFU_CONVENTION = "attention_inclusive"  # PaLM App. B model FLOPs, as MFU is defined


def _versions() -> Dict[str, str]:
  import flax
  import optax
  import orbax.checkpoint as ocp
  return {"python": platform.python_version(), "jax": jax.__version__,
          "flax": flax.__version__, "optax": optax.__version__,
          "orbax": getattr(ocp, "__version__", "?"), "numpy": np.__version__}


def _align(every: int, k: int) -> int:
  return 0 if every == 0 else int(math.ceil(every / k) * k)


def _check_resumable(old: Optional[dict], new_cfg: dict, workdir: str) -> None:
  if not old or "config" not in old:
    return
  for section in ("model", "data", "train"):
    a, b = old["config"].get(section, {}), new_cfg.get(section, {})
    for key in sorted(set(a) | set(b)):
      if key in _RESUME_MUTABLE.get(section, ()):
        continue
      if a.get(key) != b.get(key):
        raise ConfigError(
            f"{workdir} holds a run with {section}.{key}={a.get(key)!r}, but "
            f"this config says {b.get(key)!r}; use a new --workdir (or the "
            "same config) to resume")


def _to_config_dict(config: Any):
  import ml_collections
  if isinstance(config, ml_collections.ConfigDict):
    return config
  return ml_collections.ConfigDict(config)


def train(config: Any, workdir: str, *, verbose: bool = True) -> Dict[str, Any]:
  """Trains (or resumes) the run in ``workdir``; returns a summary dict.

  Raises ``ConfigError`` for bad input and ``TrainingDiverged`` on NaN/Inf.
  """
  from lm.data import build_dataset  # heavy imports kept local to the call
  from lm.data.tokenizers import save_tokenizer

  t_start = time.time()
  cd = _to_config_dict(config)
  # Validate every section before touching data (vocab is a placeholder here).
  pre = config_lib.from_config_dict(cd, vocab_size=256)
  sharding.maybe_initialize_distributed(pre.mesh)
  pi, pc = jax.process_index(), jax.process_count()
  is_main = pi == 0
  dataset = build_dataset(pre.data, batch_size=pre.train.batch_size,
                          seed=pre.train.seed, process_index=pi,
                          process_count=pc)
  cfg = config_lib.from_config_dict(cd, vocab_size=dataset.vocab_size)
  tc, mc = cfg.train, cfg.model
  T, B, K = cfg.data.seq_len, tc.batch_size, tc.steps_per_call
  if tc.flop_convention not in flops_lib.CONVENTIONS:
    raise ConfigError(f"train.flop_convention must be one of "
                      f"{sorted(flops_lib.CONVENTIONS)}, got "
                      f"{tc.flop_convention!r}")

  mesh = sharding.make_mesh(cfg.mesh)
  compiled = step_lib.compiled_for(mc, step_lib.StepOptions.from_train(tc),
                                   mesh, cfg.mesh.rules)
  hp = {k: jnp.asarray(v, jnp.float32)
        for k, v in optim.hparams_from(tc).items()}

  os.makedirs(workdir, exist_ok=True)
  run_json = os.path.join(workdir, "run.json")
  cfg_json = config_lib.to_jsonable(cfg)
  old = logs.read_json(run_json)
  _check_resumable(old, cfg_json, workdir)

  counts = params_lib.count_params(mc)
  fpt = flops_lib.flops_per_token(mc, T, tc.flop_convention)
  fpt_mfu = flops_lib.flops_per_token(mc, T, MFU_CONVENTION)
  peak, peak_source = hardware.device_peak_flops(dtype=mc.dtype)
  n_dev = jax.device_count()

  ckpt = Checkpointer(os.path.join(workdir, "checkpoints"),
                      keep=tc.keep_checkpoints)
  restored = ckpt.restore_latest(compiled.abstract_state)
  if restored is not None:
    start_step, state, data_state = restored
  else:
    start_step, data_state = 0, None
    state = compiled.init(jax.random.key(tc.seed))
  it = dataset.train_iterator(data_state)

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
  }
  if is_main:
    logs.write_json_atomic(run_json, meta)
    save_tokenizer(dataset.tokenizer, workdir)

  eval_np = np.stack(dataset.eval_batches(tc.eval_batches))
  eval_fn, eval_sh = compiled.eval_fn(B)
  eval_arr = step_lib.device_put_batch(
      eval_np, eval_sh, (eval_np.shape[0], B, eval_np.shape[2]))

  def evaluate(st) -> float:
    return float(eval_fn(st.params, eval_arr))

  log_every, eval_every = _align(tc.log_every, K), _align(tc.eval_every, K)
  ckpt_every = _align(tc.ckpt_every, K)
  logger = logs.MetricsLogger(workdir, total_steps=tc.steps,
                              start_step=start_step, enabled=is_main,
                              tensorboard=tc.tensorboard,
                              progress=tc.progress and verbose,
                              desc=os.path.basename(os.path.normpath(workdir)))
  step = start_step
  window_loss, window_n, window_t0 = 0.0, 0, time.time()
  last: Dict[str, Any] = {}
  train_loss = float("nan")
  try:
    while step < tc.steps:
      k = min(K, tc.steps - step)
      fn, batch_sh = compiled.train_fn(k, B)
      local = it.take(k)
      batch = step_lib.device_put_batch(local, batch_sh, (k, B, T + 1))
      state, m = fn(state, batch, hp)
      losses = np.asarray(m["loss"])
      if not np.all(np.isfinite(losses)):
        bad = step + int(np.argmin(np.isfinite(losses))) + 1
        raise TrainingDiverged(f"loss became {losses[~np.isfinite(losses)][0]}"
                               f" at step {bad}")
      step += k
      window_loss += float(losses.sum())
      window_n += k
      train_loss = float(losses[-1])
      done = step >= tc.steps
      now = time.time()
      tok_s = window_n * B * T / max(now - window_t0, 1e-9)
      mfu = hardware.mfu(tok_s * fpt_mfu, n_dev, peak)
      logger.advance(k, {"loss": f"{train_loss:.3f}",
                         "tok/s": f"{tok_s:,.0f}", "mfu": f"{mfu:.1%}"})
      if (log_every and step % log_every == 0) or done or (
          eval_every and step % eval_every == 0):
        rec = {"step": step, "tokens": step * B * T, "flops": fpt * step * B * T,
               "loss": window_loss / window_n, "lr": float(m["lr"][-1]),
               "grad_norm": float(m["grad_norm"][-1]),
               "tokens_per_s": tok_s, "mfu": mfu}
        if (eval_every and step % eval_every == 0) or done:
          rec["eval_loss"] = evaluate(state)
        logger.write(rec)
        last = rec
        window_loss, window_n, window_t0 = 0.0, 0, time.time()
      if (ckpt_every and step % ckpt_every == 0) or done:
        ckpt.save(step, state, it.get_state())
  except TrainingDiverged as e:
    meta.update(status="diverged", diverged_at_step=step, error=str(e),
                wall_time_s=meta.get("wall_time_s", 0) + time.time() - t_start)
    if is_main:
      logs.write_json_atomic(run_json, meta)
    raise
  finally:
    logger.close()
    ckpt.close()

  eval_loss = last.get("eval_loss")
  if eval_loss is None:  # resumed after the final step: evaluate again
    eval_loss = evaluate(state)
  wall = (old or {}).get("wall_time_s", 0.0) if restored else 0.0
  meta.update(status="completed", final_step=step, eval_loss=eval_loss,
              train_loss=last.get("loss", train_loss),
              tokens=step * B * T, flops=fpt * step * B * T,
              wall_time_s=wall + time.time() - t_start)
  if is_main:
    logs.write_json_atomic(run_json, meta)
  return meta
