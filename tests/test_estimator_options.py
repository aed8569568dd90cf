"""Estimator options (scaling.approach2.estimators.OPTIONS) are reachable from
both command lines: scaling.fit's flags and the sweep config's analysis
section (AnalysisSettings) are generated from the same entries."""
import dataclasses
import json
import os
import subprocess
import sys

import pytest

from experiments.analysis_settings import ANALYSIS_FIELDS, AnalysisSettings
from scaling.approach2 import estimators

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_every_option_is_an_analysis_field_passed_to_its_estimator():
  fields = {f.name: f.default for f in dataclasses.fields(AnalysisSettings)}
  for o in estimators.OPTIONS:
    assert fields[o.setting] == o.default and o.setting in ANALYSIS_FIELDS
    value = o.kind(7 if o.kind is int else 0.3)
    opts = AnalysisSettings(**{o.setting: value}).isoflop_options()
    assert opts["estimator_options"][o.estimator][o.name] == value
    with pytest.raises(Exception, match=f"analysis.{o.setting} must be"):
      AnalysisSettings.from_config({o.setting: -1})
  # None-default options are not passed: the estimator's own default applies.
  assert "huber_parabola" not in AnalysisSettings().isoflop_options()[
      "estimator_options"]


def test_huber_delta_flag_reaches_the_estimator(tmp_path):
  out = tmp_path / "fit"
  res = subprocess.run(
      [sys.executable, "-m", "scaling.fit", "--input=llama3_isoflop",
       "--approach=2", "--isoflop_estimator=huber_parabola",
       "--isoflop_huber_delta=0.05", "--bootstrap=0", "--noplots",
       f"--out={out}"], cwd=ROOT, capture_output=True, text=True,
      env=dict(os.environ, PYTHONPATH=ROOT))
  assert res.returncode == 0, res.stderr[-2000:]
  a2 = json.load(open(out / "fit.json"))["approach2"]
  assert a2["estimator_options"] == {"delta": 0.05}
  assert "delta=0.05" in a2["label"]
