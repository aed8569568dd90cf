"""AdamW beta2 grids in sweeps (sweep.b2_values, experiments.b2_grid) and the
b2 axis of the tuned analysis (experiments.lr_tuning): the default plans
exactly today's runs under today's hash; a grid plans every point at every
b2 for both schemes (one trunk per shape, multiplier and b2); the ledger
records each run's b2 and the trainer trains at it; on a law whose best b2
is known (tests.helpers.b2_law, no JAX) the analysis picks it per (N, C),
fits the law's a, and the report names b2 as tuned."""
import dataclasses
import os

import numpy as np
import pytest

from experiments import b2_grid, lr_grid, lr_tuning, planner, tuned_hparams
from experiments.ledger import Ledger
from experiments.sweep_config import PlanError
from lm.config.config_dict import ConfigDict
from tests.helpers import b2_law, lr_law
from tests.helpers.load_config import load
from tests.helpers.planner_cfg import sweep_cfg

B2S = (0.95, 0.99, 0.999)
FAKE = "tests.helpers.b2_law:fake_train"


def _tiny(scheme="independent", b2s=B2S, lr=(1.0,), repeats=1):
  cfg = load("experiments/configs/tiny_sweep.py")
  cfg.sweep.b2_values = b2s
  cfg.sweep.lr_multipliers = lr
  cfg.sweep.seed_repeats = repeats
  cfg.sweep.max_retries = 0
  cfg.sweep.scheme = scheme
  if scheme == "wsd_trunk":
    cfg.lm.train.schedule = "wsd"
  return cfg


@pytest.mark.parametrize("scheme", ["independent", "wsd_trunk"])
def test_default_plans_todays_runs_ids_and_hash(scheme, monkeypatch):
  cfg = _tiny(scheme, b2s=())
  plan = planner.make_plan(cfg)
  legacy = ConfigDict(cfg.to_dict())
  del legacy.sweep["b2_values"]          # a config from before the field
  assert planner.config_hash(legacy) == plan.config_hash
  assert all(r.b2 == 0.95 and "_b2" not in r.run_id for r in plan.runs)
  assert all("_b2" not in t.trunk_id for t in plan.trunks)
  # The grid-free path plans the same runs (b2 only made explicit) ...
  monkeypatch.setattr(b2_grid, "expand", lambda runs, grid, base: list(runs))
  old = planner.make_plan(cfg)
  assert [dataclasses.replace(r, b2=None) for r in plan.runs] == list(old.runs)
  assert [dataclasses.replace(t, b2=None) for t in plan.trunks] == list(
      old.trunks)
  # ... and each run's trainer config is the base config's, byte for byte.
  for r, o in zip(plan.runs, old.runs):
    assert r.lm_config(cfg.lm).to_dict() == o.lm_config(cfg.lm).to_dict()
  assert planner.config_hash(_tiny(scheme)) != plan.config_hash


