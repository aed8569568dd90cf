"""Runners: registry and settings, ledger outcome rules, retries, Ray == local.

The Ray tests start a private Ray instance (2 CPUs, no dashboard, token auth
off) and skip, saying why, where Ray is not installed.
"""
import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from experiments import runners
from experiments.ledger import Ledger, LedgerError
from experiments.runners import resources
from lm.config import ConfigError
from tests.conftest import ROOT
from tests.helpers import faulty_trainer
from tests.helpers.load_config import load

CONFIG = "experiments/configs/tiny_sweep.py"
BUDGET = "--config.sweep.budgets=(1e9,)"  # 3 runs, 99-448 steps
COMPARE = ("run_id", "budget", "N", "D", "C", "eval_loss", "train_loss",
           "status", "steps", "shape")
RAY_ENV = {"RAY_AUTH_MODE": "disabled",  # no token written under ~/.ray
           "PYTHONPATH": ROOT}           # workers import tests.helpers


def _cfg(**sweep):
  cfg = load(CONFIG)
  cfg.sweep.budgets = (1e9,)
  for k, v in sweep.items():
    cfg.sweep[k] = v
  return cfg


def _needs_ray():
  pytest.importorskip("ray", reason="Ray is not installed (pip install -e "
                      "'.[ray]'; CI gets it through '.[test]')")


def test_registry_names_every_runner_and_refuses_unknown_ones():
  assert set(runners.RUNNERS) == {"local", "ray"}
  assert runners.get("ray").extra == "ray" and not runners.get("ray").multi_host
  with pytest.raises(ConfigError, match="valid: local, ray"):
    runners.get("slurm")


def test_resources_per_run_spec():
  assert resources.parse("auto") is None
  assert resources.parse("GPU=1") == {"GPU": 1.0, "CPU": 1.0}
  assert resources.parse({"CPU": 2}) == {"CPU": 2.0}
  assert resources.parse("GPU=1,CPU=0") == {"GPU": 1.0, "CPU": 0.0}
  for bad in ("GPU", "GPU=-1", "GPU=x", {}):
    with pytest.raises(resources.ResourceSpecError):
      resources.parse(bad)
  assert resources.resolve("auto", {"CPU": 64, "GPU": 8}) == {"CPU": 1, "GPU": 1}
  assert resources.resolve("auto", {"CPU": 2}) == {"CPU": 1}
  assert resources.fits({"CPU": 1, "GPU": 1}, {"CPU": 8, "GPU": 1})
  assert not resources.fits({"GPU": 1}, {"CPU": 8})
  assert resources.ray_options({"CPU": 1, "GPU": 1, "TPU": 4}) == {
      "num_cpus": 1, "num_gpus": 1, "resources": {"TPU": 4}}


def test_ray_runner_names_the_extra_and_refuses_runs_that_fit_no_node(
    monkeypatch):
  import types
  from experiments.runners import ray_runner
  monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
  with pytest.raises(ImportError, match=r"pip install -e '\.\[ray\]'"):
    runners.get("ray").make(resources="auto")
  monkeypatch.undo()
  _needs_ray()
  runner = ray_runner.RayRunner(resources="GPU=1")
  runner._ray = types.SimpleNamespace(  # a 2-CPU cluster, as Ray reports it
      cluster_resources=lambda: {"CPU": 2.0, "memory": 1e9},
      nodes=lambda: [{"Alive": True, "Resources": {"CPU": 2.0}}])
  with pytest.raises(ConfigError, match=r"\(CPU=1, GPU=1\) fits no node"):
    runner._check_cluster()


def test_runner_settings_do_not_change_the_config_hash():
  from experiments import planner
  base = planner.make_plan(_cfg()).config_hash
  moved = _cfg(resources_per_run="GPU=1,CPU=4", max_retries=7)
  moved.lm.mesh.coordinator_address = "10.0.0.1:1234"
  moved.lm.mesh.num_processes, moved.lm.mesh.process_id = 4, 3
  assert planner.make_plan(moved).config_hash == base
  assert planner.make_plan(_cfg(n_sizes=4)).config_hash != base
  from experiments.sweep_config import PlanError
  with pytest.raises(PlanError, match="max_retries"):
    planner.make_plan(_cfg(max_retries=-1))
  with pytest.raises(PlanError, match="resources_per_run"):
    planner.make_plan(_cfg(resources_per_run="GPU"))


