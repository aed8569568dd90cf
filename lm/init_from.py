"""Starting a run from another run's checkpoint: ``train(..., init_from=(dir, step))``.

A WSD branch (``experiments.trunks``) is the WSD run of S steps, minus the
first P steps it shares with its trunk: the trunk is the same model, data,
optimizer and seed with a learning rate that agrees with the branch's on
updates 1..P. The branch adopts the trunk's checkpoint at step P instead of
training those steps again, and is then exactly that WSD run trained from
scratch (same initialisation, the same batch at every step, the same
updates), which is what its results mean.

``adopt`` proves it before any training, each failure one line:

* the checkpoint at ``step`` exists and passes ``lm.checkpoint``'s integrity
  check (per-array digests, finite values);
* its config (the integrity record's) equals this run's except for the
  schedule fields ``SCHEDULE_FIELDS`` and ``lm.config.RESUME_MUTABLE``;
* its learning rate agrees bitwise with this run's on every update 1..step
  (both computed by ``lm.schedules.learning_rate``), so differing schedule
  fields cannot have changed the shared steps;
* its provenance (the sweep's config hash) equals this run's;
* its data position is ``step``.

The other run's directory is opened read-only and never changed; run.json
records what was adopted (``INIT_FROM_KEYS``).
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Dict, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from lm import config as config_lib
from lm import integrity
from lm import optim
from lm.checkpoint import Checkpointer, CheckpointError, Restored
from lm.config import ConfigError

# train fields a branch may set differently from its trunk: its schedule
# (agreement on the shared updates is checked numerically instead).
SCHEDULE_FIELDS = ("steps", "lr", "warmup_steps", "min_lr_ratio", "schedule",
                   "cooldown_fraction", "cooldown_shape")
INIT_FROM_KEYS = ("run_dir", "step", "config_sha256", "fingerprint_sha256")


# lr at a vector of updates, traced hp: one compilation per length bucket.
_lrs = jax.jit(jax.vmap(optim.learning_rate, in_axes=(0, None)))


def _learning_rates(train_cfg, n: int) -> np.ndarray:
  """lr at updates 1..n under ``train_cfg`` (lm.schedules.learning_rate)."""
  hp = optim.traced_hparams(train_cfg)
  bucket = 1 << max(0, int(n - 1).bit_length())  # the next power of two
  steps = jnp.arange(1, bucket + 1, dtype=jnp.float32)
  return np.asarray(_lrs(steps, hp))[:n]


def check_schedules_agree(theirs_train: Dict[str, Any], ours, step: int,
                          where: str) -> None:
  """ConfigError unless the lr of ``theirs_train`` (a run.json train dict)
  equals that of ``ours`` (a TrainConfig) on updates 1..step."""
  theirs = dataclasses.replace(
      ours, **{k: theirs_train[k] for k in SCHEDULE_FIELDS if k in theirs_train})
  a, b = _learning_rates(theirs, step), _learning_rates(ours, step)
  bad = np.flatnonzero(a != b)
  if bad.size:
    i = int(bad[0])
    raise ConfigError(
        f"init_from {where}: its learning rate differs from this run's at "
        f"update {i + 1} ({a[i]:.6g} vs {b[i]:.6g}; its schedule "
        f"{theirs.schedule}, {theirs.steps} steps, this run's {ours.schedule}, "
        f"{ours.steps} steps): only a run whose schedule agrees up to step "
        f"{step} can be continued (a wsd run whose cooldown starts at or "
        "after it)")


def adopt(init_from: Tuple[str, int], abstract_state: Any, cfg, cfg_json,
          provenance: Optional[Dict[str, Any]]) -> Tuple[Restored, Dict[str, Any]]:
  """(the other run's verified checkpoint, the run.json ``init_from`` record)
  or a one-line ``ConfigError`` / ``CheckpointError`` (module docstring)."""
  run_dir, step = os.path.abspath(init_from[0]), init_from[1]
  if not isinstance(step, int) or isinstance(step, bool) or step < 1:
    raise ConfigError(f"init_from step must be a positive integer, got {step!r}")
  if step >= cfg.train.steps:
    raise ConfigError(f"init_from step {step} must be below this run's "
                      f"train.steps={cfg.train.steps}")
  where = f"{run_dir} (checkpoint at step {step})"
  ckpt_dir = os.path.join(run_dir, "checkpoints")
  if not os.path.isdir(ckpt_dir):
    raise ConfigError(f"init_from {run_dir}: no checkpoints directory; train "
                      f"that run to step {step} first")
  ckpt = Checkpointer(ckpt_dir, read_only=True)
  try:
    if step not in ckpt.all_steps():
      raise ConfigError(f"init_from {run_dir}: no checkpoint at step {step} "
                        f"(it has {ckpt.all_steps()}); train it to that step "
                        "first")
    record = ckpt.record(step)
    if not record.get("fingerprint"):
      raise CheckpointError(f"init_from {where}: no integrity record; only "
                            "verified checkpoints are adopted")
    diff = config_lib.differing_field(
        record.get("config") or {}, cfg_json,
        {("train", k) for k in SCHEDULE_FIELDS})
    if diff is not None:
      name, theirs, ours = diff
      raise ConfigError(f"init_from {where} was written with {name}={theirs!r}"
                        f", but this run has {ours!r}; a run can only start "
                        "from a run that differs in its schedule")
    want = dict(provenance or {})
    if (record.get("provenance") or {}) != want:
      raise ConfigError(f"init_from {where} was written with provenance "
                        f"{record.get('provenance')!r}, not {want!r} (another "
                        "sweep or config)")
    check_schedules_agree((record.get("config") or {}).get("train", {}),
                          cfg.train, step, where)
    restored = ckpt.restore_step(step, abstract_state, record)
  finally:
    ckpt.close()
  reason = Checkpointer.verify(restored)
  if reason is not None:
    raise CheckpointError(f"init_from {where} is not usable: {reason}; "
                          "its directory is unchanged")
  if restored.data_state.get("step") != step:
    raise CheckpointError(f"init_from {where}: its data position is "
                          f"{restored.data_state!r}, not step {step}")
  fp = record.get("fingerprint")
  return restored, dict(zip(INIT_FROM_KEYS, (
      run_dir, step, record.get("config_sha256"),
      integrity.config_sha256(fp) if fp else None)))
