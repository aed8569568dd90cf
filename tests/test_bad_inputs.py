"""Bad input and faults against lm.train and lm.sample (issue 12).

Every case asserts the exit code, the single ``error:`` / ``warning:`` line
and, where nothing should change, that the workdir's bytes (checkpoints,
run.json, metrics) are unchanged. Entry points run in-process exactly as
``python -m`` runs them (tests/helpers/entry.py); a subprocess only where a
second process matters (locks). One tiny trained workdir is shared (copied
per test when a test may change it).
"""
import json
import os
import resource
import shutil
import signal
import socket

import pytest

from tests.helpers.entry import run_entry
from tests.helpers.faults import hold_lock, one_line, snapshot

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
  return run_entry(capfd, "lm.train", *MICRO, f"--workdir={workdir}", *extra)


def micro_config_dict(*extra):
  """The ConfigDict that ``lm.train`` builds from MICRO (+ extra) flags."""
  import ast
  from tests.helpers.load_config import load
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


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """A finished 60-step run with checkpoints at 20, 40, 60 (in-process, so
  the later in-process lm.train calls reuse its compiled steps)."""
  from lm.trainer import train
  workdir = str(tmp_path_factory.mktemp("trained") / "run")
  train(micro_config_dict(), workdir, verbose=False)
  return workdir


def _copy(trained, tmp_path, name="w"):
  dst = str(tmp_path / name)
  shutil.copytree(trained, dst)
  os.remove(os.path.join(dst, ".lock"))
  return dst


