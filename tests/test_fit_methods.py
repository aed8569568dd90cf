"""The fit-method registry, the fit.json schema and interval labelling."""
import json

import numpy as np
import pytest

from scaling.io import loaders as data_lib
from scaling.report import fit_schema
from scaling.approach2 import estimators as isoflop_estimators
from scaling.report import families  # noqa: F401 (registers the built-in methods)
from scaling.report import registry as methods
from scaling.report import analysis as report
from scaling.report import tables


def test_every_estimator_is_one_registry_entry_with_one_default_per_family():
  for name in isoflop_estimators.ESTIMATORS:
    m = methods.get(f"approach2.{name}")
    assert m.family == "approach2" and m.label and m.citation
  for family in ("approach1", "approach2", "approach3"):
    assert sum(m.default for m in methods.family_methods(family)) == 1
  assert methods.default_method("approach2").key == (
      f"approach2.{isoflop_estimators.DEFAULT_ESTIMATOR}")
  chosen, primary = methods.resolve("approach2", "all")
  assert chosen[0] is primary and primary.default
  assert len(chosen) == len(isoflop_estimators.ESTIMATORS)
  with pytest.raises(data_lib.ScalingDataError, match="unknown approach2 method"):
    methods.resolve("approach2", "spline")
  with pytest.raises(ValueError, match="registered twice"):
    methods.register(methods.get("approach2.akima"))


@pytest.fixture(scope="module")
def llama3():
  return data_lib.load_runs("llama3_isoflop")


def test_a_new_method_is_one_register_call(llama3):
  # A stand-in estimator: the vertex of the parabola through the 3 sizes
  # around the observed minimum. Registering it (estimator + fit method) is
  # all report.run_fit needs to fit, store and tabulate it.
  def locate_three(x, y, w):
    return isoflop_estimators.locate_local_parabola(x, y, w, k=3)
  est = isoflop_estimators.register(isoflop_estimators.Estimator(
      "three_point", "parabola through 3 sizes", "test", locate_three))
  from scaling.approach2 import method as approach2
  m = methods.register(methods.FitMethod(
      key="approach2.three_point", family="approach2", label="Approach 2 (3 pt)",
      citation="test", needs="runs", fit=approach2._make_fit("three_point")))
  try:
    res = report.run_fit(llama3, approaches=(2,), bootstrap=0,
                         choices={"approach2": "all"})
    entry = res["alternatives"]["approach2.three_point"]
    assert entry["label"] == "Approach 2 (3 pt)" and not entry["default"]
    assert abs(entry["a"] - res["approach2"]["a"]) < 0.1
    assert "three_point" in tables.text_table(res)
  finally:
    del methods.METHODS[m.key]
    del isoflop_estimators.ESTIMATORS[est.name]


def test_fit_json_schema_round_trip(tmp_path, llama3):
  report.run_fit(llama3, approaches=(2,), bootstrap=40, out_dir=str(tmp_path),
                 plots=False, choices={"approach2": "all"},
                 options={2: {"scheme": "seed_noise"}})
  text = (tmp_path / "fit.json").read_text()
  assert "NaN" not in text and "Infinity" not in text       # strict JSON
  back = fit_schema.read(str(tmp_path / "fit.json"))
  assert back["schema_version"] == fit_schema.SCHEMA_VERSION
  keys = [k for k, e in fit_schema.entries(back) if e["family"] == "approach2"]
  assert keys[0] == back["approach2"]["method"] and len(keys) == 4
  for _, e in fit_schema.entries(back):
    assert set(fit_schema.ENTRY_KEYS) <= set(e)
    assert e["interval_procedure"].startswith("seed-noise perturbation")
    assert set(e["compute_optimal"]) == {"1e+21", "5.76e+23"}
  assert fit_schema.conventions(back)["flop_convention"] == "6ND"
  bad = tmp_path / "bad.json"
  bad.write_text(json.dumps({"schema_version": 99}))
  with pytest.raises(fit_schema.FitFileError, match="schema_version 99"):
    fit_schema.read(str(bad))
  v1 = tmp_path / "v1.json"
  v1.write_text(json.dumps({"provenance": {"input": {"flop_convention": "6N"}}}))
  assert fit_schema.conventions(fit_schema.read(str(v1)))["flop_convention"] == "6N"


def test_every_interval_names_its_own_procedure(tmp_path):
  from scaling.io import curves as curves_lib
  curves = curves_lib.load_curves("misfitting_curves")
  runs = data_lib.load_runs("misfitting_final_best_lr")
  res = report.run_fit(runs, curves=curves, approaches=(1, 2), bootstrap=30,
                       out_dir=str(tmp_path), plots=False,
                       options={2: {"scheme": "seed_noise",
                                    "seed_noise_std": 0.01}})
  procs = {f: res[f]["interval_procedure"] for f in ("approach1", "approach2")}
  assert procs["approach1"].startswith("distinct-run subsample")
  assert procs["approach2"].startswith("seed-noise perturbation, σ=0.01 (stated)")
  outputs = {"text": tables.text_table(res),
             "md": (tmp_path / "fit.md").read_text(),
             "tex": (tmp_path / "fit.tex").read_text()}
  for name, out in outputs.items():
    for p in procs.values():
      want = tables._tex_text(p) if name == "tex" else p  # pylint: disable=protected-access
      assert want in out, (name, p)
    assert "value [percentile" not in out    # no header shared by all


def test_loss_vs_compute_is_fitted_on_the_approach2_minima(llama3):
  pytest.importorskip("scaling.loss_vs_compute.saturation", reason="scaling3's saturation fit")
  res = report.run_fit(llama3, approaches=(2,), bootstrap=30,
                       budgets=(1e22, 1e24), plots=False)
  e = res["loss_vs_compute"]
  assert e["method"] == "loss_vs_compute.saturation"
  assert len(e["minima"]) == len(res["approach2"]["minima"])
  assert e["interval_procedure"].startswith("budget resampling")
  L = [e["compute_optimal"][k]["loss"] for k in ("1e+22", "1e+24")]
  assert L[1] < L[0] < min(m["L_opt"] for m in e["minima"])  # extrapolates down
  lo, hi = e["compute_optimal"]["1e+24"]["loss_ci"]
  assert lo <= L[1] <= hi


def test_powerlaw_goes_through_the_registry():
  pytest.importorskip("scaling.powerlaw.law", reason="scaling3's power-law fit")
  rng = np.random.default_rng(0)
  x = np.logspace(6, 9, 40)
  y = 3.0 * x**-0.3 * np.exp(0.01 * rng.standard_normal(40))
  res = report.run_fit(None, approaches=("powerlaw",), bootstrap=50,
                       table=({"N": x, "loss": y}, {"source": "synthetic"}),
                       options={"powerlaw": {"x": ["N"], "y": "loss"}})
  e = res["powerlaw"]
  assert e["b[N]"] == pytest.approx(-0.3, abs=0.01)
  assert e["interval_procedure"].startswith("row resampling")
  assert "compute_optimal" not in e
  assert "power law" in tables.text_table(res)


def test_vpnls_is_an_approach3_entry():
  pytest.importorskip("scaling.approach3.vpnls", reason="scaling3's variable projection")
  assert methods.get("approach3.vpnls").family == "approach3"
