"""Learning-rate grids in sweeps (sweep.lr_multipliers, experiments.lr_grid):
planned for both schemes, recorded in the ledger, resumed; the default grid
plans exactly the runs of a sweep without one. The executor tests train with
tests.helpers.lr_law.fake_train (a known law, no JAX)."""
import dataclasses
import os

import pytest

from experiments import lr_grid, planner
from experiments.ledger import Ledger
from experiments.sweep_config import PlanError
from tests.helpers import lr_law
from tests.helpers.load_config import load
from tests.helpers.planner_cfg import sweep_cfg

GRID = (0.5, 1.0, 2.0)
FAKE = "tests.helpers.lr_law:fake_train"


def _tiny(scheme="independent", grid=GRID, repeats=1):
  cfg = load("experiments/configs/tiny_sweep.py")
  cfg.sweep.lr_multipliers = grid
  cfg.sweep.seed_repeats = repeats
  cfg.sweep.max_retries = 0
  cfg.sweep.scheme = scheme
  if scheme == "wsd_trunk":
    cfg.lm.train.schedule = "wsd"
  return cfg


def test_default_grid_plans_todays_runs_and_keeps_the_config_hash():
  for scheme in ("independent", "wsd_trunk"):
    cfg = _tiny(scheme, grid=(1.0,))
    plan = planner.make_plan(cfg)
    from lm.config.config_dict import ConfigDict
    legacy = ConfigDict(cfg.to_dict())
    del legacy.sweep["lr_multipliers"]   # a config from before the field
    assert planner.config_hash(legacy) == plan.config_hash
    assert all(r.lr_multiplier == 1.0 and "_lrx" not in r.run_id
               for r in plan.runs)
    assert all("_lrx" not in t.trunk_id for t in plan.trunks)
    # ... and exactly the runs the grid-free planning path gives.
    import experiments.lr_grid as g
    mp = pytest.MonkeyPatch()
    mp.setattr(g, "expand", lambda runs, grid: list(runs))
    try:
      assert planner.make_plan(cfg).runs == plan.runs
    finally:
      mp.undo()
  assert planner.config_hash(_tiny(grid=GRID)) != planner.config_hash(
      _tiny(grid=(1.0,)))


@pytest.mark.parametrize("scheme", ["independent", "wsd_trunk"])
def test_every_point_at_every_multiplier_repeats_at_the_reference(scheme):
  base = planner.make_plan(_tiny(scheme, grid=(1.0,)))
  plan = planner.make_plan(_tiny(scheme))
  by_id = {r.run_id: r for r in plan.runs}
  bases = [r for r in base.runs if r.repeat_of is None]
  assert len(plan.runs) == len(bases) * len(GRID) + (len(base.runs)
                                                     - len(bases))
  for r in bases:
    for m in GRID:
      got = by_id[r.run_id + lr_grid.suffix(m)]
      assert got.lr == pytest.approx(r.lr * m, rel=1e-12)
      assert got.lr_multiplier == m
      assert dataclasses.replace(got, run_id=r.run_id, lr=r.lr,
                                 lr_multiplier=1.0, trunk_id=r.trunk_id) == r
  repeats = [r for r in plan.runs if r.repeat_of]
  assert repeats and all(r.lr_multiplier == 1.0 and r.repeat_of in by_id
                         for r in repeats)
  if scheme == "wsd_trunk":   # one trunk per (shape, seed, multiplier)
    keys = {(tuple(t.shape.values()), t.seed, t.lr_multiplier)
            for t in plan.trunks}
    assert len(keys) == len(plan.trunks) == len(base.trunks) + (
        len(GRID) - 1) * sum(t.seed == 0 for t in base.trunks)
    trunks = {t.trunk_id: t for t in plan.trunks}
    for r in plan.runs:
      assert trunks[r.trunk_id].lr == r.lr
      assert trunks[r.trunk_id].lr_multiplier == r.lr_multiplier


