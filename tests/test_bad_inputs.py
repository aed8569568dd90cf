"""Bad input and faults against lm.train and lm.sample (issue 12): settings,
config files, the environment, a second driver, lm.sample's flags.

Every case asserts the exit code, the single ``error:`` / ``warning:`` line
and, where nothing should change, that the workdir's bytes (checkpoints,
run.json, metrics) are unchanged. Entry points run in-process exactly as
``python -m`` runs them (tests/helpers/entry.py); a subprocess only where a
second process matters (locks). One tiny trained workdir is shared
(``conftest.trained``; copied per test when a test may change it). Damaged
checkpoints: test_bad_inputs_checkpoints.py.
"""
import os
import resource
import signal
import socket

import pytest

from tests.helpers.entry import run_entry
from tests.helpers.faults import hold_lock, one_line, snapshot
from tests.helpers.micro_run import copy_run, train_cli


# ---------------------------------------------------------------- settings

@pytest.mark.parametrize("override,needle", [
    ("--config.train.grad_clip=-1", "train.grad_clip must be a finite number >= 0"),
    ("--config.train.b1=2.0", "train.b1 must be a finite number in [0, 1)"),
    ("--config.train.b2=1.0", "train.b2 must be a finite number in [0, 1)"),
    ("--config.train.weight_decay=-0.1", "train.weight_decay must be"),
    ("--config.train.eps=0", "train.eps must be a finite number > 0"),
    ("--config.train.lr=nan", "train.lr must be a finite number > 0"),
    ("--config.train.min_lr_ratio=1.5", "train.min_lr_ratio"),
    ("--config.train.z_loss=-1", "train.z_loss"),
    ("--config.train.seed=-3", "train.seed must be an integer"),
    ("--config.train.warmup_steps=60", "train.warmup_steps=60 must be smaller"),
    ("--config.model.rope_theta=0", "model.rope_theta"),
    ("--config.model.norm_eps=-1e-6", "model.norm_eps"),
    ("--config.data.val_fraction=0.7", "data.val_fraction"),
    ("--config.data.max_corpus_bytes=-1", "data.max_corpus_bytes"),
    ("--config.mesh.shape=(1.7,1,1)", "mesh.shape must be a tuple of integers"),
    ("--config.mesh.shape=abc", "mesh.shape must be a tuple of integers"),
    ("--config.train.flop_convention=7N", "train.flop_convention must be one of"),
])
def test_invalid_setting_is_one_line_and_changes_nothing(capfd, trained,
                                                         override, needle):
  before = snapshot(trained)
  rc, _, err = train_cli(capfd, trained, override)
  assert rc == 2
  assert needle in one_line(err)
  assert snapshot(trained) == before


def test_grad_clip_zero_means_no_clipping():
  from lm import config as config_lib, optim
  from tests.conftest import micro_config
  cfg = config_lib.from_config_dict(micro_config(grad_clip=0.0), vocab_size=257)
  assert optim.hparams_from(cfg.train)["grad_clip"] == float("inf")


def test_missing_config_file(capfd, tmp_path):
  rc, _, err = run_entry(capfd, "lm.train", f"--config={tmp_path}/nope.py",
                         f"--workdir={tmp_path}/w")
  assert rc == 2 and "nope.py" in one_line(err)
  assert not os.path.exists(tmp_path / "w")


def test_broken_config_file(capfd, tmp_path):
  bad = tmp_path / "bad.py"
  bad.write_text("def get_config(:\n  return 1\n")
  rc, _, err = run_entry(capfd, "lm.train", f"--config={bad}",
                         f"--workdir={tmp_path}/w")
  assert rc == 2 and "is not valid Python" in one_line(err)
  assert not os.path.exists(tmp_path / "w")


def test_verbose_adds_the_traceback(capfd, tmp_path):
  rc, _, err = train_cli(capfd, tmp_path / "w", "--config.train.b1=2.0",
                         "--verbose")
  assert rc == 2 and "Traceback" in err
  assert err.strip().splitlines()[-1].startswith("error: train.b1")


