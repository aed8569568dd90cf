"""sweep.branches=k (experiments.branches): a wsd_trunk sweep trains k cooldown
branches per trunk (its largest budget always) and predicts the rest; the
default 'all' plans exactly as before; a k-branch sweep killed mid-way
resumes to the uninterrupted ledger with nothing trained twice; the plan,
the sweep's end and the cosine-equivalent check name measured vs predicted
points, and no predicted point is counted as a missing run."""
import json
import math
import os

import numpy as np
import pytest

from experiments import branches as branches_lib
from experiments import compute as compute_lib
from experiments import cosine_equivalent as ce
from experiments import planner
from experiments.ledger import Ledger
from experiments.sweep_config import PlanError, config_hash
from lm.config.config_dict import ConfigDict
from scaling.io import validation
from tests.helpers.load_config import load
from tests.test_cosine_equivalent import STEPS, OFFSET, _law, _workdir

COMPARE = ("run_id", "budget", "N", "D", "C", "eval_loss", "train_loss",
           "status", "steps", "compute_spent", "trunk_id", "branch_step")
TRAINED = []       # (run dir, first step, last step) of every training call
CRASH = {}         # run_id -> step to stop at


def _cfg(branches="all", budgets=None):
  cfg = load("experiments/configs/tiny_sweep.py")
  cfg.sweep.scheme = "wsd_trunk"
  cfg.sweep.max_retries = 0
  cfg.lm.train.schedule = "wsd"
  cfg.lm.train.ckpt_every = 100
  if budgets:
    cfg.sweep.budgets = budgets
  cfg.sweep.branches = branches
  return cfg


BUDGETS4 = (1e9, 2e9, 4e9, 8e9)


def test_k2_trains_two_branches_per_trunk_including_the_largest():
  full = planner.make_plan(_cfg(budgets=BUDGETS4))
  plan = planner.make_plan(_cfg("2", BUDGETS4))
  assert plan.branches == 2 and full.branches is None and not full.predicted
  # Every point of the full plan is either trained or predicted, once.
  assert sorted(r.run_id for r in plan.runs + plan.predicted) == sorted(
      r.run_id for r in full.runs)
  assert plan.predicted  # some trunk serves more than 2 budgets
  full_trunks = {t.trunk_id: t for t in full.trunks}
  for t in plan.trunks:
    mine = [r for r in plan.runs if r.trunk_id == t.trunk_id]
    every = [r for r in full.runs if r.trunk_id == t.trunk_id]
    assert len(mine) == min(2, len(every))
    assert max(r.budget for r in mine) == max(r.budget for r in every)
    # The trunk still trains to its longest budget's cooldown start; it
    # keeps checkpoints only where trained branches start.
    assert t.steps == full_trunks[t.trunk_id].steps
    assert max(t.branch_steps) == max(full_trunks[t.trunk_id].branch_steps)
    assert set(t.branch_steps) == {r.branch_step for r in mine}
  assert plan.spent_flops() < full.spent_flops()
  table = planner.format_plan(plan)
  assert (f"{len(plan.runs)} measured + {len(plan.predicted)} predicted "
          "points") in table


def test_spread_is_even_in_log_budget_and_keeps_the_largest():
  b = [1.0, 2.0, 4.0, 8.0, 16.0]
  assert branches_lib.spread(b, 1) == [4]
  assert branches_lib.spread(b, 2) == [0, 4]
  assert branches_lib.spread(b, 3) == [0, 2, 4]
  assert branches_lib.spread(b, 9) == [0, 1, 2, 3, 4]


def test_default_all_plans_as_before_with_the_same_hash():
  cfg = _cfg()
  plan = planner.make_plan(cfg)
  # A config written before the field existed hashes the same.
  d = cfg.to_dict()
  del d["sweep"]["branches"]
  assert config_hash(ConfigDict(d)) == plan.config_hash
  # k equal to the budgets a trunk serves trains everything, but is another
  # config (another hash); '2' and 2 are one config.
  two = planner.make_plan(_cfg("2"))
  assert [r.run_id for r in two.runs] == [r.run_id for r in plan.runs]
  assert two.config_hash != plan.config_hash
  d["sweep"]["branches"] = 2
  assert config_hash(ConfigDict(d)) == two.config_hash


