"""The loss at the learning-rate optimum (scaling.approach2.lr_optimum) and the tuned
analysis of a sweep with sweep.lr_multipliers (experiments.lr_tuning): the
interpolations recover a known optimum in log lr, an optimum on the grid's
edge is flagged, and a sweep of the quickstart's shapes and budgets whose
losses follow a known law (tests.helpers.lr_law, no training) is fitted at
the optimum: its a matches the law's tuned points, the per-multiplier a's are
reported, and the report says what was tuned and what was fixed."""
import os

import numpy as np
import pytest

from experiments import lr_report, lr_tuning, planner
from scaling.approach2 import lr_optimum
from tests.helpers import lr_law
from tests.helpers.load_config import load


@pytest.mark.parametrize("seed", range(5))
def test_parabola_recovers_a_quadratic_optimum_in_log_lr_exactly(seed):
  rng = np.random.default_rng(seed)
  lr = np.sort(np.exp(rng.uniform(np.log(1e-4), np.log(1e-1), 6)))
  inner = np.log(lr[1:-1])
  x_star = rng.uniform(inner.min(), inner.max())   # inside the grid
  loss = 2.0 + 0.07 * (np.log(lr) - x_star)**2
  o = lr_optimum.optimum(lr, loss, "parabola")
  assert o.edge is None
  assert np.log(o.lr_opt) == pytest.approx(x_star, abs=1e-9)
  assert o.loss_opt == pytest.approx(2.0, abs=1e-12)
  assert o.loss_opt <= o.best_grid_loss


def test_akima_recovers_a_smooth_optimum_and_exactly_a_symmetric_one():
  lr = 1e-2 * 2.0 ** np.arange(-3, 4)               # 7 points, factor 2
  x = np.log(lr)
  sym = 2.0 + 0.05 * (x - x[3])**2                  # minimum at a grid point
  o = lr_optimum.optimum(lr, sym, "akima")
  assert o.lr_opt == pytest.approx(lr[3], rel=1e-9)
  assert o.loss_opt == pytest.approx(2.0, rel=1e-12)
  x_star = x[3] + 0.3 * np.log(2)                   # between grid points
  loss = 2.0 + 0.05 * (x - x_star)**2 + 0.01 * (x - x_star)**4
  o = lr_optimum.optimum(lr, loss, "akima")
  assert o.edge is None
  assert np.log(o.lr_opt) == pytest.approx(x_star, abs=0.05)
  assert o.loss_opt == pytest.approx(2.0, abs=2e-3)


@pytest.mark.parametrize("method", list(lr_optimum.INTERPOLATIONS))
def test_optimum_on_the_grid_edge_is_flagged_not_extrapolated(method):
  lr = np.array([1e-3, 2e-3, 4e-3, 8e-3])
  falling = 3.0 - 0.1 * np.log(lr / 1e-3)           # best at the largest lr
  o = lr_optimum.optimum(lr, falling, method)
  assert o.edge == "high" and o.lr_opt == pytest.approx(8e-3)
  assert o.loss_opt == pytest.approx(falling[-1])
  o = lr_optimum.optimum(lr, falling[::-1].copy(), method)
  assert o.edge == "low" and o.lr_opt == pytest.approx(1e-3)
  # Two learning rates cannot bracket an optimum.
  assert lr_optimum.optimum(lr[:2], falling[:2], method).edge == "high"


def test_replicates_spread_with_sigma_and_bad_grids_are_refused():
  lr = 1e-2 * 2.0 ** np.arange(-2, 3)
  loss = 2.0 + 0.05 * np.log(lr / 1e-2)**2
  rng = np.random.default_rng(0)
  _, l0 = lr_optimum.replicates(lr, loss, 0.0, 50, rng)
  assert np.allclose(l0, 2.0)
  _, l1 = lr_optimum.replicates(lr, loss, 0.01, 2000, rng)
  _, l2 = lr_optimum.replicates(lr, loss, 0.02, 2000, rng)
  assert 0.003 < np.std(l1) < 0.02
  assert np.std(l2) == pytest.approx(2 * np.std(l1), rel=0.15)
  for bad in ([1e-3, 0.0, 1e-2], [1e-3, 1e-3, 1e-2]):
    with pytest.raises(ValueError):
      lr_optimum.optimum(bad, [1.0, 2.0, 3.0])


# ----------------------------------------------------------------------------
# A quickstart-shaped sweep whose losses follow lr_law (fake trainer).

def _quickstart(grid=(0.5, 1.0, 2.0)):
  cfg = load("experiments/configs/quickstart.py")
  cfg.sweep.lr_multipliers = grid
  cfg.sweep.lr_constant, cfg.sweep.lr_max = 0.33, 1e-2   # one lr, 1e-2, for all
  cfg.sweep.max_retries = 0
  return cfg


