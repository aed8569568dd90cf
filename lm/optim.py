"""Optimizer and learning-rate schedule.

AdamW with global-norm clipping; the learning rate follows the schedule named
by ``train.schedule`` (``lm.schedules``: cosine, linear, wsd), ending exactly
at the planned step count (Hoffmann et al. 2022, Sec. 3: "the cosine cycle
length should match the training horizon").

Hyper-parameters that vary between runs of a sweep (peak lr, warmup, steps,
the schedule and its settings, ...) enter as *traced* scalars (``Hparams``),
so one compiled train step serves every run with the same shapes.
"""
from __future__ import annotations

from typing import Dict

import jax
import jax.numpy as jnp
import optax

from lm import schedules
from lm.config import ConfigError, TrainConfig

Hparams = Dict[str, jax.Array]

# Every traced scalar of Hparams (lm.step builds placeholders from this list).
HPARAM_KEYS = ("lr", "warmup_steps", "steps", "min_lr_ratio", "weight_decay",
               "grad_clip", "schedule", "cooldown_shape", "decay_start")


def hparams_from(cfg: TrainConfig) -> Dict[str, float]:
  if cfg.warmup_steps >= cfg.steps:
    raise ConfigError(f"train.warmup_steps={cfg.warmup_steps} must be smaller "
                      f"than train.steps={cfg.steps}")
  hp = {"lr": float(cfg.lr), "warmup_steps": float(cfg.warmup_steps),
        "steps": float(cfg.steps), "min_lr_ratio": float(cfg.min_lr_ratio),
        "weight_decay": float(cfg.weight_decay),
        # train.grad_clip = 0 disables clipping (an infinite threshold).
        "grad_clip": float(cfg.grad_clip) if cfg.grad_clip > 0
                     else float("inf")}
  hp.update(schedules.schedule_hparams(cfg.schedule, cfg.cooldown_shape,
                                       cfg.steps, cfg.cooldown_fraction))
  assert set(hp) == set(HPARAM_KEYS)
  return hp


def traced_hparams(cfg: TrainConfig) -> Hparams:
  """``hparams_from(cfg)`` as float32 arrays: traced, so runs that differ only
  in them share one compiled step."""
  return {k: jnp.asarray(v, jnp.float32) for k, v in hparams_from(cfg).items()}


def learning_rate(step, hp: Hparams):
  """The lr at (1-based) update ``step`` under ``hp`` (lm.schedules)."""
  return schedules.learning_rate(step, hp)


def _decay_mask(params):
  # Decay matrices only; norm scales (1-D) are not decayed.
  return jax.tree.map(lambda p: p.ndim >= 2, params)


def make_optimizer(cfg: TrainConfig, hp: Hparams) -> optax.GradientTransformation:
  """AdamW (Loshchilov & Hutter 2019) + clipping; hp may hold tracers."""
  return optax.chain(
      optax.clip_by_global_norm(hp["grad_clip"]),
      optax.scale_by_adam(b1=cfg.b1, b2=cfg.b2, eps=cfg.eps),
      optax.add_decayed_weights(hp["weight_decay"], mask=_decay_mask),
      # count = updates already applied; update i (1-based) uses learning_rate(i).
      optax.scale_by_schedule(lambda count: -learning_rate(count + 1, hp)),
  )
