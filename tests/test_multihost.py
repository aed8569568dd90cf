"""Multi-host JAX on emulated hosts: several CPU processes on 127.0.0.1.

Each process is started with the explicit launch fields
(``--config.mesh.coordinator_address/num_processes/process_id``), no wrapper;
with more than one process the CPU collectives are gloo. The multi-host
sweep test is in test_runners.py (it compares with that module's local sweep).
"""
import json
import os
import signal
import time

import numpy as np
import pytest

from lm import sharding
from lm.config import ConfigError, MeshConfig
from tests.helpers.multihost import start as _start, wait as _wait

STEPS = 60
MICRO = ("--config=lm/configs/tiny.py", "--config.model.d_model=32",
         "--config.model.n_layers=1", "--config.model.n_heads=2",
         "--config.model.d_ff=64", "--config.data.seq_len=32",
         "--config.data.max_corpus_bytes=1000000",
         "--config.train.batch_size=8", f"--config.train.steps={STEPS}",
         "--config.train.warmup_steps=5", "--config.train.lr=1e-2",
         "--config.train.steps_per_call=5", "--config.train.log_every=10",
         "--config.train.eval_every=0", "--config.train.eval_tokens=2048",
         "--config.train.ckpt_every=20", "--config.train.progress=False",
         "--config.train.tensorboard=False")


def _metrics(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [json.loads(l) for l in f]


def _run_json(workdir):
  with open(os.path.join(workdir, "run.json")) as f:
    return json.load(f)


def test_distributed_args_come_from_config_then_environment():
  assert sharding.distributed_args(MeshConfig(), environ={}) is None
  assert sharding.distributed_args(MeshConfig(distributed=True),
                                   environ={}) == {}  # JAX auto-detects
  mesh = MeshConfig(coordinator_address="10.0.0.1:8476", num_processes=4,
                    process_id=3)
  assert sharding.distributed_args(mesh, environ={"JAX_PROCESS_ID": "0"}) == {
      "coordinator_address": "10.0.0.1:8476", "num_processes": 4,
      "process_id": 3}
  env = {"JAX_COORDINATOR_ADDRESS": "h:1", "JAX_NUM_PROCESSES": "2",
         "JAX_PROCESS_ID": "1"}
  assert sharding.distributed_args({"process_id": -1}, environ=env) == {
      "coordinator_address": "h:1", "num_processes": 2, "process_id": 1}
  for bad in (dict(coordinator_address="nohost"), dict(num_processes=-1),
              dict(num_processes=2, process_id=2)):
    with pytest.raises(ConfigError, match="mesh."):
      MeshConfig(**bad).validate()
  with pytest.raises(ConfigError, match="JAX_NUM_PROCESSES"):
    sharding.distributed_args(MeshConfig(), environ={"JAX_NUM_PROCESSES": "x"})


def test_lm_train_two_processes_match_one_and_resume_after_sigkill(tmp_path):
  one, two, killed = (str(tmp_path / d) for d in ("one", "two", "killed"))
  train = ("lm.train", *MICRO)
  procs = (_start((*train, f"--workdir={one}"), 1, devices=8)
           + _start((*train, f"--workdir={two}"), 2, devices=4))
  _wait(procs)
  ref, got = _metrics(one), _metrics(two)
  assert [r["step"] for r in got] == [r["step"] for r in ref]
  assert ref[-1]["loss"] < ref[0]["loss"]  # it learns: the match means something
  # Same mesh (data=8), same math; only the all-reduce differs (gloo across
  # processes vs in-process), which sums partial gradients in another order:
  # f32 rounding, ~1e-7 relative per step here. 1e-5 allows for its growth
  # over 60 Adam steps; a real bug (wrong rows per host, a missed reduction)
  # moves losses by > 1e-2.
  np.testing.assert_allclose([r["loss"] for r in got],
                             [r["loss"] for r in ref], rtol=1e-5, atol=0)
  assert _run_json(two)["eval_loss"] == pytest.approx(
      _run_json(one)["eval_loss"], rel=1e-5)
  assert _run_json(two)["n_processes"] == 2

  procs = _start((*train, f"--workdir={killed}"), 2, devices=4)
  ckpts = os.path.join(killed, "checkpoints")
  deadline = time.time() + 300
  while not (os.path.isdir(ckpts) and any(d.isdigit() for d in os.listdir(ckpts))):
    if any(p.poll() is not None for p in procs) or time.time() > deadline:
      pytest.fail("job ended before both processes were killed: "
                  + procs[0].communicate()[1][-2000:])
    time.sleep(0.02)
  for p in procs:
    os.kill(p.pid, signal.SIGKILL)
  for p in procs:
    p.communicate()
  assert _run_json(killed)["status"] == "running", "finished before the kill"
  _wait(_start((*train, f"--workdir={killed}"), 2, devices=4))
  resumed = _run_json(killed)
  assert resumed["status"] == "completed" and resumed["resumed_from_step"] >= 20
  # Resume is exact: the same processes and collectives replay the same steps.
  assert resumed["eval_loss"] == _run_json(two)["eval_loss"]
  assert [r["loss"] for r in _metrics(killed)] == [r["loss"] for r in got]
