"""Shared fixtures: tiny configs that train in seconds on 2 CPU cores."""
import os
import sys

import pytest

# Helpers that assert: pytest explains their failures as it does a test's.
pytest.register_assert_rewrite("tests.helpers.epoch_published")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The test extra installs libtpu (the deviceless TPU compiler, '.[tpu]'): on a
# machine without a TPU, JAX would otherwise probe for one on its first call
# (tens of seconds). Tests compile for TPU topologies with JAX_PLATFORMS=cpu;
# subprocesses inherit it. Set before any test imports jax.
os.environ.setdefault("JAX_PLATFORMS", "cpu")


def micro_config(**train_overrides):
  """A ~20k-parameter byte-level model on 1 MB of the embedded corpus
  (validation: 1 % of it, ~10k tokens; eval set: 4096 of them)."""
  from lm.config import default_config_dict
  train = dict(batch_size=8, steps=60, lr=1e-2, warmup_steps=5,
               steps_per_call=5, log_every=10, eval_every=30,
               eval_tokens=4096, eval_batch_size=64, ckpt_every=0,
               progress=False, tensorboard=True)
  train.update(train_overrides)
  return default_config_dict(
      model=dict(d_model=32, n_layers=1, n_heads=2, d_ff=64),
      data=dict(source="default", seq_len=32, max_corpus_bytes=1_000_000),
      train=train)


@pytest.fixture
def micro():
  return micro_config


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
  """A finished 60-step run of tests/helpers/micro_run.py with checkpoints at
  20, 40, 60, shared by the bad-input test modules (trained once per test
  process; tests that change it work on a ``micro_run.copy_run``)."""
  from lm.trainer import train
  from tests.helpers.micro_run import micro_config_dict
  workdir = str(tmp_path_factory.mktemp("trained") / "run")
  train(micro_config_dict(), workdir, verbose=False)
  return workdir


def run_cli(module, *args, timeout=600, env=None):
  import subprocess
  e = dict(os.environ)
  e.update(env or {})
  return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT,
                        capture_output=True, text=True, timeout=timeout, env=e)
