"""The hparams family (scaling/hparams/) and lr_rule / batch_rule = 'law'.

Properties: the estimator recovers a known eta*(N, D) = c N^alpha D^beta and
B*(D) = k D^gamma from synthetic tuned grids (true exponents inside the
bootstrap intervals), published laws reproduce the papers' numbers, bad
input is one error line, an optimum on the grid's edge warns, and a sweep
planned with a law gets the law's learning rates and batches.
"""
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

from benchmarks.hparams_coverage import TRUE, synthetic
from experiments import planner
from experiments import sweep_config
from lm import params as params_lib
from scaling.io import ledger_schema
from scaling.io.types import ScalingDataError
from scaling.report import analysis as report
from scaling.hparams import estimate, inputs, laws
from scaling.hparams.inputs import HparamRuns
from tests.helpers.planner_cfg import sweep_cfg
from tests.test_planner import _model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _write_csv(path, runs, lr=None):
  lr = runs.lr if lr is None else lr
  with open(path, "w") as f:
    f.write("run_id,N,D,lr,batch_tokens,loss\n")
    for i in range(len(runs)):
      f.write(f"r{i}," + ",".join(repr(float(v)) for v in (
          runs.N[i], runs.D[i], lr[i], runs.batch_tokens[i], runs.loss[i]))
              + "\n")
  return str(path)


def _cli(*args):
  env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep
             + os.environ.get("PYTHONPATH", ""))
  p = subprocess.run([sys.executable, "-m", "scaling.fit", *args], cwd=ROOT,
                     env=env, capture_output=True, text=True, timeout=180)
  return p.returncode, p.stdout, p.stderr


# ---------------------------------------------------------------------------
# Published laws.

def test_steplaw_reproduces_its_published_example():
  """Li et al. 2025: N = 7e9, D = 1.4e12 -> eta = 9.35e-4, B = 5.0e6 tokens."""
  law = laws.PUBLISHED["steplaw2025"]
  assert float(f"{law.lr(N=7e9, D=1.4e12):.3g}") == 9.35e-4
  assert float(f"{law.batch_tokens(D=1.4e12):.2g}") == 5.0e6
  assert law.param_convention == "non_embedding"


@pytest.mark.parametrize("n_layer,d_model,lr,batch", [
    (30, 4096, 4.2e-4, 2304),      # DeepSeek LLM 7B, Table 2
    (95, 8192, 3.2e-4, 4608),      # DeepSeek LLM 67B, Table 2
])
def test_deepseek_law_gives_their_models_hyperparameters(n_layer, d_model, lr,
                                                         batch):
  """Bi et al. 2024: C = M D with M = 72 n_layer d^2 + 6 n_layer d l_seq
  (Eq. 2), D = 2e12 tokens, l_seq = 4096; their 7B and 67B were trained
  with the law's learning rate (to 3%) and batch (to 10%, rounded)."""
  law = laws.PUBLISHED["deepseek2024"]
  M = 72 * n_layer * d_model**2 + 6 * n_layer * d_model * 4096
  C = M * 2e12
  assert law.lr(C=C) == pytest.approx(lr, rel=0.03)
  assert law.batch_tokens(C=C) / 4096 == pytest.approx(batch, rel=0.10)
  with pytest.raises(ScalingDataError, match="no N_D form"):
    law.lr(N=1e9, D=1e10, form="N_D")


# ---------------------------------------------------------------------------
# The estimator.

def test_recovers_known_laws_on_a_noiseless_grid():
  fit = estimate.fit_hparams(synthetic(), bootstrap=200, seed=0)
  eta, B = fit.laws["eta_ND"], fit.laws["B_D"]
  est = dict(zip(eta.exponent_names, eta.exponents), gamma=B.exponents[0])
  for name in ("alpha", "beta", "gamma"):
    assert est[name] == pytest.approx(TRUE[name], abs=0.03), name
    ci = (eta.ci if name != "gamma" else B.ci)[name]
    assert ci[0] <= TRUE[name] <= ci[1], (name, ci)
  assert not fit.not_fitted and fit.n_failed == 0
  assert set(fit.laws) == {"eta_ND", "B_D", "eta_C", "B_C"}


