"""IsoFLOP sweeps end to end: run, ledger, SIGKILL + resume, corrupted ledger, config change."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT, run_cli

CONFIG = "--config=experiments/configs/tiny_sweep.py"
COMPARE = ("run_id", "budget", "N", "D", "C", "eval_loss", "train_loss",
           "status", "steps", "shape")


def _ledger(workdir):
  with open(os.path.join(workdir, "results.jsonl")) as f:
    return [json.loads(l) for l in f]


def _sweep(workdir, *extra):
  return [sys.executable, "-m", "experiments.isoflop", CONFIG,
          f"--workdir={workdir}", "--noanalyze", "--noprogress", *extra]


@pytest.fixture(scope="module")
def full_sweep(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("sweep_full"))
  out = subprocess.run(_sweep(workdir), cwd=ROOT, capture_output=True,
                       text=True, timeout=900)
  assert out.returncode == 0, out.stderr[-3000:]
  return workdir


def test_sweep_ledger_and_run_dirs(full_sweep):
  from experiments import planner
  from tests.helpers.load_config import load
  plan = planner.make_plan(load("experiments/configs/tiny_sweep.py"))
  recs = _ledger(full_sweep)
  assert [r["run_id"] for r in recs] == [r.run_id for r in plan.runs]
  metas = []
  for r, p in zip(recs, plan.runs):
    assert r["schema_version"] == 1 and r["status"] == "ok"
    assert abs(r["C"] / r["budget"] - 1) <= 0.01
    assert r["D"] == p.steps * p.batch_size * p.seq_len
    run_dir = os.path.join(full_sweep, "runs", r["run_id"])
    meta = json.load(open(os.path.join(run_dir, "run.json")))
    assert meta["eval_loss"] == r["eval_loss"]
    assert os.path.getsize(os.path.join(run_dir, "metrics.jsonl")) > 0
    metas.append(meta)
  # Every run of the sweep scored the same held-out token ids.
  assert len({m["eval_sha256"] for m in metas}) == 1
  assert {m["eval_tokens"] for m in metas} == {4096}
  assert all(0 < m["epochs"] <= 1 and m["eval_loss_se"] > 0 for m in metas)
  # The ledger carries each run's measurement as its run.json states it.
  for r, m, p in zip(recs, metas, plan.runs):
    for key in ("eval_loss_se", "eval_tokens", "eval_sha256", "eval_flops",
                "epochs", "flops_per_token"):
      assert r[key] == m[key], key
    assert r["C"] == pytest.approx(r["flops_per_token"] * r["D"], rel=1e-12)
    assert (r["seed"], r["repeat_of"]) == (p.seed, None)


def test_a_result_on_another_eval_set_is_refused_before_it_is_appended(
    full_sweep, tmp_path):
  from experiments import executor
  from experiments.ledger import Ledger
  recs = _ledger(full_sweep)
  path = tmp_path / "results.jsonl"
  ledger = Ledger(str(path))
  ledger.append(recs[0])
  executor.check_eval_set(recs[1], ledger.read())        # same eval set: fine
  other = dict(recs[1], eval_sha256="f" * 64)
  with pytest.raises(executor.EvalSetMismatch) as e:
    executor.check_eval_set(other, ledger.read())
  msg = str(e.value)
  assert recs[0]["run_id"] in msg and recs[1]["run_id"] in msg
  assert "ffffffffffff" in msg and recs[0]["eval_sha256"][:12] in msg


def test_sigkill_mid_sweep_then_resume_matches(tmp_path, full_sweep):
  workdir = str(tmp_path / "killed")
  p = subprocess.Popen(_sweep(workdir), cwd=ROOT, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
  ledger = os.path.join(workdir, "results.jsonl")
  deadline = time.time() + 600
  while time.time() < deadline:
    n = len(open(ledger).readlines()) if os.path.exists(ledger) else 0
    if n >= 2:
      break
    if p.poll() is not None:
      pytest.fail("sweep ended before it was killed")
    time.sleep(0.05)
  os.kill(p.pid, signal.SIGKILL)
  p.wait()
  n_before = len(_ledger(workdir))
  assert 2 <= n_before < len(_ledger(full_sweep))
  out = subprocess.run(_sweep(workdir), cwd=ROOT, capture_output=True,
                       text=True, timeout=900)
  assert out.returncode == 0, out.stderr[-3000:]
  assert "resuming" in out.stdout
  got, want = _ledger(workdir), _ledger(full_sweep)
  assert [r["run_id"] for r in got] == [r["run_id"] for r in want]  # none twice
  for g, w in zip(got, want):
    assert {k: g[k] for k in COMPARE} == {k: w[k] for k in COMPARE}  # bitwise


def test_corrupted_ledger_line_is_named_and_preserved(tmp_path, full_sweep):
  import shutil
  workdir = str(tmp_path / "corrupt")
  shutil.copytree(full_sweep, workdir)
  path = os.path.join(workdir, "results.jsonl")
  lines = open(path).read().splitlines(keepends=True)
  lines[1] = lines[1][: len(lines[1]) // 2] + "\n"
  open(path, "w").write("".join(lines))
  before = open(path, "rb").read()
  for module, args in (("experiments.isoflop", _sweep(workdir)[3:]),
                       ("experiments.analyze", [workdir])):
    out = run_cli(module, *args)
    assert out.returncode == 2, out.stderr[-2000:]
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "results.jsonl:2" in last, last
  assert open(path, "rb").read() == before


def test_changed_config_is_refused(tmp_path, full_sweep):
  import shutil
  workdir = str(tmp_path / "changed")
  shutil.copytree(full_sweep, workdir)
  out = run_cli("experiments.isoflop", *_sweep(workdir, "--config.sweep.n_sizes=4")[3:])
  assert out.returncode == 2
  assert "different sweep config" in out.stderr.strip().splitlines()[-1]


def test_plan_only_runs_nothing(tmp_path):
  out = run_cli("experiments.isoflop", CONFIG, f"--workdir={tmp_path}/w",
                "--plan_only")
  assert out.returncode == 0, out.stderr[-2000:]
  assert "budget" in out.stdout and "FLOPs err" in out.stdout
  assert not os.path.exists(tmp_path / "w")


def test_diverged_runs_are_recorded_and_excluded(tmp_path):
  workdir = str(tmp_path / "diverge")
  out = run_cli("experiments.isoflop", CONFIG, f"--workdir={workdir}",
                "--noprogress", "--noanalyze",
                "--config.sweep.budgets=(1e9,)", "--config.sweep.lr_rule=fixed",
                "--config.sweep.lr_constant=1e30", "--config.sweep.lr_max=1e30",
                "--config.lm.train.grad_clip=1e30")
  assert out.returncode == 0, out.stderr[-2000:]
  recs = _ledger(workdir)
  assert recs and all(r["status"] == "diverged" for r in recs)
  assert "diverged" in out.stdout
  out = run_cli("experiments.analyze", workdir)
  assert out.returncode == 2
  last = out.stderr.strip().splitlines()[-1]
  assert last.startswith("error: "), out.stderr[-2000:]


def test_tiny_sweep_analysis_step_completes(full_sweep, tmp_path):
  """It used to exit 2 always: at C=1e9 the loss is monotone in N over the
  grid, so Approach 2 has one usable budget. The analysis reports Approach 3
  and says why 1 and 2 were skipped."""
  import shutil
  import warnings
  from experiments.analyze import analyze
  workdir = str(tmp_path / "analyzed")
  shutil.copytree(full_sweep, workdir)
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    analyze(workdir, bootstrap=0, plots=False)  # raised ScalingDataError
  fit = json.load(open(os.path.join(workdir, "report", "fit.json")))
  assert "approach3" in fit
  for a in (1, 2):
    if f"approach{a}" not in fit:
      assert any(w.startswith(f"Approach {a} skipped: ") for w in fit["warnings"])
