"""WSD trunks and cooldown branches (sweep.scheme='wsd_trunk'): the plan, and
a sweep killed at every kind of point resumes to the uninterrupted sweep's
ledger, bitwise, with no trunk segment or branch step trained twice."""
import os

import pytest

from experiments import planner
from experiments.ledger import Ledger
from experiments.sweep_config import PlanError
from lm import schedules
from tests.helpers.load_config import load

COMPARE = ("run_id", "budget", "N", "D", "C", "eval_loss", "eval_loss_se",
           "train_loss", "status", "steps", "compute_spent", "trunk_id",
           "branch_step", "scheme", "schedule")
TRAINED = []       # (run dir, first step, last step) of every training call
CRASH = {}         # run_id -> (step to stop at, or None: after finishing)


def _cfg(scheme="wsd_trunk"):
  cfg = load("experiments/configs/tiny_sweep.py")
  cfg.sweep.scheme = scheme
  cfg.sweep.max_retries = 0
  cfg.lm.train.schedule = "wsd" if scheme == "wsd_trunk" else "cosine"
  cfg.lm.train.ckpt_every = 100
  if scheme != "wsd_trunk":
    cfg.sweep.size_grid = "shared"
  return cfg


class Killed(BaseException):
  """A crash between two steps: not an Exception, so nothing retries it."""


def crashing_train(config, workdir, **kwargs):
  """lm.trainer.train, killed (after its last save) where CRASH says."""
  from lm import trainer
  run_id = os.path.basename(os.path.normpath(workdir))
  if run_id in CRASH:
    step = CRASH.pop(run_id)
    if step is not None:
      kwargs["stop_at"] = step
    trainer.train(config, workdir, **kwargs)
    raise Killed(f"{run_id} at {step}")
  return trainer.train(config, workdir, **kwargs)


@pytest.fixture(scope="module", autouse=True)
def count_training(request):
  """Records the steps every trainer call actually trains."""
  from lm import trainer
  mp = pytest.MonkeyPatch()
  real = trainer._loop

  def loop(su, start, stop, *args, **kwargs):
    out = real(su, start, stop, *args, **kwargs)
    TRAINED.append((args[4], start.step, out[1]))  # workdir
    return out
  mp.setattr(trainer, "_loop", loop)
  yield
  mp.undo()


def test_plan_shares_shapes_across_budgets_and_branches_at_cooldown_start():
  plan = planner.make_plan(_cfg())
  assert plan.scheme == "wsd_trunk" and len(plan.trunks) == 3
  by_trunk = {t.trunk_id: t for t in plan.trunks}
  for r in plan.runs:
    t = by_trunk[r.trunk_id]
    assert r.branch_step == schedules.decay_start(r.steps, 0.2)
    assert r.branch_step in t.branch_steps and t.steps >= r.steps
    assert (r.batch_size, r.lr, r.warmup_steps) == (
        t.batch_size, t.lr, t.warmup_steps)  # fixed per shape
    assert abs(r.flops / r.budget - 1) <= 0.01
  # Each trunk serves both budgets: spent = trunks to P_max + cooldowns.
  assert all(len(t.branch_steps) == 2 for t in plan.trunks)
  spent = (sum(t.flops_per_step * max(t.branch_steps) for t in plan.trunks)
           + sum(r.flops * (r.steps - r.branch_step) / r.steps
                 for r in plan.runs))
  assert plan.spent_flops() == pytest.approx(spent)
  assert plan.spent_flops() < 0.8 * plan.independent_flops()
  # The independent plan on the same grid: the same (N, D) points.
  ind = planner.make_plan(_cfg("independent"))
  assert sorted((r.N, r.D) for r in ind.runs) == sorted(
      (r.N, r.D) for r in plan.runs)
  assert ind.spent_flops() == ind.independent_flops()


def test_wsd_trunk_needs_wsd_runs_and_the_shared_grid():
  cfg = _cfg()
  cfg.lm.train.schedule = "cosine"
  with pytest.raises(PlanError, match="lm.train.schedule='cosine'"):
    planner.make_plan(cfg)
  cfg = _cfg()
  cfg.sweep.size_grid = "per_budget"
  with pytest.raises(PlanError, match="size_grid='shared'"):
    planner.make_plan(cfg)


def _sweep(workdir, trainer="lm.trainer:train"):
  from experiments.executor import run_sweep
  return run_sweep(_cfg(), workdir, progress=False, trainer=trainer,
                   log=lambda m: None)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("wsd_full"))
  _sweep(workdir)
  return workdir


def _intervals(workdir):
  out = {}
  for d, a, b in TRAINED:
    if d.startswith(workdir):
      out.setdefault(os.path.basename(d), []).append((a, b))
  return out


def _assert_each_step_trained_once(workdir, plan):
  spans = _intervals(workdir)
  for t in plan.trunks:
    steps = sorted(spans[t.trunk_id])
    assert steps[0][0] == 0 and steps[-1][1] == max(t.branch_steps), steps
    assert all(a[1] == b[0] for a, b in zip(steps, steps[1:])), steps
  for r in plan.runs:
    steps = sorted(spans[r.run_id])
    assert steps[0][0] == r.branch_step and steps[-1][1] == r.steps, steps
    assert all(a[1] == b[0] for a, b in zip(steps, steps[1:])), steps