def test_bootstrap_intervals_cover_the_true_exponent_on_noisy_grids():
  """20 grids with 0.1% loss noise: the 95% intervals of alpha and beta hold
  the truth in >= 17 of 20 (measured over 100 grids: 100%; the intervals
  are conservative, docs/hparams.md)."""
  hits = np.zeros(2)
  for r in range(20):
    fit = estimate.fit_hparams(synthetic(sigma=0.001, seed=100 + r),
                               bootstrap=100, seed=r)
    ci = fit.laws["eta_ND"].ci
    hits += [ci["alpha"][0] <= TRUE["alpha"] <= ci["alpha"][1],
             ci["beta"][0] <= TRUE["beta"] <= ci["beta"][1]]
  assert np.all(hits >= 17), hits


def test_band_keeps_runs_near_each_cells_best():
  runs = synthetic(sigma=0.0, n_sizes=2, n_tokens=2)
  fit = estimate.fit_hparams(runs, band=0.0025)
  for c in fit.cells:
    sel = (runs.N == c.N) & (runs.D == c.D)
    kept = sel & fit.kept
    assert np.all(runs.loss[kept] <= c.best_loss * 1.0025)
    assert np.all(runs.loss[sel & ~fit.kept] > c.best_loss * 1.0025)
  wider = estimate.fit_hparams(runs, band=0.01)
  assert wider.kept.sum() > fit.kept.sum()


def test_batch_laws_not_fitted_without_batch_tuning():
  runs = synthetic(batch_steps=1)
  fit = estimate.fit_hparams(runs)
  assert "B_D" in fit.not_fitted and "not tuned" in fit.not_fitted["B_D"]
  assert "eta_ND" in fit.laws


def test_cell_with_two_learning_rates_is_an_error():
  runs = synthetic(n_sizes=2, n_tokens=2, lr_steps=2, batch_steps=1)
  with pytest.raises(ScalingDataError, match=r"fewer than 3 learning rates.*"
                     r"N=1e\+07, D=1e\+09 \(2: "):
    estimate.fit_hparams(runs)


def test_one_model_size_is_an_error():
  runs = synthetic(n_sizes=1, batch_steps=1)
  with pytest.raises(ScalingDataError, match="lr\\*\\(N, D\\) cannot be fitted"):
    estimate.fit_hparams(runs)


def test_optimum_on_the_grid_edge_warns_naming_the_cell():
  runs = synthetic(n_sizes=2, n_tokens=2, batch_steps=1)
  first = (runs.N == runs.N.min()) & (runs.D == runs.D.min())
  keep = ~first | (runs.lr > np.sort(np.unique(runs.lr[first]))[5])
  edge = HparamRuns.from_columns({k: v[keep] for k, v in
                                  runs.columns().items()})
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    fit = estimate.fit_hparams(edge)
  msgs = [str(w.message) for w in caught]
  assert len(msgs) == 1 and "edge of its grid in 1 cell(s)" in msgs[0]
  assert "N=1e+07, D=1e+09" in msgs[0] and "smallest" in msgs[0]
  assert [c.on_edge for c in fit.cells].count("smallest") == 1


# ---------------------------------------------------------------------------
# Inputs.

def test_ledger_input_reads_lr_and_batch_tokens(tmp_path):
  runs = synthetic(n_sizes=2, n_tokens=2, batch_steps=1)
  path = tmp_path / "results.jsonl"
  with open(path, "wb") as f:
    for i in range(len(runs)):
      f.write(ledger_schema.encode(dict(
          run_id=f"r{i}", budget=float(runs.C[i]), N=float(runs.N[i]),
          D=float(runs.D[i]), C=float(runs.C[i]),
          eval_loss=float(runs.loss[i]), status="ok", lr=float(runs.lr[i]),
          batch_size=int(round(runs.batch_tokens[i] / 64)), seq_len=64,
          flop_convention="6N", param_convention="total")))
  got = inputs.load(str(tmp_path))
  assert len(got) == len(runs)
  np.testing.assert_allclose(got.lr, runs.lr)
  np.testing.assert_allclose(got.batch_tokens,
                             np.round(runs.batch_tokens / 64) * 64)
  assert got.provenance["fields_read"]["batch_tokens"] == "batch_size*seq_len"
  assert got.provenance["flop_convention"] == "6N"
  bad = tmp_path / "bad.jsonl"
  bad.write_bytes(ledger_schema.encode(dict(
      run_id="x", budget=1e9, N=1e3, D=1e5, C=6e8, eval_loss=3.0,
      status="ok")))
  with pytest.raises(ScalingDataError, match="no lr recorded"):
    inputs.load(str(bad))


