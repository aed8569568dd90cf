"""The one analysis pass (scaling.report.analysis.run_fit via experiments.analyze):
fit.json is written once per analysis and each family is fitted once on the
sweep's runs (no probe fits, no second fit for the extrapolation check's
held-out budget)."""
import collections
import dataclasses
import os

import pytest

from experiments.analyze import analyze
from scaling.approach3 import parametric
from scaling.report import fit_schema
from scaling.report import registry
from scaling.report import analysis
from tests.test_analyze import _write_ledger


def _count_fits(monkeypatch):
  """Wraps every registered method; returns {key: [len(runs) per call]}."""
  calls = collections.defaultdict(list)
  for key, m in list(registry.METHODS.items()):
    def fit(inputs, options, _orig=m.fit, _key=key):
      calls[_key].append(None if inputs.runs is None else len(inputs.runs))
      return _orig(inputs, options)
    monkeypatch.setitem(registry.METHODS, key, dataclasses.replace(m, fit=fit))
  return calls


def _count_writes(monkeypatch):
  writes = []
  orig = fit_schema.write
  def write(result, path):
    writes.append(path)
    return orig(result, path)
  monkeypatch.setattr(fit_schema, "write", write)
  outputs = []
  orig_outputs = analysis.write_outputs
  def write_outputs(result, out_dir):
    outputs.append(out_dir)
    return orig_outputs(result, out_dir)
  monkeypatch.setattr(analysis, "write_outputs", write_outputs)
  return writes, outputs


def test_one_pass_writes_fit_json_once_and_fits_each_family_once(
    tmp_path, monkeypatch):
  _write_ledger(str(tmp_path))           # 4 budgets x 7 sizes = 28 runs
  calls = _count_fits(monkeypatch)
  writes, outputs = _count_writes(monkeypatch)
  report = analyze(str(tmp_path), bootstrap=20, approaches=(2,))
  fit = report["fit"]
  assert writes == [os.path.join(str(tmp_path), "report", "fit.json")]
  assert outputs == [os.path.join(str(tmp_path), "report")]
  n = 28
  a2 = fit["approach2"]["method"]
  # Each family's method is fitted exactly once on all the sweep's runs
  # (Approach 3's count: the next test).
  assert calls[a2].count(n) == 1
  assert not any(calls[k] for k in calls if k.startswith("approach3."))
  lvc = [k for k in calls if k.startswith("loss_vs_compute.")]
  assert any(calls[k] for k in lvc)
  # The extrapolation check ran, and its only other Approach-2 fit is on the
  # held-in budgets (fewer runs: the largest budget held out).
  assert fit["extrapolation"]["status"] == "done"
  assert [c for c in calls[a2] if c != n] == [n - 7]
  # What was written is what was returned (and fit.md/tex/report.md exist).
  on_disk = fit_schema.read(writes[0])
  assert on_disk["extrapolation"]["status"] == "done"
  assert on_disk["approach2"]["a"] == pytest.approx(fit["approach2"]["a"])
  for f in ("fit.md", "fit.tex", "report.md", "frontier.png",
            "extrapolation.png"):
    assert os.path.isfile(tmp_path / "report" / f), f


def test_a_family_that_cannot_fit_is_skipped_without_a_probe_fit(
    tmp_path, monkeypatch):
  """Approach 2 on a grid that misses every optimum reports 'skipped: why'
  from its own (single) fit; Approach 3 is still fitted once."""
  from experiments.ledger import Ledger
  import numpy as np
  led = Ledger(os.path.join(str(tmp_path), "results.jsonl"))
  for C in (1e18, 1e19):
    for i, N in enumerate(0.1 * C ** 0.5 * np.array([3.0, 5.0, 9.0])):
      D = C / (6 * N)
      L = 1.8 + 480 / N ** 0.35 + 2000 / D ** 0.37 + 0.01 * i  # monotone in N
      led.append({"run_id": f"C{C:.0e}_{i}", "budget": C, "N": int(N),
                  "D": int(D), "C": C, "eval_loss": float(L),
                  "train_loss": float(L), "status": "ok",
                  "wall_time_s": 1.0, "flop_convention": "6N",
                  "param_convention": "total"})
  calls = _count_fits(monkeypatch)
  writes, _ = _count_writes(monkeypatch)
  # What is counted here does not need Hoffmann's full 4500-start grid.
  monkeypatch.setattr(parametric, "HOFFMANN_GRID", parametric.HOFFMANN_GRID[::45])
  with pytest.warns(UserWarning, match="Approach 2 skipped: "):
    fit = analyze(str(tmp_path), bootstrap=0, approaches=(2, 3),
                  plots=False)["fit"]
  assert fit["warnings"][0].startswith("Approach 2 skipped: ")
  assert "approach2" not in fit or not fit["approach2"]
  a2_default = registry.default_method("approach2").key
  assert len(calls[a2_default]) == 1          # no probe fit before it
  assert calls[fit["approach3"]["method"]] == [6]
  assert len(writes) == 1