def _eval_loss(workdir):
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
  path = _state_file(workdir, step)
  data = open(path, "rb").read()
  open(path, "wb").write(data[: len(data) // 2])


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
  workdir = _copy(trained, tmp_path)
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


# ---------------------------------------------------------------- checkpoints

def test_flipped_bytes_fall_back_with_one_warning(capfd, trained, tmp_path):
  """Bytes flipped in the newest checkpoint (size unchanged) used to restore
  and report divergence; now they are caught: by the digests when the bytes
  still decode (raw data), by TensorStore when they do not (which of the two
  depends on where OCDBT placed the arrays in the file)."""
  workdir = _copy(trained, tmp_path)
  os.remove(os.path.join(workdir, "run.json"))  # an unfinished run
  flip_bytes(workdir, 60)
  rc, out, err = train_cli(capfd, workdir)
  assert rc == 0, err
  line = one_line(err, "warning: ")
  assert "step 60" in line
  assert "digest mismatch" in line or "unreadable" in line
  assert "falling back to step 40" in line
  run = json.load(open(os.path.join(workdir, "run.json")))
  assert run["resumed_from_step"] == 40 and run["status"] == "completed"
  assert run["eval_loss"] == _eval_loss(trained)  # bitwise: resume is exact
  kept = [d for d in os.listdir(os.path.join(workdir, "checkpoints"))
          if d.startswith("60.unreadable")]
  assert len(kept) == 1  # kept aside, never deleted


def test_arrays_that_do_not_match_their_digests_are_skipped(capfd, trained,
                                                           tmp_path):
  """Arrays that decode but differ from what was saved (the record says
  otherwise): the digest check names the array; a reader changes nothing."""
  workdir = _copy(trained, tmp_path)
  meta = os.path.join(workdir, "checkpoints", "60", "integrity", "metadata")
  record = json.load(open(meta))
  digest = record["fingerprint"]["params/embedding"]
  record["fingerprint"]["params/embedding"] = digest[:-1] + (
      "0" if digest[-1] != "0" else "1")
  with open(meta, "w") as f:
    json.dump(record, f)
  before = snapshot(workdir)
  rc, out, err = run_entry(capfd, "lm.sample", f"--workdir={workdir}",
                           "--prompt=def ", "--max_tokens=3")
  assert rc == 0, err
  line = one_line(err, "warning: ")
  assert "array digest mismatch in params/embedding" in line
  assert "falling back to step 40" in line
  assert snapshot(workdir) == before


def test_truncated_checkpoint_is_one_warning_line(capfd, trained, tmp_path):
  workdir = _copy(trained, tmp_path)
  os.remove(os.path.join(workdir, "run.json"))
  truncate(workdir, 60)
  rc, _, err = train_cli(capfd, workdir)
  assert rc == 0, err
  line = one_line(err, "warning: ")  # was 65 lines
  assert "step 60" in line and "unreadable" in line


def test_nan_right_after_restore_is_a_bad_checkpoint_not_divergence(
    capfd, trained, tmp_path):
  """A checkpoint whose digests match but whose params blow up (finite but
  huge) gives NaN on its first step: fall back and retrain, not 'diverged'."""
  import jax
  from lm.checkpoint import Checkpointer
  from lm import config as config_lib, sharding, step as step_lib
  workdir = _copy(trained, tmp_path)
  run = json.load(open(os.path.join(workdir, "run.json")))
  os.remove(os.path.join(workdir, "run.json"))       # crashed ...
  shutil.rmtree(os.path.join(workdir, "checkpoints", "60"))  # ... before 60
  c = run["config"]
  mc = config_lib.ModelConfig(**c["model"])
  tc = config_lib.TrainConfig(**c["train"])
  mesh = sharding.make_mesh(config_lib.MeshConfig(shape=(1, 1, 1)),
                            devices=jax.devices()[:1])
  compiled = step_lib.compiled_for(mc, step_lib.StepOptions.from_train(tc),
                                   mesh, config_lib.MeshConfig().rules)
  ck = Checkpointer(os.path.join(workdir, "checkpoints"))
  good = ck.restore_latest(compiled.abstract_state)
  assert good.step == 40
  huge = good.state.replace(params=jax.tree.map(lambda p: p * 1e30,
                                                good.state.params))
  os.rename(os.path.join(workdir, "checkpoints", "40"),
            str(tmp_path / "orig40"))
  ck.manager.reload()
  ck.save(40, huge, good.data_state, good.record)
  ck.close()
  rc, _, err = train_cli(capfd, workdir)
  assert rc == 0, err
  line = one_line(err, "warning: ")
  assert "step 40" in line and "first step after restoring" in line
  assert "falling back to step 20" in line
  meta = json.load(open(os.path.join(workdir, "run.json")))
  assert meta["status"] == "completed" and meta["resumed_from_step"] == 20
  assert meta["eval_loss"] == _eval_loss(trained)


def test_all_checkpoints_bad_is_an_error(capfd, trained, tmp_path):
  workdir = _copy(trained, tmp_path)
  os.remove(os.path.join(workdir, "run.json"))
  for step in (20, 40, 60):
    flip_bytes(workdir, step)
  rc, _, err = train_cli(capfd, workdir)
  assert rc == 2
  lines = [l for l in err.splitlines() if l.strip()]
  assert len(lines) == 4 and all(l.startswith("warning: ") for l in lines[:3])
  assert lines[-1].startswith("error: none of the checkpoints [20, 40, 60]")


def test_deleted_run_json_does_not_make_a_foreign_checkpoint_adoptable(
    capfd, trained, tmp_path):
  workdir = _copy(trained, tmp_path)
  os.remove(os.path.join(workdir, "run.json"))
  for f in os.listdir(workdir):
    if f.endswith(".jsonl"):
      os.remove(os.path.join(workdir, f))
  before = snapshot(workdir, lock=False)
  rc, _, err = train_cli(capfd, workdir, "--config.train.seed=7")
  assert rc == 2
  line = one_line(err)
  assert "checkpoint at step 60" in line and "train.seed=0" in line
  assert snapshot(workdir, lock=False) == before


def test_checkpoint_of_another_sweep_is_refused(trained, tmp_path):
  from lm.config import ConfigError
  from lm.trainer import train
  workdir = _copy(trained, tmp_path)
  os.remove(os.path.join(workdir, "run.json"))
  before = snapshot(workdir, lock=False)
  with pytest.raises(ConfigError, match="sweep_config_hash"):
    train(micro_config_dict(), workdir, verbose=False,
          provenance={"sweep_config_hash": "f00d" * 16})
  assert snapshot(workdir, lock=False) == before


def test_rerun_of_finished_run_changes_nothing(capfd, trained):
  before = snapshot(trained, lock=False)
  rc, out, err = train_cli(capfd, trained)
  assert rc == 0 and not err.strip(), err
  assert snapshot(trained, lock=False) == before


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


def test_sample_with_corrupted_latest_checkpoint_changes_nothing(
    capfd, trained, tmp_path):
  """Reading never modifies a workdir: the bad checkpoint is skipped in
  memory (it used to be renamed)."""
  workdir = _copy(trained, tmp_path)
  flip_bytes(workdir, 60)
  before = snapshot(workdir)
  rc, out, err = run_entry(capfd, "lm.sample", f"--workdir={workdir}",
                           "--prompt=def ", "--max_tokens=5")
  assert rc == 0 and out.startswith("def ")
  line = one_line(err, "warning: ")
  assert "step 60" in line and "directory unchanged" in line
  assert snapshot(workdir) == before


def test_sample_with_every_checkpoint_corrupted(capfd, trained, tmp_path):
  workdir = _copy(trained, tmp_path)
  for step in (20, 40, 60):
    truncate(workdir, step)
  before = snapshot(workdir)
  rc, _, err = run_entry(capfd, "lm.sample", f"--workdir={workdir}")
  assert rc == 2
  assert err.strip().splitlines()[-1].startswith("error: none of the")
  assert snapshot(workdir) == before


def test_binary_corpus_warns(tmp_path):
  import numpy as np
  from lm.data import corpus
  blob = tmp_path / "blob.bin"
  blob.write_bytes(np.random.default_rng(0).integers(
      0, 256, 200_000, dtype=np.uint8).tobytes())
  with pytest.warns(UserWarning, match="not UTF-8 text"):
    corpus.files_corpus(str(blob), cache_dir=str(tmp_path / "c")).documents()
