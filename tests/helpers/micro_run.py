"""The lm.train / lm.sample bad-input tests' tiny run: its flags, its config,
copies of the trained workdir and checkpoint corruption.

``conftest.trained`` trains it once per test process (in-process, so the
later in-process lm.train calls reuse its compiled steps).
"""
import ast
import json
import os
import shutil

from tests.helpers.entry import run_entry
from tests.helpers.load_config import load

STEPS = 60
# lm/configs/tiny.py shrunk to a ~20k-parameter model: 3 checkpoints (20/40/60).
MICRO = ["--config=lm/configs/tiny.py", "--config.model.d_model=32",
         "--config.model.n_layers=1", "--config.model.n_heads=2",
         "--config.model.d_ff=64", "--config.data.seq_len=32",
         "--config.data.max_corpus_bytes=1000000",
         "--config.train.batch_size=8", f"--config.train.steps={STEPS}",
         "--config.train.warmup_steps=5", "--config.train.steps_per_call=5",
         "--config.train.log_every=10", "--config.train.eval_every=0",
         "--config.train.eval_tokens=4096", "--config.train.ckpt_every=20",
         "--config.train.keep_checkpoints=3", "--config.train.progress=False",
         "--config.train.tensorboard=False"]


def train_cli(capfd, workdir, *extra):
  """``python -m lm.train`` on MICRO (+ extra flags), in-process."""
  return run_entry(capfd, "lm.train", *MICRO, f"--workdir={workdir}", *extra)


def micro_config_dict(*extra):
  """The ConfigDict that ``lm.train`` builds from MICRO (+ extra) flags."""
  cfg = load("lm/configs/tiny.py")
  for flag in list(MICRO[1:]) + list(extra):
    key, value = flag[len("--config."):].split("=", 1)
    section, name = key.split(".")
    try:
      value = ast.literal_eval(value)
    except (ValueError, SyntaxError):
      pass
    cfg[section][name] = value
  return cfg


def copy_run(trained, tmp_path, name="w"):
  """A copy of the trained workdir (without its lock file) to change."""
  dst = str(tmp_path / name)
  shutil.copytree(trained, dst)
  os.remove(os.path.join(dst, ".lock"))
  return dst


def eval_loss(workdir):
  return json.load(open(os.path.join(workdir, "run.json")))["eval_loss"]


def _state_file(workdir, step):
  d = os.path.join(workdir, "checkpoints", str(step), "state",
                   "ocdbt.process_0", "d")
  return max((os.path.join(d, f) for f in os.listdir(d)), key=os.path.getsize)


def flip_bytes(workdir, step, n=64):
  """Flips n bytes in the middle of the largest array file (size unchanged)."""
  path = _state_file(workdir, step)
  data = bytearray(open(path, "rb").read())
  mid = len(data) // 2
  for i in range(mid, mid + n):
    data[i] ^= 0xFF
  open(path, "wb").write(bytes(data))


def truncate(workdir, step):
  """Cuts the largest array file of checkpoint ``step`` to half its size."""
  path = _state_file(workdir, step)
  data = open(path, "rb").read()
  open(path, "wb").write(data[: len(data) // 2])
