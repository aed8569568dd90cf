"""experiments.analyze on a ledger generated from a known law L(N, D)."""
import json
import os

import numpy as np
import pytest

from experiments.analyze import analyze, summary_text
from experiments.ledger import Ledger, LedgerError

# Epoch's refit of Chinchilla (Besiroglu et al. 2024): a = beta/(alpha+beta).
E, A, B, ALPHA, BETA = 1.82, 482.0, 2085.0, 0.348, 0.366


def _write_ledger(workdir, *, diverged=False):
  led = Ledger(os.path.join(workdir, "results.jsonl"))
  rng = np.random.default_rng(0)
  for C in (1e18, 1e19, 1e20, 1e21):
    n_star = 0.1 * C ** 0.5
    for i, N in enumerate(n_star * np.logspace(-1, 1, 7)):
      D = C / (6 * N)
      L = E + A / N ** ALPHA + B / D ** BETA
      L *= np.exp(rng.normal(0, 1e-3))
      led.append({"run_id": f"C{C:.0e}_{i}", "budget": C, "N": int(N),
                  "D": int(D), "C": C, "eval_loss": float(L),
                  "train_loss": float(L), "status": "ok", "wall_time_s": 1.0,
                  "flop_convention": "6N", "param_convention": "total"})
  if diverged:
    led.append({"run_id": "bad", "budget": 1e20, "N": 10, "D": 10, "C": 1e20,
                "eval_loss": float("nan"), "train_loss": float("nan"),
                "status": "diverged", "flop_convention": "6N",
                "param_convention": "total"})


def test_analyze_recovers_known_law(tmp_path):
  _write_ledger(str(tmp_path), diverged=True)
  with pytest.warns(UserWarning, match="bad"):
    report = analyze(str(tmp_path), bootstrap=50, approaches=(2, 3))
  fit = report["fit"]
  a_true = BETA / (ALPHA + BETA)
  assert fit["approach3"]["alpha"] == pytest.approx(ALPHA, abs=0.02)
  assert fit["approach3"]["beta"] == pytest.approx(BETA, abs=0.02)
  assert fit["approach3"]["a"] == pytest.approx(a_true, abs=0.01)
  # Parabolas in log N are only approximately right for this law: 0.03.
  assert fit["approach2"]["a"] == pytest.approx(a_true, abs=0.03)
  lo, hi = fit["approach3"]["ci"]["alpha"]
  assert lo <= fit["approach3"]["alpha"] <= hi
  assert fit["approach3"]["n_bootstrap"] == 50
  assert fit["approach3"]["interval_procedure"].startswith("run resampling")
  prov = fit["provenance"]["input"]
  assert prov["param_convention"] == "total"
  assert prov["flop_convention"] == "6N"
  assert any("bad" in e for e in prov["exclusions"])
  for f in ("report.md", "fit.json", "fit.md", "fit.tex", "isoflop.png",
            "frontier.png"):
    assert os.path.isfile(tmp_path / "report" / f), f
  on_disk = json.load(open(tmp_path / "report" / "fit.json"))
  assert on_disk["approach2"]["a"] == fit["approach2"]["a"]
  text = summary_text(report)
  assert "a = " in text and "diverged" in text


def test_analyze_with_the_seed_noise_scheme_names_its_sigma(tmp_path):
  _write_ledger(str(tmp_path))
  fit = analyze(str(tmp_path), bootstrap=40, approaches=(2,), plots=False,
                isoflop_scheme="seed_noise")["fit"]
  a2 = fit["approach2"]
  assert a2["scheme"] == "seed_noise" and a2["weighted"]
  assert a2["interval_procedure"].startswith("seed-noise perturbation, σ=")
  assert "residual-based" in a2["interval_procedure"]   # no seed repeats here


def test_ledger_rejects_bad_lines(tmp_path):
  path = tmp_path / "results.jsonl"
  path.write_text('{"schema_version": 1, "run_id": "x"}\n')
  with pytest.raises(LedgerError, match=r"results.jsonl:1: .*lacks"):
    Ledger(str(path)).read()
  path.write_text('{"schema_version": 2, "run_id": "x", "budget": 1, "N": 1, '
                  '"D": 1, "C": 1, "eval_loss": 1, "status": "ok"}\n')
  with pytest.raises(LedgerError, match="schema_version 2"):
    Ledger(str(path)).read()


def test_analyze_without_ledger_is_a_clear_error(tmp_path):
  with pytest.raises(FileNotFoundError, match="run the sweep first"):
    analyze(str(tmp_path))


def test_analysis_settings_are_validated_once_with_one_line_errors():
  from experiments.analysis_settings import AnalysisSettings
  from lm.config import ConfigError
  s = AnalysisSettings.from_config({"bootstrap": 200, "isoflop_estimator": "all"})
  assert s.bootstrap == 200 and s.isoflop_estimator == "all"
  assert s.with_overrides(bootstrap=None, isoflop_scheme="seed_noise") == \
      AnalysisSettings(bootstrap=200, isoflop_estimator="all",
                       isoflop_scheme="seed_noise")
  for bad, match in (({"isoflop_estimator": "spline"}, "one of parabola"),
                     ({"bootstrapp": 3}, "unknown analysis field 'bootstrapp'"),
                     ({"bootstrap": 1}, "analysis.bootstrap must be an integer >= 0"),
                     ({"isoflop_k": 2}, "analysis.isoflop_k must be an integer >= 3"),
                     ({"isoflop_window_decades": 0}, "positive number of decades"),
                     ({"isoflop_on_edge": "x"}, "'drop' or 'keep'")):
    with pytest.raises(ConfigError, match=match) as e:
      AnalysisSettings.from_config(bad)
    assert "\n" not in str(e.value)
