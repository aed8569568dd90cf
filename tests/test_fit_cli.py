"""Tests for the ``python -m scaling.fit`` CLI and ``scaling.report.analysis.run_fit``."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from scaling.io import curves as curves_lib
from scaling.io import loaders as data_lib
from scaling.report import analysis as report

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cli(*args):
  env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
  p = subprocess.run([sys.executable, "-m", "scaling.fit", *args], cwd=ROOT,
                     env=env, capture_output=True, text=True, timeout=120)
  return p.returncode, p.stdout, p.stderr


def _one_line_error(rc, err, match):
  assert rc == 2
  lines = [l for l in err.strip().splitlines() if l.strip()]
  assert len(lines) == 1, err
  assert lines[0].startswith("error: ") and match in lines[0], err


def _write_csv(path, rows):
  with open(path, "w") as f:
    f.write("N,D,loss,budget\n")
    for r in rows:
      f.write(",".join(str(v) for v in r) + "\n")
  return str(path)


def _isoflop_rows(budgets, n_sizes=5):
  rows = []
  for C in budgets:
    n_opt = 0.1 * C**0.5
    for x in np.linspace(-0.5, 0.5, n_sizes):
      N = n_opt * 10**x
      rows.append((N, C / (6 * N), 2.0 + C**-0.05 + 0.3 * x**2, C))
  return rows


def test_cli_approach2_writes_all_outputs(tmp_path):
  out = tmp_path / "out"
  rc, stdout, err = _cli("--input=chinchilla_epoch_isoflop", "--approach=2",
                         "--bootstrap=50", f"--out={out}", "--budgets=1e21,5.76e23",
                         "--isoflop_estimator=parabola")
  assert rc == 0, err
  assert "warning: IsoFLOP: dropping budget C=1e+20" in err
  assert "N* @ C=5.76e+23" in stdout and "Approach 2 (IsoFLOP, parabola)" in stdout
  res = json.loads((out / "fit.json").read_text())
  assert res["schema_version"] == 2 and not res["alternatives"]
  d2 = res["approach2"]
  assert d2["method"] == "approach2.parabola" and d2["default"] is False
  assert set(["a", "b", "k_N", "k_D", "ci", "minima", "dropped"]) <= set(d2)
  assert d2["a"] == pytest.approx(0.4951, abs=0.005)
  assert list(d2["dropped"]) == ["1e+20"] and len(d2["minima"]) == 8
  lo, hi = d2["ci"]["a"]
  assert lo < d2["a"] < hi
  assert set(d2["compute_optimal"]) == {"1e+21", "5.76e+23"}
  prov = res["provenance"]
  assert prov["input"]["n_rows"] == 123 and len(prov["input"]["sha256"]) == 64
  assert prov["input"]["flop_convention"] == "6ND"
  assert res["conventions"]["flop_convention"] == "6ND"
  assert res["conventions"]["flops_per_token"]["rule"] == "six_n"
  assert set(prov["versions"]) >= {"jax", "numpy", "scipy", "scalinglm"}
  assert "--approach=2" in prov["command_line"] and prov["date_utc"]
  assert "approach3" not in res and "approach1" not in res
  assert r"\toprule" in (out / "fit.tex").read_text()
  md = (out / "fit.md").read_text()
  assert "## Approach 2 (IsoFLOP, parabola)" in md and "| a | 0.49" in md
  for png in ("isoflop.png", "frontier.png"):
    assert (out / png).stat().st_size > 1000
  assert {"isoflop.png", "frontier.png"} <= set(res["plots"])
  # The replicates used and the interval are recorded and shown.
  assert d2["n_bootstrap_requested"] == 50
  assert d2["n_bootstrap_ok"] + d2["n_bootstrap_failed"] == 50
  assert d2["n_bootstrap_ok"] == d2["n_bootstrap"] > 0
  proc = ("run resampling within budgets, n=%d, percentile 2.5-97.5%%"
          % d2["n_bootstrap_ok"])
  assert d2["interval_procedure"] == proc
  assert f"[intervals: {proc}]" in stdout and f"Intervals: {proc}." in md
  assert proc.replace("%", "\\%") in (out / "fit.tex").read_text()
  # F(N*) D* = C on every budget (D* = C / F(N*), F = 6N here).
  assert d2["max_abs_compute_residual"] < 1e-12


def test_cli_every_estimator_side_by_side(tmp_path):
  rc, stdout, err = _cli("--input=llama3_isoflop", "--approach=2",
                         "--bootstrap=30", "--isoflop_estimator=all",
                         f"--out={tmp_path}", "--noplots")
  assert rc == 0, err
  from scaling.approach2 import estimators as isoflop_estimators
  res = json.loads((tmp_path / "fit.json").read_text())
  names = list(isoflop_estimators.ESTIMATORS)
  keys = [res["approach2"]["method"]] + list(res["alternatives"])
  assert sorted(keys) == sorted(f"approach2.{n}" for n in names)
  assert res["approach2"]["default"] is True
  assert res["approach2"]["estimator"] == isoflop_estimators.DEFAULT_ESTIMATOR
  assert not any(e["default"] for e in res["alternatives"].values())
  side = stdout.split("Approach 2, every estimator:")[1].split("\n\n")[0]
  for n in names:   # one row per estimator, with a, b and their intervals
    row = [l for l in side.splitlines() if l.startswith(n + " ") or
           l.startswith(n + "  ")]
    assert len(row) == 1, side
    assert row[0].count("[") == 2
  assert f"{isoflop_estimators.DEFAULT_ESTIMATOR} (default)" in side
  parabola = res["alternatives"].get("approach2.parabola") or res["approach2"]
  assert parabola["b"] == pytest.approx(0.537, abs=0.005)  # Llama 3 Sec. 3.2.1


def test_cli_approach1_on_misfitting_curves(tmp_path):
  rc, stdout, err = _cli("--input=misfitting_curves", "--approach=1",
                         "--bootstrap=20", f"--out={tmp_path}", "--noplots")
  assert rc == 0, err
  res = json.loads((tmp_path / "fit.json").read_text())
  assert 0.3 < res["approach1"]["a"] < 0.8
  assert res["provenance"]["curves"]["n_rows_read"] == 4852
  assert "Approach 1, " in stdout and "envelope" in stdout
  d1 = res["approach1"]
  assert d1["n_bootstrap_requested"] == 20 and d1["bootstrap_cap"] == 1000
  assert d1["n_bootstrap_ok"] + d1["n_bootstrap_failed"] == 20


def test_cli_approach1_without_curves_is_one_line_error():
  rc, _, err = _cli("--input=chinchilla_epoch", "--approach=1,2", "--bootstrap=0")
  _one_line_error(rc, err, "approach 1 needs training curves")


def test_cli_single_budget_is_one_line_error(tmp_path):
  path = _write_csv(tmp_path / "one.csv", _isoflop_rows([1e19]))
  rc, _, err = _cli(f"--input={path}", "--approach=2", "--bootstrap=0")
  _one_line_error(rc, err, "only one usable budget")


def test_cli_two_sizes_in_a_budget_warns_but_fits(tmp_path):
  rows = _isoflop_rows([1e18, 1e19, 1e20, 1e21])
  rows = [r for r in rows if r[3] != 1e21] + [r for r in rows if r[3] == 1e21][:2]
  path = _write_csv(tmp_path / "two.csv", rows)
  rc, stdout, err = _cli(f"--input={path}", "--approach=2", "--bootstrap=30",
                         f"--out={tmp_path / 'o'}", "--noplots")
  assert rc == 0, err
  assert "C=1e+21: only 2 distinct model size(s)" in err
  res = json.loads((tmp_path / "o" / "fit.json").read_text())
  assert res["approach2"]["a"] == pytest.approx(0.5, abs=1e-6)
  assert any("1e+21" in w for w in res["warnings"])


def test_cli_nan_loss_is_one_line_error(tmp_path):
  rows = _isoflop_rows([1e18, 1e19, 1e20])
  rows[3] = rows[3][:2] + (float("nan"),) + rows[3][3:]
  path = _write_csv(tmp_path / "nan.csv", rows)
  rc, _, err = _cli(f"--input={path}", "--approach=2", "--bootstrap=0")
  _one_line_error(rc, err, "loss")


def test_cli_missing_column_is_one_line_error(tmp_path):
  path = tmp_path / "nocol.csv"
  path.write_text("N,budget\n1e8,1e19\n2e8,1e19\n")
  rc, _, err = _cli(f"--input={path}", "--approach=2", "--bootstrap=0")
  assert rc == 2 and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("args,match", [
    (("--input=no_such_dataset", "--approach=2"), "no_such_dataset"),
    (("--input=chinchilla_epoch_isoflop", "--budgets=abc"), "--budgets"),
    (("--input=chinchilla_epoch_isoflop", "--approach=4"), "approaches"),
    (("--input=chinchilla_epoch_isoflop", "--approach=2", "--bootstrap=-1"),
     "bootstrap"),
    (("--input=chinchilla_epoch_isoflop", "--approach=2", "--bootstrap=1"),
     "bootstrap must be 0"),
    (("--input=chinchilla_epoch_isoflop", "--approach=2",
      "--isoflop_estimator=spline"), "unknown approach2 method 'spline'"),
])
def test_cli_bad_flags_are_one_line_errors(args, match):
  rc, _, err = _cli(*args)
  _one_line_error(rc, err, match)


def test_run_fit_is_importable_with_curves_from_a_workdir(tmp_path):
  # A workdir as written by the experiments: runs/<id>/{run.json,metrics.jsonl}.
  for i, N in enumerate(np.logspace(6, 8, 9)):
    d = tmp_path / "runs" / f"r{i}"
    d.mkdir(parents=True)
    (d / "run.json").write_text(json.dumps(
        {"params": {"total": int(N), "non_embedding": int(N) // 2},
         "flop_convention": "6ND", "seed": 0}))
    with open(d / "metrics.jsonl", "w") as f:
      for D in np.logspace(np.log10(N) - 1, np.log10(N) + 3, 60):
        loss = 1.69 + 406.4 / N**0.34 + 410.7 / D**0.28  # Hoffmann 2022 Eq. 10
        f.write(json.dumps({"step": 1, "tokens": D, "flops": 6 * N * D,
                            "loss": loss, "extra": "x"}) + "\n")
  curves = curves_lib.load_curves(str(tmp_path))
  res = report.run_fit(None, approaches=(1,), curves=curves, bootstrap=0,
                       out_dir=None, options={1: {"min_token_fraction": 0.0}})
  assert np.isfinite(res["approach1"]["a"])
  assert res["provenance"]["curves"]["n_curves"] == 9
  assert not os.listdir(tmp_path / "runs" / "r0").count("fit.json")


def test_run_fit_rejects_missing_inputs():
  with pytest.raises(data_lib.ScalingDataError, match="approach 1 needs"):
    report.run_fit(data_lib.load_runs("llama3_isoflop"), approaches=(1, 2))
  with pytest.raises(data_lib.ScalingDataError, match="budgets"):
    report.run_fit(data_lib.load_runs("llama3_isoflop"), approaches=(2,),
                   budgets=(-1.0,))


def test_run_fit_approaches_2_and_3_json_schema(tmp_path):
  # One start near the optimum keeps this fast; the 4500-point grid and the
  # published Approach-3 numbers are tested in S1's parametric tests.
  runs = data_lib.load_runs("chinchilla_epoch_isoflop")
  with pytest.warns(UserWarning, match="C=1e\\+20"):
    res = report.run_fit(
        runs, approaches=(2, 3), out_dir=str(tmp_path), bootstrap=20, seed=1,
        budgets=(1e21, 5.76e23),
        options={3: {"fit": {"grid": np.array([[6.0, 7.5, 0.5, 0.3, 0.3]])}}})
  d3 = res["approach3"]
  for k in ("E", "A", "B", "alpha", "beta", "a", "b", "G", "objective", "ci",
            "compute_optimal", "interval_procedure", "method", "citation"):
    assert k in d3, k
  assert d3["method"] == "approach3.grid_lbfgs" and d3["default"]
  # Counts and provenance that make the interval and the fit reproducible.
  assert d3["n_bootstrap_requested"] == 20
  assert d3["n_bootstrap_ok"] + d3["n_bootstrap_failed"] == 20
  assert d3["interval_procedure"] == (
      f"run resampling (all runs, with replacement), n={d3['n_bootstrap_ok']}, "
      "percentile 2.5-97.5%")
  prov3 = d3["provenance"]
  assert prov3["fit"]["grid"] == "custom (1 starts)"
  assert prov3["fit"]["objective"] == "sum" and prov3["fit"]["prune"] is True
  assert prov3["fit"]["delta"] == 1e-3
  assert prov3["bootstrap"]["scheme"] == "epoch"
  assert prov3["bootstrap"]["percentiles"] == [2.5, 97.5]
  assert d3["stages"]["grid"]["n_starts"] == 1
  row = d3["compute_optimal"]["5.76e+23"]
  assert row["N_opt"] * row["D_opt"] * 6 == pytest.approx(5.76e23, rel=1e-9)
  lo, hi = row["N_opt_ci"]
  assert lo < row["N_opt"] < hi
  on_disk = json.loads((tmp_path / "fit.json").read_text())
  assert on_disk["approach3"]["a"] == pytest.approx(d3["a"])
  assert "Approach 3 (parametric" in (tmp_path / "fit.md").read_text()
  assert (tmp_path / "contours.png").exists()
