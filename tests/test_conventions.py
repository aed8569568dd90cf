"""The FLOP convention travels with the numbers (issue 8.6).

A sweep counted with ``attention_inclusive`` (F(N) = 6 N_matmul + 12 L d T >
6N): Approach 2 (D* = C / F(N*)) and Approach 3 (min L s.t. F(N) D = C) rows
at the same C must both satisfy F(N*) D* = C under the sweep's own F, and
fit.json must say how C, N and F were counted.
"""
import json
import os

import numpy as np
import pytest

from experiments import planner
from experiments.analyze import analyze
from experiments.ledger import Ledger
from experiments.sweep_flops import planner_flops_per_token
from lm.config.config_dict import ConfigDict
from tests.helpers.planner_cfg import sweep_cfg

# Epoch's refit of Chinchilla (Besiroglu et al. 2024), rescaled to tiny N.
E, A, B, ALPHA, BETA = 1.2, 40.0, 120.0, 0.35, 0.37


def _config():
  c = sweep_cfg(
      name="conv", steps_per_call=10, budgets=(1e11, 3e11, 1e12, 3e12),
      flop_convention="attention_inclusive", n_sizes=7, size_range=16.0,
      min_steps=20)
  c.analysis = ConfigDict(dict(bootstrap=20))
  return c


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
  cfg = _config()
  plan = planner.make_plan(cfg)
  wd = tmp_path_factory.mktemp("conv")
  with open(wd / "sweep.json", "w") as f:
    json.dump({"name": cfg.name, "config_hash": plan.config_hash,
               "config": json.loads(cfg.to_json_best_effort()),
               "runs": [r.to_dict() for r in plan.runs]}, f)
  led = Ledger(os.path.join(wd, "results.jsonl"))
  rng = np.random.default_rng(0)
  for r in plan.runs:
    loss = E + A / r.N**ALPHA + B / r.D**BETA + 1e-3 * rng.standard_normal()
    led.append({"run_id": r.run_id, "budget": r.budget, "N": r.N, "D": r.D,
                "C": r.flops, "eval_loss": float(loss), "status": "ok",
                "flop_convention": r.flop_convention,
                "param_convention": r.param_convention})
  F = planner_flops_per_token(json.loads(cfg.to_json_best_effort()), 1e8)
  return str(wd), plan, F


_ONE_START = {"fit": {"grid": np.array(
    [[np.log(A), np.log(B), np.log(E), ALPHA, BETA]])}}  # keeps the fit fast


def test_analyze_passes_the_sweeps_own_F(sweep):
  wd, plan, F = sweep
  # The convention matters here: the runs' F is well above 6N.
  ratio = np.array([r.flops / (6.0 * r.N * r.D) for r in plan.runs])
  assert ratio.min() > 1.05
  fit = analyze(wd, approaches=(2,), plots=False)["fit"]
  conv = fit["conventions"]
  assert conv["flop_convention"] == "attention_inclusive"
  assert conv["param_convention"] == "total"
  assert "planner's shapes" in conv["flops_per_token"]["label"]
  for m in fit["approach2"]["minima"]:
    assert F(m["N_opt"]) * m["D_opt"] == pytest.approx(m["C"], rel=1e-6)


def test_approach2_and_3_rows_at_the_same_C_refer_to_the_same_compute(sweep):
  from experiments.analyze import _sweep_meta
  from experiments.sweep_flops import sweep_flops_per_token
  from scaling.io import loaders as data_lib
  from scaling.approach3 import parametric
  from scaling.report import analysis as report
  wd, _, F = sweep
  runs = data_lib.load_runs(os.path.join(wd, "results.jsonl"))
  F_analyze = sweep_flops_per_token(_sweep_meta(wd), runs)  # what analyze uses
  assert F_analyze(runs.N) == pytest.approx(runs.C / runs.D, rel=1e-9)
  fit = report.run_fit(runs, approaches=(2, 3), bootstrap=20, plots=False,
                       budgets=(1e11, 1e12, 1e13), options={3: _ONE_START},
                       flops_per_token=F_analyze)
  for family in ("approach2", "approach3"):
    rows = fit[family]["compute_optimal"]
    assert len(rows) == 3
    for row in rows.values():
      assert F(row["N_opt"]) * row["D_opt"] == pytest.approx(row["C"], rel=1e-6)
      # ... which C = 6ND would break by the attention term.
      assert 6 * row["N_opt"] * row["D_opt"] < 0.99 * row["C"]
      lo, hi = row["N_opt_ci"]
      assert lo <= row["N_opt"] <= hi
  # Approach 3's N* is the minimum of the law along F(N) D = C.
  d3 = fit["approach3"]
  law = {k: d3[k] for k in ("E", "A", "B", "alpha", "beta")}
  for row in d3["compute_optimal"].values():
    N = row["N_opt"] * np.exp(np.linspace(-1, 1, 4001))
    L = parametric.predict_loss(law, N, row["C"] / F(N))
    assert abs(np.log(N[np.argmin(L)] / row["N_opt"])) < 1e-3
