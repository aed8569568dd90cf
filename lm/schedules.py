"""Learning-rate schedules: a registry, one entry per schedule.

Every schedule warms up linearly from 0 to the peak ``lr`` over
``warmup_steps`` (Goyal et al. 2017, Sec. 2.2), then follows its own shape to
``min_lr_ratio`` x ``lr`` at step ``steps`` (the planned end):

* ``cosine``: cosine decay over the whole post-warmup run (Loshchilov &
  Hutter 2017, SGDR Eq. 5), Chinchilla's choice with the cycle matched to the
  run and a floor of 10 % of peak (Hoffmann et al. 2022, Sec. 3, App. B);
* ``linear``: linear decay over the whole post-warmup run; to zero with
  ``min_lr_ratio=0`` ("D2Z", Bergsma et al. 2025, "Straight to Zero: Why
  Linearly Decaying the Learning Rate to Zero Works Best for LLMs");
* ``wsd``: warmup-stable-decay, constant at the peak until the cooldown
  starts at step ``decay_start = steps - round(cooldown_fraction * steps)``,
  then a cooldown of ``cooldown_shape`` to the floor (Hägele et al. 2024,
  "Scaling Laws and Compute-Optimal Training Beyond Fixed Training
  Durations", Sec. 3: 20 % cooldown, (1 - sqrt) shape). With
  ``cooldown_fraction=0`` it is warmup + constant (a trunk that branches
  cool down from, ``experiments.trunks``).

Every quantity that varies between runs (peak, warmup, steps, floor, decay
start, and even which schedule and which cooldown shape) enters as a traced
scalar of ``lm.optim.Hparams``: the entry is chosen by ``lax.switch`` on its
index, so one compiled train step serves every run of a model shape,
whatever its schedule. The 1-based update index i uses ``learning_rate(i)``
(``lm.optim``).
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Dict, Mapping, Tuple

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class Schedule:
  """One registry entry: ``decay(step, hp)`` is the post-warmup multiplier of
  the peak lr, in [min_lr_ratio, 1], traced in ``step`` and ``hp``."""
  name: str
  decay: Callable[[jax.Array, Mapping[str, jax.Array]], jax.Array]
  citation: str
  label: str


@dataclasses.dataclass(frozen=True)
class CooldownShape:
  """``fn(p)``: 1 at p = 0 (cooldown start) to 0 at p = 1 (end)."""
  name: str
  fn: Callable[[jax.Array], jax.Array]
  citation: str


def _progress(step, start, end):
  """(step - start) / (end - start), clipped to [0, 1]."""
  return jnp.clip((step - start) / jnp.maximum(end - start, 1.0), 0.0, 1.0)


def _floor(frac, hp):
  """min_lr_ratio + (1 - min_lr_ratio) * frac: frac in [0, 1] -> [floor, 1]."""
  return hp["min_lr_ratio"] + (1.0 - hp["min_lr_ratio"]) * frac


def _cosine(step, hp):
  p = _progress(step, hp["warmup_steps"], hp["steps"])
  # Loshchilov & Hutter 2017, SGDR Eq. 5 (one cycle), floored (the
  # expression lm.optim used before the registry: same bits).
  return hp["min_lr_ratio"] + (1.0 - hp["min_lr_ratio"]) * 0.5 * (
      1.0 + jnp.cos(jnp.pi * p))


def _linear(step, hp):
  p = _progress(step, hp["warmup_steps"], hp["steps"])
  return _floor(1.0 - p, hp)  # Bergsma et al. 2025: linear decay (to zero)


COOLDOWN_SHAPES: Dict[str, CooldownShape] = {
    s.name: s for s in (
        CooldownShape("linear", lambda p: 1.0 - p,
                      "Hägele et al. 2024, Sec. 3 (linear cooldown)"),
        CooldownShape("1-sqrt", lambda p: 1.0 - jnp.sqrt(p),
                      "Hägele et al. 2024, Sec. 3, Fig. 4 (1 - sqrt cooldown)"),
    )
}
COOLDOWN_SHAPE_NAMES: Tuple[str, ...] = tuple(COOLDOWN_SHAPES)


def _wsd(step, hp):
  p = _progress(step, hp["decay_start"], hp["steps"])
  fns = [s.fn for s in COOLDOWN_SHAPES.values()]
  shape = jax.lax.switch(hp["cooldown_shape"].astype(jnp.int32), fns, p)
  # Stable phase (p = 0 until decay_start): exactly the peak, so a trunk and
  # every branch cooled down from it agree bitwise up to the branch point.
  return jnp.where(step <= hp["decay_start"], 1.0, _floor(shape, hp))


SCHEDULES: Dict[str, Schedule] = {
    s.name: s for s in (
        Schedule("cosine", _cosine,
                 "Loshchilov & Hutter 2017 (SGDR Eq. 5); Hoffmann et al. "
                 "2022, Sec. 3 (cycle = run length, floor 10 %)",
                 "linear warmup, cosine decay to min_lr_ratio x peak at the "
                 "last step"),
        Schedule("linear", _linear,
                 "Bergsma et al. 2025, 'Straight to Zero' (linear decay to "
                 "zero)",
                 "linear warmup, linear decay to min_lr_ratio x peak at the "
                 "last step"),
        Schedule("wsd", _wsd,
                 "Hägele et al. 2024, 'Scaling Laws and Compute-Optimal "
                 "Training Beyond Fixed Training Durations', Sec. 3",
                 "linear warmup, constant peak, cooldown over the last "
                 "cooldown_fraction of the steps to min_lr_ratio x peak"),
    )
}
SCHEDULE_NAMES: Tuple[str, ...] = tuple(SCHEDULES)


def decay_start(steps: int, cooldown_fraction: float) -> int:
  """The step after which a WSD cooldown begins: steps - round(f * steps).

  A WSD run of S steps has the peak lr on updates 1..decay_start; a trunk
  checkpoint at this step is where its branch starts (``experiments``).
  """
  return int(steps) - int(round(float(cooldown_fraction) * int(steps)))


def schedule_hparams(schedule: str, cooldown_shape: str, steps: int,
                     cooldown_fraction: float) -> Dict[str, float]:
  """The traced schedule scalars besides lr / warmup / floor (lm.optim)."""
  return {"schedule": float(SCHEDULE_NAMES.index(schedule)),
          "cooldown_shape": float(COOLDOWN_SHAPE_NAMES.index(cooldown_shape)),
          "decay_start": float(decay_start(steps, cooldown_fraction)
                               if schedule == "wsd" else steps)}


def learning_rate(step, hp: Mapping[str, jax.Array]):
  """lr at (1-based) update ``step``: linear warmup, then the schedule's
  decay chosen by the traced index ``hp['schedule']``."""
  step = jnp.asarray(step, jnp.float32)
  warm = hp["lr"] * step / jnp.maximum(hp["warmup_steps"], 1.0)
  decays = [s.decay for s in SCHEDULES.values()]
  decay = jax.lax.switch(hp["schedule"].astype(jnp.int32), decays, step, hp)
  return jnp.where(step < hp["warmup_steps"], warm, hp["lr"] * decay)


def describe(train_cfg) -> Dict[str, object]:
  """run.json ``schedule``: which entry, its settings, label and citation."""
  s = SCHEDULES[train_cfg.schedule]
  out = {"name": s.name, "label": s.label, "citation": s.citation,
         "warmup_steps": train_cfg.warmup_steps, "steps": train_cfg.steps,
         "min_lr_ratio": train_cfg.min_lr_ratio}
  if s.name == "wsd":
    shape = COOLDOWN_SHAPES[train_cfg.cooldown_shape]
    out.update(cooldown_fraction=train_cfg.cooldown_fraction,
               cooldown_shape=shape.name, cooldown_citation=shape.citation,
               decay_start=decay_start(train_cfg.steps,
                                       train_cfg.cooldown_fraction))
  return out