def test_uninterrupted_sweep_trains_trunks_once_and_records_branches(
    uninterrupted):
  plan = planner.make_plan(_cfg())
  _assert_each_step_trained_once(uninterrupted, plan)
  recs = {r["run_id"]: r for r in Ledger(
      os.path.join(uninterrupted, "results.jsonl")).read()}
  assert set(recs) == {r.run_id for r in plan.runs}
  for r in plan.runs:
    rec = recs[r.run_id]
    assert rec["status"] == "ok" and rec["scheme"] == "wsd_trunk"
    assert rec["C"] == pytest.approx(r.flops, rel=1e-12)  # what it represents
    assert rec["compute_spent"] == pytest.approx(
        rec["C"] * (r.steps - r.branch_step) / r.steps, rel=1e-12)
    assert (rec["trunk_id"], rec["branch_step"]) == (r.trunk_id, r.branch_step)


def test_killed_at_every_kind_of_point_resumes_bitwise(uninterrupted, tmp_path):
  plan = planner.make_plan(_cfg())
  small, mid, big = plan.trunks  # the local runner: tasks in FIFO order

  def top(t):
    return max((r for r in plan.runs if r.trunk_id == t.trunk_id),
               key=lambda r: r.steps)
  assert big.branch_steps[0] < 100 < big.branch_steps[1]
  kills = [
      # a trunk segment finished, killed before its branches ran
      {mid.trunk_id: None},
      # a trunk killed between branch points (after its step-100 save)
      {big.trunk_id: 100},
      # a branch killed mid-cooldown (after its own save)
      {top(small).run_id: (top(small).branch_step + top(small).steps) // 2},
      # a branch finished training, killed before its ledger line
      {top(mid).run_id: None},
  ]
  workdir = str(tmp_path / "killed")
  for kill in kills:
    CRASH.clear()
    CRASH.update(kill)
    with pytest.raises(Killed):
      _sweep(workdir, trainer="tests.test_trunks:crashing_train")
  _sweep(workdir)
  _assert_each_step_trained_once(workdir, plan)
  got = Ledger(os.path.join(workdir, "results.jsonl")).lines()
  want = {r["run_id"]: r for r in Ledger(
      os.path.join(uninterrupted, "results.jsonl")).read()}
  assert sorted(r["run_id"] for r in got) == sorted(want)  # each once
  for g in got:
    assert {k: g.get(k) for k in COMPARE} == {
        k: want[g["run_id"]].get(k) for k in COMPARE}


def test_branch_ends_are_the_multi_horizon_curves_of_approach_1(uninterrupted):
  from scaling.io import curves as curves_lib
  from scaling.approach1 import method as approach1
  recs = Ledger(os.path.join(uninterrupted, "results.jsonl")).read()
  curves = curves_lib.branch_curves(recs, uninterrupted)
  assert approach1.horizons(curves) == "multi-horizon"
  by_trunk = {}
  for r in recs:
    by_trunk.setdefault(r["trunk_id"], []).append(r)
  want = {t: rs for t, rs in by_trunk.items() if len(rs) >= 2}
  assert {c.run_id for c in curves} == set(want)
  for c in curves:   # each point: one branch's end-of-cooldown (C, D, L)
    rs = sorted(want[c.run_id], key=lambda r: r["C"])
    assert list(c.C) == [r["C"] for r in rs]
    assert list(c.D) == [r["D"] for r in rs]
    assert list(c.loss) == [r["eval_loss"] for r in rs]


def test_wsd_vs_cosine_accounting_on_the_same_points(uninterrupted, tmp_path):
  """The reduced benchmark (benchmarks/wsd_vs_cosine.py): the same shapes and
  budgets trained as independent cosine runs give the same (N, D, C) points;
  what each sweep reports it spent is what its plan says, and the trunks
  spend less than the independent runs."""
  from experiments import compute as compute_lib
  from experiments.executor import run_sweep
  cosine = str(tmp_path / "cosine")
  run_sweep(_cfg("independent"), cosine, progress=False, log=lambda m: None)
  read = lambda d: {r["run_id"]: r for r in Ledger(
      os.path.join(d, "results.jsonl")).read()}
  ind, wsd = read(cosine), read(uninterrupted)
  assert set(ind) == set(wsd)
  for k in ind:
    assert (ind[k]["N"], ind[k]["D"], ind[k]["C"]) == (
        wsd[k]["N"], wsd[k]["D"], wsd[k]["C"])
    assert (ind[k]["schedule"], wsd[k]["schedule"]) == ("cosine", "wsd")
  spent = {d: compute_lib.sweep_compute(d, list(read(d).values()))
           for d in (cosine, uninterrupted)}
  for d, cfg in ((cosine, _cfg("independent")), (uninterrupted, _cfg())):
    plan = planner.make_plan(cfg)
    assert spent[d]["spent"] == pytest.approx(plan.spent_flops(), rel=1e-9)
    assert spent[d]["independent"] == pytest.approx(
        plan.independent_flops(), rel=1e-9)
  assert spent[cosine]["ratio"] == pytest.approx(1.0)
  assert spent[uninterrupted]["spent"] < spent[cosine]["spent"]