def test_csv_non_positive_lr_is_an_error(tmp_path):
  runs = synthetic(n_sizes=2, n_tokens=2, batch_steps=1)
  lr = runs.lr.copy()
  lr[3] = 0.0
  with pytest.raises(ScalingDataError, match=r":5: lr='0\.0' must be positive"):
    inputs.load(_write_csv(tmp_path / "t.csv", runs, lr))


def test_run_fit_entry_and_a_fitted_law_read_back(tmp_path):
  runs = synthetic(sigma=0.0005, seed=4, n_sizes=3, n_tokens=3, batch_steps=3)
  res = report.run_fit(approaches=("hparams",), table=(
      runs.columns(), dict(source="synthetic", flop_convention="6ND")),
      bootstrap=50, out_dir=str(tmp_path), plots=False)
  e = res["hparams"]
  assert e["method"] == "hparams.steplaw" and e["n_bootstrap_ok"] == 50
  assert e["ci"]["lr*(N,D): alpha"][0] < e["lr*(N,D): alpha"] < \
      e["ci"]["lr*(N,D): alpha"][1]
  law = laws.from_fit(str(tmp_path / "fit.json"))
  eta = e["laws"]["eta_ND"]
  assert law.lr(N=1e8, D=1e10) == pytest.approx(
      eta["k"] * 1e8**eta["alpha"] * 1e10**eta["beta"])
  assert law.flop_convention == "6ND" and law.forms() == ("N_D", "C")


# ---------------------------------------------------------------------------
# The CLI.

def test_cli_end_to_end_with_an_edge_cell(tmp_path):
  runs = synthetic(sigma=0.0005, seed=5, n_sizes=2, n_tokens=3,
                   batch_steps=2)
  first = (runs.N == runs.N.min()) & (runs.D == runs.D.min())
  keep = ~first | (runs.lr < np.sort(np.unique(runs.lr[first]))[3])
  edge = HparamRuns.from_columns({k: v[keep] for k, v in
                                  runs.columns().items()})
  out = tmp_path / "out"
  rc, stdout, err = _cli(f"--input={_write_csv(tmp_path / 't.csv', edge)}",
                         "--approach=hparams", "--bootstrap=100",
                         f"--out={out}", "--hparams_band=0.005")
  assert rc == 0, err
  assert "warning: hparams: best learning rate on the edge" in err
  assert "N=1e+07, D=1e+09" in err and "largest" in err
  assert "lr*(N, D) =" in stdout and "B*(D) =" in stdout
  res = json.loads((out / "fit.json").read_text())
  assert res["hparams"]["band"] == 0.005
  assert res["hparams"]["cells_on_edge"] == ["N=1e+07, D=1e+09"]
  assert (out / "hparams.png").stat().st_size > 0


def test_cli_two_learning_rates_is_one_error_line(tmp_path):
  runs = synthetic(n_sizes=2, n_tokens=2, lr_steps=2, batch_steps=1)
  rc, _, err = _cli(f"--input={_write_csv(tmp_path / 't.csv', runs)}",
                    "--approach=hparams", "--bootstrap=0")
  lines = [l for l in err.strip().splitlines() if l.strip()]
  assert rc == 2 and len(lines) == 1, err
  assert lines[0].startswith("error: hparams: 4 (N, D) cell(s) have fewer "
                             "than 3 learning rates")


# ---------------------------------------------------------------------------
# Planning with a law.

def _nonemb(run, cfg):
  return params_lib.n_params(_model(run, cfg), "non_embedding")


