"""Learning-rate schedules (lm.schedules): published shapes, one compile for all."""
import math

import jax.numpy as jnp
import numpy as np
import pytest

from lm import optim, schedules
from lm.config import ConfigError, TrainConfig


def _lr(**train):
  cfg = TrainConfig(**{"steps": 100, "warmup_steps": 10, "lr": 1e-2,
                       **train}).validate()
  hp = optim.traced_hparams(cfg)
  return np.array([float(optim.learning_rate(s, hp)) for s in range(1, 101)])


def test_every_entry_is_named_cited_and_ends_at_its_floor():
  assert set(schedules.SCHEDULES) == {"cosine", "linear", "wsd"}
  assert set(schedules.COOLDOWN_SHAPES) == {"linear", "1-sqrt"}
  for name, s in schedules.SCHEDULES.items():
    assert s.citation and s.label and s.name == name
    for floor in (0.0, 0.1):
      lr = _lr(schedule=name, min_lr_ratio=floor)
      # Warmup: lr * s / W, the peak at update W, then never above it.
      np.testing.assert_allclose(lr[:10], 1e-2 * np.arange(1, 11) / 10,
                                 rtol=1e-6)
      assert lr.max() == pytest.approx(1e-2, rel=1e-6)
      assert np.all(np.diff(lr[9:]) <= 1e-9)  # non-increasing after warmup
      assert lr[-1] == pytest.approx(floor * 1e-2, abs=1e-9)


def test_published_shapes():
  # Cosine (SGDR Eq. 5): halfway through the decay, (1 + floor) / 2 of peak.
  assert _lr(schedule="cosine", min_lr_ratio=0.1)[54] == pytest.approx(
      1e-2 * 0.55, rel=1e-5)
  # Linear decay to zero (Bergsma et al. 2025): a straight line after warmup.
  lin = _lr(schedule="linear", min_lr_ratio=0.0)
  np.testing.assert_allclose(lin[9:], 1e-2 * (1 - np.arange(0, 91) / 90),
                             atol=1e-9)
  # WSD (Hägele et al. 2024): the exact peak up to decay_start = 80, then
  # 1 - sqrt(p) (or 1 - p) of the way to the floor over the last 20 %.
  assert schedules.decay_start(100, 0.2) == 80
  for shape, f in (("1-sqrt", lambda p: 1 - math.sqrt(p)),
                   ("linear", lambda p: 1 - p)):
    wsd = _lr(schedule="wsd", cooldown_shape=shape, min_lr_ratio=0.0)
    assert np.all(wsd[9:80] == np.float32(1e-2))  # bitwise constant
    for step in (85, 90, 99):
      assert wsd[step - 1] == pytest.approx(1e-2 * f((step - 80) / 20),
                                            abs=1e-8)
  # cooldown_fraction = 0: warmup then constant to the end (a trunk).
  assert np.all(_lr(schedule="wsd", cooldown_fraction=0.0)[9:] ==
                np.float32(1e-2))


@pytest.mark.parametrize("train, needle", [
    (dict(schedule="step"), "train.schedule must be one of cosine, linear, wsd"),
    (dict(cooldown_shape="sqrt"), "train.cooldown_shape must be one of"),
    (dict(cooldown_fraction=1.0), "train.cooldown_fraction must be"),
    (dict(schedule="wsd", cooldown_fraction=0.95), "before the warmup ends"),
    (dict(keep_steps=(0,)), "train.keep_steps"),
])
def test_bad_schedule_settings_are_one_line_errors(train, needle):
  with pytest.raises(ConfigError, match=needle) as e:
    TrainConfig(steps=100, warmup_steps=10, **train).validate()
  assert "\n" not in str(e.value)


def test_one_compiled_function_serves_every_schedule():
  import jax
  fn = jax.jit(lambda s, hp: optim.learning_rate(s, hp))
  for name in schedules.SCHEDULE_NAMES:
    cfg = TrainConfig(steps=100, warmup_steps=10, schedule=name)
    hp = optim.traced_hparams(cfg)
    fn(jnp.float32(50), hp)
  assert fn._cache_size() == 1  # pylint: disable=protected-access