@pytest.mark.parametrize("scheme", ["independent", "wsd_trunk"])
def test_grid_plans_every_point_at_every_b2(scheme):
  lrs = (0.5, 1.0)
  base = planner.make_plan(_tiny(scheme, b2s=(), lr=lrs))
  plan = planner.make_plan(_tiny(scheme, lr=lrs))
  by_id = {r.run_id: r for r in plan.runs}
  bases = [r for r in base.runs if r.repeat_of is None]
  n_rep = len(base.runs) - len(bases)
  assert n_rep and len(plan.runs) == len(bases) * len(B2S) + n_rep
  for r in bases:
    for b in B2S:
      got = by_id[r.run_id + b2_grid.suffix(b, 0.95)]
      assert got.b2 == b and got.lr == r.lr
      assert got.lm_config(ConfigDict(dict(train=dict(b2=0.95), model={},
                                           data={}))).train.b2 == b
      assert dataclasses.replace(got, run_id=r.run_id, b2=0.95,
                                 trunk_id=r.trunk_id) == r
  assert by_id[bases[0].run_id + "_b2_0.99"].b2 == 0.99   # the id suffix
  assert bases[0].run_id in by_id                         # base b2: same id
  repeats = [r for r in plan.runs if r.repeat_of]
  assert all(r.b2 == 0.95 and r.repeat_of in by_id for r in repeats)
  if scheme == "wsd_trunk":   # one trunk per (shape, seed, multiplier, b2)
    keys = {(tuple(t.shape.values()), t.seed, t.lr_multiplier, t.b2)
            for t in plan.trunks}
    assert len(keys) == len(plan.trunks) == len(base.trunks) + (
        len(B2S) - 1) * sum(t.seed == 0 for t in base.trunks)
    trunks = {t.trunk_id: t for t in plan.trunks}
    for r in plan.runs:
      t = trunks[r.trunk_id]
      assert (t.b2, t.lr) == (r.b2, r.lr)
      assert t.lm_config(load("experiments/configs/tiny_sweep.py").lm
                         ).train.b2 == r.b2


def test_reference_b2_without_the_base_in_the_grid():
  plan = planner.make_plan(_tiny(b2s=(0.98, 0.999)))
  rep = [r for r in plan.runs if r.repeat_of]
  assert rep and {r.b2 for r in rep} == {0.98}
  assert all("_b2_0.98" in r.run_id for r in rep)
  assert all("_b2_" in r.run_id for r in plan.runs)


@pytest.mark.parametrize("bad", [(0.0,), (1.0,), (0.9, 0.9), ("a",),
                                 (float("nan"),), (0.9,) * 9, (True,)])
def test_bad_b2_values_are_one_line_plan_errors(bad):
  with pytest.raises(PlanError, match="sweep.b2_values") as e:
    planner.make_plan(sweep_cfg(b2_values=bad))
  assert "\n" not in str(e.value)


def _run(workdir, cfg):
  from experiments.executor import run_sweep
  return run_sweep(cfg, workdir, progress=False, trainer=FAKE,
                   log=lambda m: None, plan=planner.make_plan(cfg))


@pytest.mark.parametrize("scheme", ["independent", "wsd_trunk"])
def test_ledger_records_b2_and_the_trainer_trains_at_it(scheme, tmp_path):
  cfg = _tiny(scheme, b2s=(0.95, 0.99))
  plan = planner.make_plan(cfg)
  workdir = str(tmp_path / "w")
  b2_law.SEEN.clear()
  recs = {r["run_id"]: r for r in _run(workdir, cfg)}
  assert set(recs) == {r.run_id for r in plan.runs}
  for r in plan.runs:
    assert recs[r.run_id]["status"] == "ok"
    assert recs[r.run_id]["b2"] == r.b2
    if scheme == "independent":
      assert b2_law.SEEN[r.run_id] == r.b2
  if scheme == "wsd_trunk":
    for t in plan.trunks:
      assert b2_law.SEEN[t.trunk_id] == t.b2
  lines = Ledger(os.path.join(workdir, "results.jsonl")).lines()
  assert {float(x["b2"]) for x in lines} == {0.95, 0.99}


# ----------------------------------------------------------------------------
# The tuned analysis over lr and b2, on the quickstart's shapes and budgets.

def _quickstart(b2s=B2S):
  cfg = load("experiments/configs/quickstart.py")
  cfg.sweep.lr_multipliers = (0.5, 1.0, 2.0)
  cfg.sweep.b2_values = b2s
  cfg.sweep.lr_constant, cfg.sweep.lr_max = 0.33, 1e-2   # one lr, 1e-2, for all
  cfg.sweep.max_retries = 0
  return cfg


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
  from experiments.analyze import analyze
  workdir = str(tmp_path_factory.mktemp("b2_tuned"))
  _run(workdir, _quickstart())
  return workdir, analyze(workdir, bootstrap=50, approaches=(2,),
                          plots=False)


