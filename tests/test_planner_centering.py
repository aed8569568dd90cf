"""The planner's centre N*(C) from a previous fit.json: it moves the sizes, is
refused under another convention, and solves the sweep's own F(N) D = C."""
import json
import math

import numpy as np
import pytest

from experiments import planner
from tests.helpers.planner_cfg import fit_json, sweep_cfg


def test_fit_json_centre_moves_sizes(tmp_path):
  base = planner.make_plan(sweep_cfg())
  fit = tmp_path / "fit.json"
  # Approach 2 only: N_opt = k_N C^a with 4x the prior at C = 1e11.
  k = 4 * 0.5 * math.sqrt(1e11 / 120) / (1e11 ** 0.5)
  fit_json(fit, approach2={"k_N": k, "a": 0.5})
  cfg = sweep_cfg(center=str(fit))
  assert planner.center_N(1e11, cfg.sweep) == pytest.approx(
      4 * planner.center_N(1e11, sweep_cfg().sweep))
  moved = planner.make_plan(cfg)
  mean = lambda p: sum(math.log(r.N) for r in p.runs) / len(p.runs)
  assert mean(moved) > mean(base) + math.log(2)
  # Approach 3 takes precedence: N_opt = G (C/6)^a (Hoffmann 2022, Eq. 4);
  # alpha = beta and A = B give G = 1, a = 1/2: N_opt(6e10) = 1e5.
  fit_json(fit, approach2={"k_N": k, "a": 0.5},
           approach3={"A": 400.0, "B": 400.0, "alpha": 0.3, "beta": 0.3})
  assert planner.center_N(6e10, cfg.sweep) == pytest.approx(1e5, rel=1e-9)
  fit_json(fit, approach3={"A": None, "a": None})
  with pytest.raises(planner.PlanError, match="neither"):
    planner.center_N(1e11, cfg.sweep)


def test_fit_json_centre_of_another_convention_is_refused(tmp_path):
  fit = tmp_path / "fit.json"
  cfg = sweep_cfg(center=fit_json(fit, ("attention_inclusive", "total"),
                                  approach2={"k_N": 1e-3, "a": 0.5}))
  with pytest.raises(planner.PlanError, match="counts C as 'attention_inclusive'"):
    planner.make_plan(cfg)
  fit_json(fit, ("6N", "non_embedding"), approach2={"k_N": 1e-3, "a": 0.5})
  with pytest.raises(planner.PlanError, match="counts N as 'non_embedding'"):
    planner.center_N(1e11, cfg.sweep)
  fit.write_text(json.dumps({"approach2": {"k_N": 1e-3, "a": 0.5}}))  # v1
  with pytest.raises(planner.PlanError, match="does not record the FLOP"):
    planner.center_N(1e11, cfg.sweep)
  # scaling's built-in data say "6ND": the same C = 6ND convention as "6N".
  fit_json(fit, ("6ND", None), approach2={"k_N": 1e-3, "a": 0.5})
  assert planner.center_N(1e10, cfg.sweep) == pytest.approx(1e-3 * 1e5)


def test_fit_json_centre_solves_the_sweeps_own_constraint(tmp_path):
  # attention_inclusive: F(N) > 6N, so Approach 3's N* solves min L subject
  # to F(N) D = C numerically, not Eq. 4; check it is the constrained
  # minimum under the planner's own F.
  from experiments.sweep_flops import planner_flops_per_token
  from scaling.approach3 import parametric
  law = {"E": 1.8, "A": 400.0, "B": 900.0, "alpha": 0.34, "beta": 0.3}
  fit = fit_json(tmp_path / "fit.json", ("attention_inclusive", "total"),
                 approach3=law)
  cfg = sweep_cfg(center=fit, flop_convention="attention_inclusive")
  C = 1e11
  got = planner.center_N(C, cfg.sweep, planner_flops_per_token(
      {"sweep": cfg.sweep.to_dict(), "lm": cfg.lm.to_dict()}, 1e7))
  F = planner_flops_per_token({"sweep": cfg.sweep.to_dict(),
                               "lm": cfg.lm.to_dict()}, 1e7)
  N = got * np.exp(np.linspace(-0.5, 0.5, 2001))
  L = parametric.predict_loss(law, N, C / F(N))
  assert abs(np.log(N[np.argmin(L)] / got)) < 1e-3
  six = parametric.frontier(law["A"], law["B"], law["alpha"], law["beta"], C)
  assert abs(np.log(got / six["N_opt"])) > 0.01   # the convention matters
  assert planner.make_plan(cfg).centers[C] == pytest.approx(got, rel=1e-6)