def _line(run_id, status, loss=2.0, N=1000):
  return {"schema_version": 1, "run_id": run_id, "budget": 1e9, "N": N,
          "D": 1e9 / (6 * N), "C": 1e9, "eval_loss": loss, "status": status,
          "flop_convention": "6N"}


def test_ledger_failed_lines_are_superseded_and_order_does_not_matter(tmp_path):
  from scaling.io.loaders import load_runs
  lines = [_line("a", "ok", 2.0, 1000), _line("b", "failed", None, 2000),
           _line("c", "ok", 2.2, 4000), _line("b", "ok", 1.9, 2000),
           _line("d", "ok", 2.1, 500)]
  path = str(tmp_path / "results.jsonl")
  with open(path, "w") as f:
    f.writelines(json.dumps(r) + "\n" for r in lines)
  led = Ledger(path)
  assert len(led.lines()) == 5
  assert {r["run_id"]: r["status"] for r in led.read()} == {
      "a": "ok", "b": "ok", "c": "ok", "d": "ok"}
  assert led.finished_ids() == {"a", "b", "c", "d"}
  runs = load_runs(path)  # the superseded failed line is no exclusion
  assert not runs.provenance["exclusions"] and len(runs.N) == 4
  shuffled = str(tmp_path / "shuffled.jsonl")
  rows = lines[:]
  random.Random(0).shuffle(rows)
  rows.remove(lines[1])
  rows.insert(0, lines[1])  # a failed line stays before its retry
  with open(shuffled, "w") as f:
    f.writelines(json.dumps(r) + "\n" for r in rows)
  again = load_runs(shuffled)
  for k in ("N", "D", "C", "loss"):
    assert getattr(again, k).tolist() == getattr(runs, k).tolist()
  with open(path, "a") as f:  # a finished run must never appear again
    f.write(json.dumps(_line("a", "failed")) + "\n")
  with pytest.raises(LedgerError, match=r"results.jsonl:6: run a appears "
                     "twice: again after its final outcome on line 1"):
    led.read()


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
  """A local sweep whose run FAIL fails twice (recorded 'failed', max_retries
  = 1), then a second invocation that trains it: (workdir, first records)."""
  from experiments import planner
  from experiments.executor import run_sweep
  workdir = str(tmp_path_factory.mktemp("local_sweep"))
  cfg = _cfg(max_retries=1)
  fail = planner.make_plan(cfg).runs[1].run_id
  mp = pytest.MonkeyPatch()
  mp.setenv(faulty_trainer.FAIL_RUN_ENV, fail)
  logged = []
  try:
    first = run_sweep(cfg, workdir, progress=False, log=logged.append,
                      trainer="tests.helpers.faulty_trainer:fail_one_run")
  finally:
    mp.undo()
  second = run_sweep(cfg, workdir, progress=False, log=logged.append)
  return workdir, fail, first, second, logged


def test_failed_run_is_retried_recorded_then_retried_next_time(local_sweep):
  workdir, fail, first, second, logged = local_sweep
  status = {r["run_id"]: r for r in first}
  assert status[fail]["status"] == "failed" and len(first) == 3
  assert "RuntimeError: injected failure" in status[fail]["error"]
  assert "after 2 attempts" in status[fail]["error"]
  assert sum(s["status"] == "ok" for s in first) == 2
  assert any("failed (attempt 1 of 2" in m and "retrying" in m for m in logged)
  assert any("1 failed before, retried now" in m for m in logged)
  lines = Ledger(os.path.join(workdir, "results.jsonl")).lines()
  assert [r["run_id"] for r in lines].count(fail) == 2  # failed, then ok
  assert len(lines) == 4 and all(r["status"] == "ok" for r in second)
  assert len({r["run_id"] for r in second}) == 3


