"""Optimizer and learning-rate schedule.

AdamW with global-norm clipping; linear warmup then cosine decay to
``min_lr_ratio`` x peak, ending exactly at the planned step count (Hoffmann et
al. 2022, Sec. 3: "the cosine cycle length should match the training
horizon"; decay to 10x below peak, App. B).

Hyper-parameters that vary between runs of a sweep (peak lr, warmup, steps,
...) enter as *traced* scalars (``Hparams``), so one compiled train step
serves every run with the same shapes.
"""
from __future__ import annotations

from typing import Dict

import jax
import jax.numpy as jnp
import optax

from lm.config import ConfigError, TrainConfig

Hparams = Dict[str, jax.Array]


def hparams_from(cfg: TrainConfig) -> Dict[str, float]:
  if cfg.warmup_steps >= cfg.steps:
    raise ConfigError(f"train.warmup_steps={cfg.warmup_steps} must be smaller "
                      f"than train.steps={cfg.steps}")
  return {"lr": float(cfg.lr), "warmup_steps": float(cfg.warmup_steps),
          "steps": float(cfg.steps), "min_lr_ratio": float(cfg.min_lr_ratio),
          "weight_decay": float(cfg.weight_decay),
          # train.grad_clip = 0 disables clipping (an infinite threshold).
          "grad_clip": float(cfg.grad_clip) if cfg.grad_clip > 0
                       else float("inf")}


def learning_rate(step, hp: Hparams):
  """Linear warmup to lr, then cosine to min_lr_ratio*lr at step == steps."""
  step = jnp.asarray(step, jnp.float32)
  warm = hp["lr"] * step / jnp.maximum(hp["warmup_steps"], 1.0)
  progress = jnp.clip((step - hp["warmup_steps"])
                      / jnp.maximum(hp["steps"] - hp["warmup_steps"], 1.0),
                      0.0, 1.0)
  # Cosine decay (Loshchilov & Hutter 2017, SGDR Eq. 5) to a floor of min_lr_ratio.
  cosine = hp["min_lr_ratio"] + (1.0 - hp["min_lr_ratio"]) * 0.5 * (
      1.0 + jnp.cos(jnp.pi * progress))
  return jnp.where(step < hp["warmup_steps"], warm, hp["lr"] * cosine)


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
