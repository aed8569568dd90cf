"""Exact resume: SIGKILL mid-run then the same command == uninterrupted (bitwise on CPU)."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT, micro_config

STEPS = 120


def _final(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    recs = [json.loads(l) for l in f]
  return recs


def _start(workdir):
  return subprocess.Popen(
      [sys.executable, "-m", "tests.helpers.train_micro", workdir, str(STEPS)],
      cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("full"))
  p = _start(workdir)
  _, err = p.communicate(timeout=600)
  assert p.returncode == 0, err[-2000:]
  return workdir


def test_sigkill_then_resume_is_bitwise_identical(tmp_path, uninterrupted):
  workdir = str(tmp_path / "killed")
  p = _start(workdir)
  ckdir = os.path.join(workdir, "checkpoints")
  deadline = time.time() + 300
  # Kill once a checkpoint past step 20 exists and the run is still going.
  while time.time() < deadline:
    steps = [int(d) for d in os.listdir(ckdir) if d.isdigit()] if os.path.isdir(
        ckdir) else []
    if steps and max(steps) >= 30:
      break
    if p.poll() is not None:
      pytest.fail("run finished before it could be killed; raise STEPS")
    time.sleep(0.05)
  os.kill(p.pid, signal.SIGKILL)
  p.wait()
  killed_at = max(int(d) for d in os.listdir(ckdir) if d.isdigit())
  assert killed_at < STEPS
  run = json.load(open(os.path.join(workdir, "run.json")))
  assert run["status"] == "running"

  p2 = _start(workdir)
  _, err = p2.communicate(timeout=600)
  assert p2.returncode == 0, err[-2000:]
  run = json.load(open(os.path.join(workdir, "run.json")))
  assert run["status"] == "completed" and run["resumed_from_step"] >= 30

  a, b = _final(uninterrupted), _final(workdir)
  assert [r["step"] for r in b] == [r["step"] for r in a]  # nothing logged twice
  for ra, rb in zip(a, b):
    assert ra["loss"] == rb["loss"], ra["step"]          # bitwise
  full = json.load(open(os.path.join(uninterrupted, "run.json")))
  assert run["eval_loss"] == full["eval_loss"]


def test_all_checkpoints_unreadable_is_an_error_not_a_restart(tmp_path,
                                                              uninterrupted):
  import shutil
  from lm.checkpoint import CheckpointError
  from lm.trainer import train
  workdir = str(tmp_path / "allbad")
  shutil.copytree(uninterrupted, workdir)
  ckdir = os.path.join(workdir, "checkpoints")
  for d in os.listdir(ckdir):
    for root, _, files in os.walk(os.path.join(ckdir, d, "state")):
      for f in files:
        with open(os.path.join(root, f), "wb") as fh:
          fh.write(b"garbage")
  with pytest.warns(UserWarning), pytest.raises(CheckpointError,
                                                match="none of the"):
    train(micro_config(steps=STEPS, ckpt_every=10, log_every=10, eval_every=0,
                       steps_per_call=5), workdir, verbose=False)
  kept = [d for d in os.listdir(ckdir) if "unreadable" in d]
  assert len(kept) >= 2  # moved aside, never deleted


def test_corrupted_latest_checkpoint_falls_back(tmp_path, uninterrupted):
  """Damage the newest checkpoint: restore warns, uses the previous one, and
  re-training from there reproduces the same final loss."""
  import shutil
  from lm.trainer import train
  workdir = str(tmp_path / "copy")
  shutil.copytree(uninterrupted, workdir)
  ckdir = os.path.join(workdir, "checkpoints")
  steps = sorted(int(d) for d in os.listdir(ckdir) if d.isdigit())
  assert len(steps) >= 2
  latest = os.path.join(ckdir, str(steps[-1]), "state")
  for root, _, files in os.walk(latest):
    for f in files:
      with open(os.path.join(root, f), "wb") as fh:
        fh.write(b"garbage")
  with pytest.warns(UserWarning, match="falling back"):
    meta = train(micro_config(steps=STEPS, ckpt_every=10, log_every=10,
                              eval_every=0, steps_per_call=5),
                 workdir, verbose=False)
  assert meta["resumed_from_step"] == steps[-2]
  full = json.load(open(os.path.join(uninterrupted, "run.json")))
  assert meta["eval_loss"] == full["eval_loss"]
