"""Damaged and foreign checkpoints against lm.train and lm.sample (issue 12).

Bytes flipped, arrays that do not match their digests, truncated files,
params that blow up after a restore, every checkpoint bad, a checkpoint of
another config or sweep: lm.train falls back with one ``warning:`` line (or
stops with one ``error:`` line); lm.sample reads around them and never
changes the workdir. Same set-up as test_bad_inputs.py: in-process entry
points on copies of the shared ``conftest.trained`` workdir.
"""
import json
import os
import shutil

import pytest

from tests.helpers.entry import run_entry
from tests.helpers.faults import one_line, snapshot
from tests.helpers.micro_run import (copy_run, eval_loss, flip_bytes,
                                     micro_config_dict, train_cli, truncate)


# ---------------------------------------------------------------- checkpoints

def test_flipped_bytes_fall_back_with_one_warning(capfd, trained, tmp_path):
  """Bytes flipped in the newest checkpoint (size unchanged) used to restore
  and report divergence; now they are caught: by the digests when the bytes
  still decode (raw data), by TensorStore when they do not (which of the two
  depends on where OCDBT placed the arrays in the file)."""
  workdir = copy_run(trained, tmp_path)
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
  assert run["eval_loss"] == eval_loss(trained)  # bitwise: resume is exact
  kept = [d for d in os.listdir(os.path.join(workdir, "checkpoints"))
          if d.startswith("60.unreadable")]
  assert len(kept) == 1  # kept aside, never deleted


def test_arrays_that_do_not_match_their_digests_are_skipped(capfd, trained,
                                                           tmp_path):
  """Arrays that decode but differ from what was saved (the record says
  otherwise): the digest check names the array; a reader changes nothing."""
  workdir = copy_run(trained, tmp_path)
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
  workdir = copy_run(trained, tmp_path)
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
  workdir = copy_run(trained, tmp_path)
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
  assert meta["eval_loss"] == eval_loss(trained)


def test_all_checkpoints_bad_is_an_error(capfd, trained, tmp_path):
  workdir = copy_run(trained, tmp_path)
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
  workdir = copy_run(trained, tmp_path)
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
  workdir = copy_run(trained, tmp_path)
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

def test_sample_with_corrupted_latest_checkpoint_changes_nothing(
    capfd, trained, tmp_path):
  """Reading never modifies a workdir: the bad checkpoint is skipped in
  memory (it used to be renamed)."""
  workdir = copy_run(trained, tmp_path)
  flip_bytes(workdir, 60)
  before = snapshot(workdir)
  rc, out, err = run_entry(capfd, "lm.sample", f"--workdir={workdir}",
                           "--prompt=def ", "--max_tokens=5")
  assert rc == 0 and out.startswith("def ")
  line = one_line(err, "warning: ")
  assert "step 60" in line and "directory unchanged" in line
  assert snapshot(workdir) == before


def test_sample_with_every_checkpoint_corrupted(capfd, trained, tmp_path):
  workdir = copy_run(trained, tmp_path)
  for step in (20, 40, 60):
    truncate(workdir, step)
  before = snapshot(workdir)
  rc, _, err = run_entry(capfd, "lm.sample", f"--workdir={workdir}")
  assert rc == 2
  assert err.strip().splitlines()[-1].startswith("error: none of the")
  assert snapshot(workdir) == before