def test_ray_crashed_workers_are_retried_then_recorded_failed(tmp_path,
                                                              monkeypatch):
  _needs_ray()
  from experiments.executor import run_sweep
  for k, v in RAY_ENV.items():
    monkeypatch.setenv(k, v)
  monkeypatch.delenv("RAY_ADDRESS", raising=False)  # a private instance
  logged = []
  recs = run_sweep(_cfg(max_retries=1), str(tmp_path / "w"), executor="ray",
                   executor_options={"num_cpus": 2}, progress=False,
                   log=logged.append,
                   trainer="tests.helpers.faulty_trainer:crash_worker")
  assert len(recs) == 3 and all(r["status"] == "failed" for r in recs)
  for r in recs:
    assert "WorkerCrashedError" in r["error"] and "after 2 attempts" in r["error"]
  assert sum("retrying from its checkpoint" in m for m in logged) == 3
  assert any(m.startswith("ray: a private Ray instance") for m in logged)


def _ray_sweep(workdir):
  return [sys.executable, "-m", "experiments.isoflop", f"--config={CONFIG}",
          f"--workdir={workdir}", BUDGET, "--noanalyze", "--noprogress",
          "--executor=ray"]


def test_ray_sweep_survives_driver_sigkill_and_matches_local(tmp_path,
                                                             local_sweep):
  _needs_ray()
  env = dict(os.environ, **RAY_ENV)
  env.pop("RAY_ADDRESS", None)  # a private instance
  workdir = str(tmp_path / "ray")
  ledger = os.path.join(workdir, "results.jsonl")
  # Own session: after the driver is killed, its Ray processes are reaped by
  # process group (they are this test's processes).
  p = subprocess.Popen(_ray_sweep(workdir), cwd=ROOT, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       text=True, start_new_session=True)
  try:
    deadline = time.time() + 600
    while not (os.path.exists(ledger) and os.path.getsize(ledger)):
      if p.poll() is not None or time.time() > deadline:
        pytest.fail(f"sweep ended before it was killed: {p.stderr.read()[-2000:]}")
      time.sleep(0.05)
    os.kill(p.pid, signal.SIGKILL)  # the driver only
    p.wait()
  finally:
    try:
      os.killpg(p.pid, signal.SIGKILL)  # what the driver started
    except ProcessLookupError:
      pass
  n_before = len(Ledger(ledger).lines())
  assert 1 <= n_before < 3
  out = subprocess.run(_ray_sweep(workdir), cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=600,
                       start_new_session=True)
  assert out.returncode == 0, out.stderr[-3000:]
  assert f"{n_before} runs in the ledger" in out.stdout
  got = Ledger(ledger).lines()
  want = Ledger(os.path.join(local_sweep[0], "results.jsonl")).read()
  assert sorted(r["run_id"] for r in got) == sorted(r["run_id"] for r in want)
  by_id = {r["run_id"]: r for r in want}
  for g in got:  # identical losses, in whatever order the runs finished
    assert {k: g[k] for k in COMPARE} == {k: by_id[g["run_id"]][k]
                                          for k in COMPARE}


def test_sweep_on_two_processes_writes_one_ledger_like_one_process(
    tmp_path, local_sweep):
  from tests.helpers import multihost
  two = str(tmp_path / "two")
  cmd = ("experiments.isoflop", f"--config={CONFIG}", f"--workdir={two}",
         BUDGET, "--noanalyze", "--noprogress",
         "--config.lm.train.ckpt_every=0")  # not hashed: fewer orbax saves
  multihost.wait(multihost.start(cmd, 2, devices=1, prefix="--config.lm.mesh"))
  lines = Ledger(os.path.join(two, "results.jsonl")).lines()
  want = {r["run_id"]: r for r in
          Ledger(os.path.join(local_sweep[0], "results.jsonl")).read()}
  assert sorted(r["run_id"] for r in lines) == sorted(want)  # once each
  for r in lines:
    w = want[r["run_id"]]
    assert {k: r[k] for k in ("N", "D", "C", "steps", "status", "shape")} == {
        k: w[k] for k in ("N", "D", "C", "steps", "status", "shape")}
    # 2 devices (one per process) vs 1: the batch mean is reduced in another
    # order; measured <= 2e-7 relative after 99-448 steps; a host reading the
    # wrong rows would move it by > 1e-2.
    assert r["eval_loss"] == pytest.approx(w["eval_loss"], rel=1e-5)
    with open(os.path.join(two, "runs", r["run_id"], "run.json")) as f:
      assert json.load(f)["n_processes"] == 2
  with open(os.path.join(two, "sweep.json")) as f:
    assert json.load(f)["config_hash"] == json.load(
        open(os.path.join(local_sweep[0], "sweep.json")))["config_hash"]