# ---------------------------------------------------------------- environment

def test_workdir_under_a_file(capfd, tmp_path):
  afile = tmp_path / "afile"
  afile.write_text("x")
  rc, _, err = train_cli(capfd, afile / "run")
  assert rc == 2
  assert "not a directory" in one_line(err).lower()
  assert afile.read_text() == "x"


def test_read_only_filesystem(capfd, tmp_path, monkeypatch):
  import errno
  real = os.makedirs

  def makedirs(path, *a, **k):
    if str(path).startswith(str(tmp_path)):
      raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
    return real(path, *a, **k)

  monkeypatch.setattr(os, "makedirs", makedirs)
  rc, _, err = train_cli(capfd, tmp_path / "w")
  assert rc == 2 and "read-only" in one_line(err)


def test_disk_full_during_checkpoint_save(capfd, trained, tmp_path):
  """A file-size limit (EFBIG, as ENOSPC) hits TensorStore mid-save: one
  line (was 54-767 lines of tracebacks), and no finalised checkpoint."""
  workdir = tmp_path / "full"
  old = resource.getrlimit(resource.RLIMIT_FSIZE)
  old_sig = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
  resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, old[1]))
  try:
    rc, _, err = train_cli(capfd, workdir)
  finally:
    resource.setrlimit(resource.RLIMIT_FSIZE, old)
    signal.signal(signal.SIGXFSZ, old_sig)
  assert rc == 2
  line = one_line(err)
  assert "file size limit" in line and "run the same command again" in line
  ckdir = workdir / "checkpoints"
  assert not [d for d in os.listdir(ckdir) if d.isdigit()]


# ---------------------------------------------------------------- one driver

def test_second_driver_is_refused_and_a_crash_leaves_no_stale_lock(
    capfd, trained, tmp_path):
  from lm.workdir import locked
  workdir = copy_run(trained, tmp_path)
  holder = hold_lock(workdir, "lm.train run")
  try:
    before = snapshot(workdir)
    rc, _, err = train_cli(capfd, workdir)
    assert rc == 2
    line = one_line(err)
    assert (f"in use by another lm.train run (pid {holder.pid} on host "
            f"{socket.gethostname()}") in line
    assert snapshot(workdir) == before
  finally:
    holder.send_signal(signal.SIGKILL)
    holder.wait()
  with locked(workdir):  # the kernel released the dead holder's lock
    pass


# ---------------------------------------------------------------- lm.sample

@pytest.mark.parametrize("flag,needle", [
    ("--top_k=-5", "--top_k=-5"),
    ("--temperature=-1", "--temperature=-1"),
    ("--temperature=nan", "--temperature"),
    ("--max_tokens=0", "--max_tokens=0"),
    ("--seed=-1", "--seed=-1"),
])
def test_sample_bad_flags(capfd, trained, flag, needle):
  before = snapshot(trained)
  rc, _, err = run_entry(capfd, "lm.sample", f"--workdir={trained}", flag)
  assert rc == 2 and needle in one_line(err)
  assert snapshot(trained) == before


def test_sample_not_a_workdir(capfd, tmp_path):
  rc, _, err = run_entry(capfd, "lm.sample", f"--workdir={tmp_path}/none")
  assert rc == 2 and "not an lm.train workdir" in one_line(err)
  assert not os.path.exists(tmp_path / "none")


# ---------------------------------------------------------------- data

def test_binary_corpus_warns(tmp_path):
  import numpy as np
  from lm.data import corpus
  blob = tmp_path / "blob.bin"
  blob.write_bytes(np.random.default_rng(0).integers(
      0, 256, 200_000, dtype=np.uint8).tobytes())
  with pytest.warns(UserWarning, match="not UTF-8 text"):
    corpus.files_corpus(str(blob), cache_dir=str(tmp_path / "c")).documents()