def test_lr_rule_law_plans_the_published_law():
  cfg = sweep_cfg(lr_rule="law", lr_law="steplaw2025", lr_max=1.0,
                  batch_rule="law", batch_law="steplaw2025")
  plan = planner.make_plan(cfg)
  law = laws.PUBLISHED["steplaw2025"]
  assert len(plan.runs) >= 6
  for r in plan.runs:
    # lr from the run's own non-embedding N and tokens D.
    assert r.lr == pytest.approx(float(law.lr(N=_nonemb(r, cfg), D=r.D)),
                                 rel=1e-9)
    # batch: B*(D) tokens / seq_len at D = C / F, rounded: within rounding
    # and the steps' FLOP tolerance of the law at the run's D.
    want = float(law.batch_tokens(D=r.D)) / r.seq_len
    assert abs(r.batch_size - want) <= 0.5 + 0.02 * want, (r.batch_size, want)


def test_lr_rule_law_from_a_fitted_law_and_refit_changes_the_hash(tmp_path):
  runs = synthetic(sigma=0.0, n_sizes=3, n_tokens=3, batch_steps=1)
  report.run_fit(approaches=("hparams",), table=(
      runs.columns(), dict(source="synthetic", flop_convention="6ND")),
      bootstrap=0, out_dir=str(tmp_path), plots=False)
  path = str(tmp_path / "fit.json")
  cfg = sweep_cfg(lr_rule="law", lr_law=path, lr_max=10.0, law_form="C")
  plan = planner.make_plan(cfg)
  eta_C = json.loads(open(path).read())["hparams"]["laws"]["eta_C"]
  for r in plan.runs:   # C = 6ND under total N (the fit records none)
    assert r.lr == pytest.approx(eta_C["k"] * r.flops**eta_C["e"], rel=1e-9)
  h1 = planner.config_hash(cfg)
  res = json.loads(open(path).read())
  res["hparams"]["laws"]["eta_C"]["k"] *= 2
  with open(path, "w") as f:
    json.dump(res, f)
  assert planner.config_hash(cfg) != h1
  assert planner.make_plan(cfg).runs[0].lr == pytest.approx(
      2 * plan.runs[0].lr)


def test_law_fields_at_defaults_leave_the_hash_unchanged():
  cfg = sweep_cfg()
  h = planner.config_hash(cfg)
  for k in ("lr_law", "batch_law", "law_form"):
    del cfg.sweep[k]
  # config_hash of the same config without the new fields (as written
  # before they existed) is the same.
  assert sweep_config.config_hash(cfg) == h


def test_wsd_trunk_gets_one_law_lr_per_trunk():
  cfg = sweep_cfg(lr_rule="law", lr_law="steplaw2025", lr_max=1.0,
                  scheme="wsd_trunk")
  cfg.lm.train.schedule = "wsd"
  plan = planner.make_plan(cfg)
  law = laws.PUBLISHED["steplaw2025"]
  by_trunk = {}
  for r in plan.runs:
    by_trunk.setdefault(r.trunk_id, []).append(r)
  for members in by_trunk.values():
    longest = max(members, key=lambda r: r.D)
    want = float(law.lr(N=_nonemb(longest, cfg), D=longest.D))
    assert len(members) >= 1
    for r in members:
      assert r.lr == pytest.approx(want, rel=1e-9)
  assert len(by_trunk) >= 3 and max(len(m) for m in by_trunk.values()) >= 2


@pytest.mark.parametrize("over,match", [
    (dict(lr_rule="law"), "sweep.lr_law is empty"),
    (dict(lr_rule="law", lr_law="nosuchlaw"), "unknown learning-rate law"),
    (dict(batch_rule="law", batch_law="steplaw2025", law_form="C"),
     "has no batch law in form 'C'"),
    (dict(lr_rule="law", lr_law="steplaw2025", law_form="x"),
     "unknown sweep.law_form"),
])
def test_law_rule_errors_are_one_line(over, match):
  with pytest.raises(planner.PlanError, match=match):
    planner.make_plan(sweep_cfg(**over))