def _sweep(workdir, cfg):
  from experiments.executor import run_sweep
  run_sweep(cfg, workdir, progress=False, log=lambda m: None,
            trainer="tests.helpers.lr_law:fake_train",
            plan=planner.make_plan(cfg))
  return workdir


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
  from experiments.analyze import analyze
  workdir = _sweep(str(tmp_path_factory.mktemp("lr_tuned")), _quickstart())
  return workdir, analyze(workdir, bootstrap=100, approaches=(2,),
                          plots=False)


def _law_a(records):
  """a of the same estimator on the law's losses at the lr optimum."""
  from scaling.approach2.isoflop import fit_isoflop
  pts = {(r["budget"], r["N"]): r for r in records if not r.get("repeat_of")}
  rows = list(pts.values())
  data = {k: np.array([float(r[k]) for r in rows]) for k in ("N", "D", "C",
                                                             "budget")}
  data["loss"] = np.array([lr_law.loss(r["N"], r["D"], lr_law.eta_opt(r["N"]))
                           for r in rows])
  return fit_isoflop(data, bootstrap=0).a


def test_tuned_sweep_fits_the_law_at_the_lr_optimum(tuned):
  workdir, report = tuned
  from experiments.ledger import Ledger
  records = Ledger(os.path.join(workdir, "results.jsonl")).read()
  e = report["fit"]["lr_tuning"]
  assert e["tuned"] and e["multipliers"] == [0.5, 1.0, 2.0]
  assert not e["edge_cells"]                     # the law's optima bracketed
  for c in e["cells"]:                           # the optimum of each cell
    got = c["optimum"]["parabola"]["lr_opt"]
    assert got == pytest.approx(lr_law.eta_opt(c["N"]), rel=0.15)
  a_tuned = report["fit"]["approach2"]["a"]
  assert a_tuned == pytest.approx(_law_a(records), abs=0.02)
  by_m = {k: d["a"] for k, d in e["a_by_multiplier"].items()}
  assert set(by_m) == {"0.5", "1", "2"}
  # The rule's single lr tilts the curves: a single multiplier is biased.
  assert max(abs(a - a_tuned) for a in by_m.values()) > 0.02
  # Intervals include the interpolation: the seed-noise sigma is the tuned one.
  assert e["sigma_tuned"] > 0 and e["sigma_seed"] > 0
  a2 = report["fit"]["approach2"]
  assert f"σ={e['sigma_tuned']:.3g}" in a2["interval_procedure"]
  assert set(e["a_by_estimator"]) >= {"local_parabola", "akima"}
  cells = lr_tuning._cells(records, 0.0, 0, 0)
  path = lr_report.plot_lr_curves(cells, os.path.join(workdir, "lr.png"))
  assert path and os.path.getsize(path) > 0


def test_report_names_tuned_and_fixed_hyperparameters(tuned):
  from experiments.analyze import summary_text
  text = summary_text(tuned[1])
  assert "hyper-parameters: tuned: lr over multipliers {0.5, 1, 2}" in text
  assert "b2=0.95" in text and "batch_tokens=512" in text
  assert "a at each single lr multiplier" in text
  assert "lr optimum per size" in text
  assert "a under each Approach-2 estimator" in text


def test_cells_on_the_grid_edge_are_flagged_and_the_sweep_told_to_widen():
  recs = []
  for m, lr in ((0.5, 5e-3), (1.0, 1e-2), (2.0, 2e-2)):
    for N, best in ((1e4, 2.5e-3), (2e4, 1e-2)):
      recs.append(dict(run_id=f"r{N}{m}", budget=1e11, N=N, D=1e6, C=6e10,
                       status="ok", lr=lr, lr_multiplier=m,
                       eval_loss=2 + 0.05 * np.log(lr / best)**2))
  cells = {c.N: c for c in lr_tuning._cells(recs, 0.01, 100, 0)}
  assert cells[1e4].optimum["parabola"].edge == "low"
  assert cells[2e4].optimum["parabola"].edge is None
  fit = {"lr_tuning": {"hyperparameters": {"tuned": {}, "fixed": {}},
                       "tuned": True, "method_citation": "x",
                       "multipliers": [0.5, 1, 2], "sigma_seed": 0.01,
                       "sigma_source": "s", "sigma_tuned": 0.01,
                       "lr_opt_by_size": lr_tuning._lr_opt_by_size(
                           list(cells.values())),
                       "edge_cells": ["C=1e+11 N=1e+04 (low)"]}}
  text = "\n".join(lr_report.summary_lines(fit["lr_tuning"]))
  assert "widen sweep.lr_multipliers" in text and "1/1 at the low edge" in text


def test_untuned_sweep_is_fitted_as_before_and_says_lr_was_fixed(tmp_path):
  from experiments.analyze import analyze, summary_text
  workdir = _sweep(str(tmp_path / "w"), _quickstart(grid=(1.0,)))
  report = analyze(workdir, bootstrap=20, approaches=(2,), plots=False)
  e = report["fit"]["lr_tuning"]
  assert e["tuned"] is False and "lr" in e["hyperparameters"]["fixed"]
  assert "tuned: none" in summary_text(report)
  assert report["fit"]["approach2"]["minima"]   # the raw points, as before