@pytest.mark.parametrize("k", ["0", "-1", "2.5", "3", "x", "", True, 0])
def test_invalid_k_is_one_plan_error(k):
  d = _cfg().to_dict()
  d["sweep"]["branches"] = k  # as a config file's default_sweep(branches=k)
  cfg = ConfigDict(d)
  with pytest.raises(PlanError, match=r"sweep.branches must be 'all' or an "
                     r"integer k with 1 <= k <= 2"):
    planner.make_plan(cfg)


def test_k_needs_the_wsd_trunk_scheme():
  cfg = load("experiments/configs/tiny_sweep.py")
  cfg.sweep.branches = "1"
  with pytest.raises(PlanError, match="wsd_trunk"):
    planner.make_plan(cfg)


# ---------------------------------------------------------------------------
# A k = 1 tiny sweep (2 budgets: each trunk trains its largest budget's branch).

def crashing_train(config, workdir, **kwargs):
  """lm.trainer.train, killed (after its last save) where CRASH says."""
  from lm import trainer
  run_id = os.path.basename(os.path.normpath(workdir))
  if run_id in CRASH:
    kwargs["stop_at"] = CRASH.pop(run_id)
    trainer.train(config, workdir, **kwargs)
    raise KeyboardInterrupt(run_id)
  return trainer.train(config, workdir, **kwargs)


@pytest.fixture(scope="module", autouse=True)
def count_training():
  from lm import trainer
  mp = pytest.MonkeyPatch()
  real = trainer._loop

  def loop(su, start, stop, *args, **kwargs):
    out = real(su, start, stop, *args, **kwargs)
    TRAINED.append((args[4], start.step, out[1]))
    return out
  mp.setattr(trainer, "_loop", loop)
  yield
  mp.undo()


def _sweep(workdir, trainer="lm.trainer:train", log=None):
  from experiments.executor import run_sweep
  return run_sweep(_cfg("1"), workdir, progress=False, trainer=trainer,
                   log=log or (lambda m: None))


@pytest.fixture(scope="module")
def k1(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("k1_full"))
  lines = []
  _sweep(workdir, log=lines.append)
  return workdir, lines


def _spans(workdir):
  out = {}
  for d, a, b in TRAINED:
    if d.startswith(workdir + os.sep):
      out.setdefault(os.path.basename(d), []).append((a, b))
  return out


def _assert_each_step_trained_once(workdir, plan):
  spans = _spans(workdir)
  assert not any(r.run_id in spans for r in plan.predicted)  # never trained
  for name, start, stop in (
      [(t.trunk_id, 0, max(t.branch_steps)) for t in plan.trunks]
      + [(r.run_id, r.branch_step, r.steps) for r in plan.runs]):
    s = sorted(spans[name])
    assert s[0][0] == start and s[-1][1] == stop, (name, s)
    assert all(a[1] == b[0] for a, b in zip(s, s[1:])), (name, s)


def test_k_branch_sweep_records_only_trained_points(k1):
  workdir, lines = k1
  plan = planner.make_plan(_cfg("1"))
  assert plan.predicted and len(plan.runs) == len(plan.trunks)
  _assert_each_step_trained_once(workdir, plan)
  records = Ledger(os.path.join(workdir, "results.jsonl")).read()
  assert sorted(r["run_id"] for r in records) == sorted(
      r.run_id for r in plan.runs)
  assert all(r["status"] == "ok" for r in records)
  # The sweep's end says which points were measured and which predicted.
  n_m, n_p = len(plan.runs), len(plan.predicted)
  assert any(f"points: {n_m} measured" in l and f"+ {n_p} predicted" in l
             for l in lines), lines
  # sweep.json marks the untrained points as predicted, not planned runs:
  # the ledger checks and the analysis summary count no missing run.
  with open(os.path.join(workdir, "sweep.json")) as f:
    meta = json.load(f)
  assert {p["run_id"] for p in meta["predicted"]} == {
      r.run_id for r in plan.predicted}
  path = os.path.join(workdir, "results.jsonl")
  lines_ = list(enumerate(Ledger(path).lines(), 1))
  assert validation.check_ledger(lines_, path)["missing"] == []
  from experiments.analyze import _runs_note, _sweep_summary
  sw = _sweep_summary(records, meta, workdir)
  assert sw["missing"] == [] and "MISSING" not in _runs_note(sw)
  assert f"+ {n_p} predicted points, not trained" in _runs_note(sw)
  # Compute: the real spend, the trunks (to P_max) + the trained cooldowns.
  c = compute_lib.sweep_compute(workdir, records)
  assert c["spent"] == pytest.approx(plan.spent_flops(), rel=1e-9)
  assert c["trunks"] == pytest.approx(sum(t.flops for t in plan.trunks),
                                      rel=1e-9)
  assert c["n_predicted"] == len(plan.predicted)
  assert c["predicted_independent"] == pytest.approx(
      sum(r.flops for r in plan.predicted), rel=1e-12)
  assert f"with its {n_p} predicted (untrained) points" in (
      compute_lib.summary_line(c))


