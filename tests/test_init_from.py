"""A run started from another run's checkpoint (lm.init_from) is that run's
own continuation: a WSD branch cooled down from a trunk's checkpoint equals
the WSD run trained from scratch, bitwise on CPU; foreign checkpoints are
refused; the trunk's directory is never changed."""
import hashlib
import json
import os

import pytest

from lm.config import ConfigError
from tests.conftest import micro_config

S, P = 60, 48   # the branch: 60 steps, 20 % cooldown from step 48


def _wsd(steps, **train):
  return micro_config(**{"steps": steps, "schedule": "wsd",
                         "cooldown_fraction": 0.2, "min_lr_ratio": 0.0,
                         "warmup_steps": 5, "eval_every": 0,
                         "tensorboard": False, **train})


def _digest(directory):
  h = hashlib.sha256()
  for root, dirs, files in sorted(os.walk(directory)):
    dirs.sort()
    for name in sorted(files):
      path = os.path.join(root, name)
      h.update(path.encode())
      with open(path, "rb") as f:
        h.update(f.read())
  return h.hexdigest()


@pytest.fixture(scope="module")
def trunk_and_scratch(tmp_path_factory):
  """A trunk (the 80-step WSD run, stopped at its cooldown start 64, keeping
  step 48 although only 1 checkpoint is kept) and the 60-step run from
  scratch."""
  from lm.trainer import train
  root = tmp_path_factory.mktemp("init_from")
  trunk = str(root / "trunk")
  meta = train(_wsd(80, keep_steps=(P,), keep_checkpoints=1), trunk,
               verbose=False, stop_at=64)
  scratch = train(_wsd(S), str(root / "scratch"), verbose=False)
  return root, trunk, meta, scratch


def test_trunk_stops_without_eval_and_keeps_its_branch_point(trunk_and_scratch):
  _, trunk, meta, _ = trunk_and_scratch
  assert meta["status"] == "stopped" and meta["stopped_at_step"] == 64
  assert "eval_loss" not in meta and meta["eval_flops"] == 0.0
  steps = sorted(int(d) for d in os.listdir(os.path.join(trunk, "checkpoints"))
                 if d.isdigit())
  assert steps == [P, 64]  # keep_checkpoints=1 did not rotate step 48 out
  recs = [json.loads(l) for l in open(os.path.join(trunk, "metrics.jsonl"))]
  assert recs[-1]["step"] == 64 and recs[-1]["lr"] == pytest.approx(1e-2)


def test_branch_equals_the_run_from_scratch_and_leaves_the_trunk_alone(
    trunk_and_scratch):
  from lm.trainer import train
  root, trunk, _, scratch = trunk_and_scratch
  before = _digest(trunk)
  branch = train(_wsd(S), str(root / "branch"), verbose=False,
                 init_from=(trunk, P))
  assert _digest(trunk) == before
  for key in ("eval_loss", "eval_loss_se", "train_loss", "flops", "tokens"):
    assert branch[key] == scratch[key], key  # bitwise
  assert branch["init_from"]["step"] == P
  assert branch["init_from"]["run_dir"] == os.path.abspath(trunk)
  assert len(branch["init_from"]["fingerprint_sha256"]) == 64
  tpt = 8 * 32
  assert branch["compute_spent"] == pytest.approx(
      branch["flops_per_token"] * (S - P) * tpt)
  assert scratch["compute_spent"] == scratch["flops"]
  # Rerunning the finished branch is a no-op.
  again = train(_wsd(S), str(root / "branch"), verbose=False,
                init_from=(trunk, P))
  assert again["wall_time_s"] == branch["wall_time_s"]


@pytest.mark.parametrize("change, step, needle", [
    (dict(seed=1), P, "train.seed=0, but this run has 1"),
    (dict(schedule="cosine"), P, "learning rate differs from this run's at "
                                 "update 6"),
    (dict(), 40, "no checkpoint at step 40"),
])
def test_foreign_checkpoints_are_refused(trunk_and_scratch, tmp_path, change,
                                         step, needle):
  from lm.trainer import train
  _, trunk, _, _ = trunk_and_scratch
  with pytest.raises(ConfigError, match=needle) as e:
    train(_wsd(S, **change), str(tmp_path / "b"), verbose=False,
          init_from=(trunk, step))
  assert "\n" not in str(e.value)
  assert not os.path.exists(tmp_path / "b" / "checkpoints" / str(S))
