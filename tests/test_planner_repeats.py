"""Seed repeats and the epoch guard of the planner (sweep.seed_repeats,
sweep.max_epochs, count_unique_tokens)."""
import math

import pytest

from experiments import planner
from experiments.configs import c4_small, quickstart
from lm.config import ConfigError
from tests.helpers.planner_cfg import sweep_cfg


def test_seed_repeats_copy_the_central_run_with_new_seeds():
  base = planner.make_plan(sweep_cfg())
  plan = planner.make_plan(sweep_cfg(seed_repeats=2))
  assert len(plan.runs) == len(base.runs) + 2 * len(base.budgets())
  for C in plan.budgets():
    reps = [r for r in plan.runs if r.budget == C and r.repeat_of]
    assert len(reps) == 2
    (orig,) = {r.repeat_of for r in reps}
    first = next(r for r in plan.runs if r.run_id == orig)
    # The repeated size is the one nearest the budget's centre in log N.
    sizes = [r for r in plan.runs if r.budget == C and not r.repeat_of]
    gap = lambda r: abs(math.log(r.N / plan.centers[C]))
    assert gap(first) == min(gap(r) for r in sizes)
    assert sorted(r.seed for r in reps) == [first.seed + 1, first.seed + 2]
    for r in reps:
      assert (r.shape, r.D, r.steps, r.lr, r.batch_size) == (
          first.shape, first.D, first.steps, first.lr, first.batch_size)
      assert r.lm_config(sweep_cfg().lm).train.seed == r.seed
  ids = [r.run_id for r in plan.runs]
  assert len(set(ids)) == len(ids)
  assert planner.config_hash(sweep_cfg(seed_repeats=2)) != planner.config_hash(
      sweep_cfg())
  # max_epochs is a guard, not a result: it does not change the hash.
  assert planner.config_hash(sweep_cfg(max_epochs=3.0)) == planner.config_hash(
      sweep_cfg())


@pytest.mark.parametrize("field,value", [
    ("seed_repeats", -1), ("seed_repeats", 1.5), ("max_epochs", -0.5),
    ("max_epochs", float("inf"))])
def test_bad_repeat_and_epoch_settings(field, value):
  with pytest.raises(planner.PlanError, match=field):
    planner.make_plan(sweep_cfg(**{field: value}))


def test_epoch_guard_names_the_run_and_the_missing_text():
  plan = planner.make_plan(sweep_cfg())
  D_max = max(r.D for r in plan.runs)
  ok = planner.make_plan(sweep_cfg(), unique_train_tokens=D_max)  # 1 epoch
  assert ok.epochs(max(ok.runs, key=lambda r: r.D)) == 1.0
  assert "epochs = D / " in planner.format_plan(ok)
  with pytest.raises(planner.PlanError) as e:
    planner.make_plan(sweep_cfg(), unique_train_tokens=D_max // 2)
  msg = str(e.value)
  biggest = max(plan.runs, key=lambda r: r.D)
  assert biggest.run_id in msg and "\n" not in msg
  assert f"{D_max - D_max // 2:,} more unique tokens" in msg
  # max_epochs=2 admits the same data; 0 disables the guard.
  planner.make_plan(sweep_cfg(max_epochs=2.0), unique_train_tokens=D_max // 2)
  planner.make_plan(sweep_cfg(max_epochs=0), unique_train_tokens=1)
  # The guard reaches the trainer too (tfds: counted only when a run starts).
  assert plan.runs[0].lm_config(sweep_cfg().lm).train.max_epochs == 1.0


def test_quickstart_counts_its_corpus_and_repeats_no_data():
  cfg = quickstart.get_config()
  U = planner.count_unique_tokens(cfg)
  plan = planner.make_plan(cfg, unique_train_tokens=U)
  assert U > 0 and max(plan.epochs(r) for r in plan.runs) <= 1.0


def test_unprepared_tfds_is_not_counted_but_bad_files_are_errors(tmp_path):
  cfg = c4_small.get_config()
  cfg.lm.data.tfds_data_dir = str(tmp_path / "no_such_dir")
  assert planner.count_unique_tokens(cfg) is None    # --plan_only on a laptop
  files = sweep_cfg()
  files.lm.data.source = "files"
  files.lm.data.path = str(tmp_path / "missing.txt")
  with pytest.raises(ConfigError, match="missing.txt"):
    planner.count_unique_tokens(files)