def test_k_branch_sweep_killed_resumes_exactly(k1, tmp_path):
  full, _ = k1
  plan = planner.make_plan(_cfg("1"))
  big = max(plan.trunks, key=lambda t: max(t.branch_steps))
  assert max(big.branch_steps) > 100
  br = max(plan.runs, key=lambda r: r.steps - r.branch_step)
  workdir = str(tmp_path / "killed")
  for kill in ({big.trunk_id: 100}, {br.run_id: (br.branch_step + br.steps)
                                     // 2}):
    CRASH.clear()
    CRASH.update(kill)
    with pytest.raises(KeyboardInterrupt):
      _sweep(workdir, trainer="tests.test_branches:crashing_train")
  _sweep(workdir)
  _sweep(workdir)  # a finished sweep rerun trains nothing
  _assert_each_step_trained_once(workdir, plan)
  spans = _spans(workdir)
  assert len(spans[big.trunk_id]) == 2 and len(spans[br.run_id]) == 2
  got = Ledger(os.path.join(workdir, "results.jsonl")).lines()
  want = {r["run_id"]: r for r in Ledger(
      os.path.join(full, "results.jsonl")).read()}
  assert sorted(r["run_id"] for r in got) == sorted(want)  # each once
  for g in got:
    assert {k: g.get(k) for k in COMPARE} == {
        k: want[g["run_id"]].get(k) for k in COMPARE}


# ---------------------------------------------------------------------------
# The cosine-equivalent check predicts the planned-but-untrained points.

def test_cosine_equivalent_predicts_planned_untrained_points(tmp_path):
  records = _workdir(str(tmp_path))
  # The two middle budgets were planned but not trained (branches=2): their
  # ledger lines and run directories do not exist; sweep.json lists them.
  untrained = [r for r in records if r["steps"] in STEPS[1:3]]
  trained = [r for r in records if r not in untrained]
  for r in untrained:
    import shutil
    shutil.rmtree(os.path.join(str(tmp_path), "runs", r["run_id"]))
  predicted = [dict(run_id=r["run_id"], trunk_id="T0", steps=r["steps"],
                    branch_step=r["branch_step"], flops=r["C"], N=r["N"],
                    D=r["D"], budget=r["budget"]) for r in untrained]
  with open(os.path.join(str(tmp_path), "sweep.json"), "w") as f:
    json.dump({"runs": [], "predicted": predicted}, f)
  out = ce.predict_points(str(tmp_path), trained, bootstrap=0)
  pts = {p["run_id"]: p for p in out["points"]}
  assert set(pts) == {r["run_id"] for r in records}
  for r in records:
    p = pts[r["run_id"]]
    assert p["trained"] == (r in trained) and p["measured"] == (r in trained)
    truth = float(_law("cosine", r["steps"], [r["steps"]])[0]) + OFFSET
    assert abs(p["loss_cosine_pred"] - truth) < 2e-3
  # Approach 2's input: every point of the plan, untrained ones included.
  from scaling.io.types import Runs
  runs = Runs(N=np.array([r["N"] for r in trained], float),
              D=np.array([r["D"] for r in trained], float),
              C=np.array([r["C"] for r in trained], float),
              loss=np.array([r["eval_loss"] for r in trained], float),
              budget=np.array([r["budget"] for r in trained], float),
              run_id=np.array([r["run_id"] for r in trained], object),
              provenance={"source": "x"})
  pr = ce.predicted_runs(runs, out["points"])
  assert sorted(pr.run_id) == sorted(pts)
  assert pr.provenance["untrained_points"] == len(untrained)
  for rid, loss, D in zip(pr.run_id, pr.loss, pr.D):
    assert loss == pts[rid]["loss_cosine_pred"] and D == pts[rid]["D"]
  assert math.isfinite(float(np.sum(pr.C)))
