"""train.profile_steps writes a jax.profiler trace and changes nothing else."""
import json
import os

import pytest

from lm import profiling
from lm.config import ConfigError, TrainConfig
from tests.conftest import micro_config


@pytest.mark.parametrize("steps", [(5,), (10, 5), (5, 5), (-1, 3), (0, 61),
                                   (1.0, 3)])
def test_profile_steps_validated(steps):
  with pytest.raises(ConfigError, match="profile_steps"):
    TrainConfig(steps=60, warmup_steps=5, profile_steps=steps).validate()
  TrainConfig(steps=60, warmup_steps=5, profile_steps=(0, 60)).validate()


def test_trace_written_for_the_chosen_steps_and_losses_unchanged(tmp_path):
  from lm.trainer import train
  kw = dict(steps=20, steps_per_call=5, log_every=5, eval_every=0,
            tensorboard=False)
  train(micro_config(**kw, profile_steps=(5, 10)), str(tmp_path / "prof"),
        verbose=False)
  files = profiling.trace_files(str(tmp_path / "prof" / "profile"))
  assert len(files) == 1 and os.path.getsize(files[0]) > 0, files
  # The trace holds the training step the profiled call ran (XLA module names).
  with open(files[0], "rb") as f:
    assert b"train" in f.read()

  train(micro_config(**kw), str(tmp_path / "plain"), verbose=False)
  assert not os.path.exists(tmp_path / "plain" / "profile")

  def losses(name):
    with open(tmp_path / name / "metrics.jsonl") as f:
      return [(r["step"], r["loss"]) for r in map(json.loads, f)]
  assert losses("prof") == losses("plain") and len(losses("plain")) == 4
