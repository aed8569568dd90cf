"""Issue 19, the classes about trained runs: checkpoint integrity over every
saved item (4), resumes that record what changed (5), sampling that streams
and keeps its text on Ctrl-C (7). Each case checks the message and that
nothing stored changed (byte snapshots); the shared tiny run is
``conftest.trained``. The other classes: test_bad_inputs_reliability.py.
"""
import json
import os

import pytest

from tests.helpers.entry import run_entry
from tests.helpers.faults import one_line, snapshot
from tests.helpers.micro_run import copy_run, train_cli


# ------------------------------------------- 4. checkpoint integrity, every item

def test_edited_data_position_in_a_checkpoint_is_detected(capfd, trained,
                                                          tmp_path):
  workdir = copy_run(trained, tmp_path)
  path = os.path.join(workdir, "checkpoints", "60", "data", "metadata")
  data = json.load(open(path))
  assert isinstance(data.get("step"), int), data
  data["step"] -= 10  # {"step": N} -> {"step": N - 10}
  open(path, "w").write(json.dumps(data))
  before = snapshot(workdir)
  rc, out, err = run_entry(capfd, "lm.sample", f"--workdir={workdir}",
                           "--prompt=def ", "--max_tokens=3")
  assert rc == 0, err
  line = one_line(err, "warning: ")
  assert "step 60" in line and "data-iterator position differs" in line
  assert "falling back to step 40" in line
  assert snapshot(workdir) == before


def test_edited_integrity_record_is_detected(tmp_path):
  import jax.numpy as jnp
  from lm.checkpoint import Checkpointer
  ck = Checkpointer(str(tmp_path / "c"))
  ck.save(10, {"w": jnp.ones(3)}, {"step": 40}, {"provenance": {"x": 1}})
  ck.close()
  path = tmp_path / "c" / "10" / "integrity" / "metadata"
  rec = json.load(open(path))
  rec["provenance"] = {"x": 2}
  path.write_text(json.dumps(rec))
  ck = Checkpointer(str(tmp_path / "c"), read_only=True)
  restored = ck.restore_step(10, {"w": jnp.ones(3)}, ck.record(10))
  assert "integrity record was changed" in Checkpointer.verify(restored)
  ck.close()


# ------------------------------------------- 7. sampling streams, Ctrl-C keeps

def test_sampling_streams_its_text(trained):
  from lm import sample
  mc, params, tok, _ = sample.load_run(trained)
  pieces = []
  text = sample.generate(mc, params, tok, "def ", max_tokens=30,
                         temperature=0.0, on_text=pieces.append)
  assert "".join(pieces) == text and len(pieces) > 1


def test_sample_ctrl_c_keeps_the_text_and_does_not_say_resume(
    capfd, trained, monkeypatch):
  import jax
  from lm import sample
  mc, params, tok, _ = sample.load_run(trained)
  full = sample.generate(mc, params, tok, "def ", max_tokens=50,
                         temperature=0.0)
  real, calls = jax.random.split, []

  def split(key, *a, **k):  # sampling splits its key once per token
    calls.append(1)
    if len(calls) > 12:
      raise KeyboardInterrupt
    return real(key, *a, **k)

  monkeypatch.setattr(jax.random, "split", split)
  before = snapshot(trained, lock=False)
  rc, out, err = run_entry(capfd, "lm.sample", f"--workdir={trained}",
                           "--prompt=def ", "--temperature=0",
                           "--max_tokens=50")
  assert rc == 130
  line = one_line(err, "interrupted: ")
  assert "resume" not in line and "nothing was written" in line
  assert "characters generated so far are printed above" in line
  so_far = out[len("def "):].rstrip("\n")
  assert out.startswith("def ") and so_far and full.startswith(so_far)
  assert len(so_far) < len(full)
  assert snapshot(trained, lock=False) == before


# ------------------------------------------- 5. resume records what changed

def test_resume_with_another_eval_batch_size_is_recorded(capfd, trained,
                                                         tmp_path):
  import shutil
  workdir = copy_run(trained, tmp_path)
  for step in (40, 60):
    shutil.rmtree(os.path.join(workdir, "checkpoints", str(step)))
  old = json.load(open(os.path.join(workdir, "run.json")))
  rc, _, err = train_cli(capfd, workdir, "--config.train.eval_batch_size=32")
  assert rc == 0, err
  line = one_line(err, "warning: ")
  assert "at step 20 with train.eval_batch_size 32 (was " in line
  assert "recorded in run.json 'resumes'" in line
  meta = json.load(open(os.path.join(workdir, "run.json")))
  (rec,) = meta["resumes"]
  assert rec["step"] == 20 and rec["changed"] == {
      "train.eval_batch_size": [old["config"]["train"]["eval_batch_size"], 32]}
  assert rec["mesh"] == meta["mesh"]


def test_resume_on_another_mesh_is_recorded_and_warned():
  """(8,1,1) -> (2,2,2): the attempt's record keeps the old mesh beside the
  new one (run.json 'resumes'), and one warning says results may move."""
  import types
  import jax
  from lm import run_setup
  kind = jax.devices()[0].device_kind
  old_mesh = {"data": 8, "fsdp": 1, "tensor": 1}
  new_mesh = {"data": 2, "fsdp": 2, "tensor": 2}
  cfg_json = {"train": {"eval_batch_size": 64}}
  su = types.SimpleNamespace(
      old={"mesh": old_mesh, "device_kind": kind, "config": cfg_json},
      cfg_json=cfg_json,
      cfg=types.SimpleNamespace(train=types.SimpleNamespace(
          eval_batch_size=64)))
  start = types.SimpleNamespace(own=True, step=40)
  with pytest.warns(UserWarning, match=r"at step 40 with mesh .*'data': 2.* "
                    r"\(was .*'data': 8.*recorded in run.json 'resumes'"):
    rec = run_setup._resume_record(su, start, "/w", new_mesh)
  assert rec["changed"] == {"mesh": [old_mesh, new_mesh]}
  assert rec["mesh"] == new_mesh and rec["step"] == 40
  start.step = 0  # a fresh start is not a resume
  assert run_setup._resume_record(su, start, "/w", new_mesh) is None