def test_tuned_analysis_picks_the_better_b2_and_fits_the_law(tuned):
  workdir, report = tuned
  records = Ledger(os.path.join(workdir, "results.jsonl")).read()
  e = report["fit"]["lr_tuning"]
  assert e["tuned"] and e["b2_values"] == list(B2S)
  assert e["cells"] and all(c["b2"] == b2_law.B2_STAR for c in e["cells"])
  for c in e["cells"]:
    assert c["b2_tried"] == list(B2S) and c["b2_edge"] is None
    assert c["b2_losses"][1] == min(c["b2_losses"])
  assert not e["b2_edge_cells"]
  assert all(d["wins"] == {"0.99": d["n_cells"]}
             for d in e["b2_by_size"].values())
  # The tuned points are the law's at the lr and b2 optimum: a matches it.
  from scaling.approach2.isoflop import fit_isoflop
  rows = list({(r["budget"], r["N"]): r for r in records
               if not r.get("repeat_of")}.values())
  data = {k: np.array([float(r[k]) for r in rows])
          for k in ("N", "D", "C", "budget")}
  data["loss"] = np.array([lr_law.loss(r["N"], r["D"], lr_law.eta_opt(r["N"]))
                           for r in rows])
  assert report["fit"]["approach2"]["a"] == pytest.approx(
      fit_isoflop(data, bootstrap=0).a, abs=0.02)
  assert set(e["a_by_b2"]) == {"0.95", "0.99", "0.999"}
  assert e["b2_reference"] == 0.95


def test_report_names_b2_as_tuned(tuned):
  from experiments.analyze import summary_text
  text = summary_text(tuned[1])
  line = next(l for l in text.splitlines() if l.startswith("hyper-parameters"))
  tuned_part, fixed_part = line.split("; fixed: ")
  assert "b2 over {0.95, 0.99, 0.999} (sweep.b2_values)" in tuned_part
  assert "lr over multipliers {0.5, 1, 2}" in tuned_part
  assert "b2=" not in fixed_part and "batch_tokens=" in fixed_part
  assert "best β2 per size" in text and "N=" in text
  assert "a of the lr-tuned points at each single β2" in text


def _cell_records(b2s, best):
  """One (C, N) cell at lrs x b2s whose best b2 is ``best``."""
  recs = []
  for b2 in b2s:
    for m, lr in ((0.5, 5e-3), (1.0, 1e-2), (2.0, 2e-2)):
      recs.append(dict(
          run_id=f"r{m}{b2}", budget=1e11, N=1e4, D=1e6, C=6e10, status="ok",
          lr=lr, lr_multiplier=m, b2=b2,
          eval_loss=2 + 0.05 * np.log(lr / 1e-2)**2
          + 0.05 * (np.log(1 - b2) - np.log(1 - best))**2))
  return recs


def test_best_b2_on_the_grid_edge_is_flagged_and_a_b2_only_grid_tunes():
  cells = lr_tuning._cells(_cell_records((0.9, 0.95), 0.99), 0.01, 200, 0)
  assert len(cells) == 1 and cells[0].b2 == 0.95 and cells[0].b2_edge == "high"
  assert cells[0].optimum["parabola"].edge is None
  # The spread of the tuned loss is the min over b2 per replicate.
  assert cells[0].loss_sd > 0
  # A grid over b2 alone (one lr): tuned over b2, no lr edge claimed.
  recs = [r for r in _cell_records((0.9, 0.99, 0.999), 0.99)
          if r["lr_multiplier"] == 1.0]
  hp = tuned_hparams.hyperparameters({}, recs)
  assert "b2" in hp["tuned"] and "lr" in hp["fixed"]
  cells = lr_tuning._cells(recs, None, 0, 0)
  assert cells[0].b2 == 0.99 and cells[0].b2_edge is None
  assert cells[0].optimum["parabola"].edge is None