def test_reference_multiplier_without_one_in_the_grid():
  plan = planner.make_plan(_tiny(grid=(0.7, 1.4, 2.8)))
  rep = [r for r in plan.runs if r.repeat_of]
  assert rep and {r.lr_multiplier for r in rep} == {1.4}
  assert all("_lrx1.4" in r.run_id for r in rep)


@pytest.mark.parametrize("grid", [(), (0.0, 1.0), (-1.0,), ("a",), (1.0, 1.0),
                                  (float("nan"),)])
def test_bad_multipliers_are_one_line_plan_errors(grid):
  with pytest.raises(PlanError, match="sweep.lr_multipliers"):
    planner.make_plan(sweep_cfg(lr_multipliers=grid))


def _run(workdir, cfg, trainer=FAKE):
  from experiments.executor import run_sweep
  return run_sweep(cfg, workdir, progress=False, trainer=trainer,
                   log=lambda m: None)


@pytest.mark.parametrize("scheme", ["independent", "wsd_trunk"])
def test_ledger_records_lr_multiplier_and_batch_tokens_and_resumes(
    scheme, tmp_path, monkeypatch):
  cfg = _tiny(scheme)
  plan = planner.make_plan(cfg)
  victim = next(r.run_id for r in plan.runs if r.lr_multiplier == 2.0)
  monkeypatch.setenv(lr_law.FAIL_ENV, victim)
  workdir = str(tmp_path / "w")
  lr_law.CALLS.clear()
  first = {r["run_id"]: r for r in _run(workdir, cfg)}
  assert first[victim]["status"] == "failed"
  assert sum(r["status"] == "ok" for r in first.values()) == len(plan.runs) - 1
  lr_law.CALLS.clear()
  recs = {r["run_id"]: r for r in _run(workdir, cfg)}   # resume
  assert lr_law.CALLS == [victim]                       # nothing else again
  assert set(recs) == {r.run_id for r in plan.runs}
  for r in plan.runs:
    rec = recs[r.run_id]
    assert rec["status"] == "ok"
    assert rec["lr"] == pytest.approx(r.lr, rel=1e-12)
    assert rec["lr_multiplier"] == r.lr_multiplier
    assert rec["batch_tokens"] == r.batch_size * r.seq_len
  # The ledger round-trips through the schema every reader uses.
  lines = Ledger(os.path.join(workdir, "results.jsonl")).lines()
  assert {float(x["lr_multiplier"]) for x in lines} == set(GRID)
  # A changed grid on the same workdir is refused, nothing written.
  from experiments.executor import SweepConfigChanged
  before = open(os.path.join(workdir, "results.jsonl"), "rb").read()
  with pytest.raises(SweepConfigChanged):
    _run(workdir, _tiny(scheme, grid=(0.5, 1.0)))
  assert open(os.path.join(workdir, "results.jsonl"), "rb").read() == before


def test_ray_fan_out_records_the_same_ledger_as_local(tmp_path, monkeypatch):
  """Every (shape, multiplier) trunk and branch through Ray tasks, side by
  side: the same outcomes as the local runner's."""
  pytest.importorskip("ray", reason="Ray is not installed (pip install -e "
                      "'.[ray]'; CI gets it through '.[test]')")
  from experiments.executor import run_sweep
  from tests.conftest import ROOT
  monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
  monkeypatch.setenv("PYTHONPATH", ROOT)
  monkeypatch.delenv("RAY_ADDRESS", raising=False)
  cfg = _tiny("wsd_trunk")
  local = _run(str(tmp_path / "local"), cfg)
  ray = run_sweep(cfg, str(tmp_path / "ray"), executor="ray",
                  executor_options={"num_cpus": 2}, progress=False,
                  trainer=FAKE, log=lambda m: None)
  keys = ("run_id", "lr", "lr_multiplier", "batch_tokens", "eval_loss",
          "status", "trunk_id", "branch_step")
  pick = lambda recs: sorted(tuple(r.get(k) for k in keys) for r in recs)
  assert pick(ray) == pick(local)
  assert all(r["status"] == "ok" for r in ray)
