"""Power laws (scaling.powerlaw.law), saturating L*(C) (scaling.loss_vs_compute.saturation) and
``python -m scaling.fit --approach=powerlaw``: known laws are recovered
and their intervals cover the truth."""
import json

import numpy as np
import pytest

from scaling.powerlaw import law as powerlaw
from scaling.loss_vs_compute import saturation
from tests.conftest import run_cli

RNG = np.random.default_rng(0)
X30 = np.logspace(6, 10, 30)


def test_single_power_law_recovery_and_interval():
  y = 2.0 * X30**-0.3 * np.exp(0.01 * RNG.standard_normal(30))
  f = powerlaw.fit_powerlaw(X30, y, names=["N"], y_name="loss",
                            bootstrap=400, seed=1)
  assert f.b[0] == pytest.approx(-0.3, abs=0.003)
  assert f.a == pytest.approx(2.0, rel=0.05)
  lo, hi = f.ci["b[N]"]
  assert lo < -0.3 < hi and lo < f.b[0] < hi
  assert f.formula().startswith("loss = ") and "N^-0.3" in f.formula()
  np.testing.assert_allclose(f.predict(X30[:3]), f.a * X30[:3]**f.b[0])
  lo, hi = f.band(X30[:3])
  assert np.all(lo < f.predict(X30[:3])) and np.all(f.predict(X30[:3]) < hi)
  assert f.rmse_log == pytest.approx(0.01, rel=0.4)


def test_noiseless_multiplicative_law_is_exact():
  N, D = 10**RNG.uniform(7, 10, 40), 10**RNG.uniform(9, 12, 40)
  C = 6 * N * D * 10**RNG.uniform(-0.1, 0.1, 40)
  y = 5.0 * N**-0.1 * D**-0.05 * C**0.02
  f = powerlaw.fit_powerlaw(np.column_stack([N, D, C]), y,
                            names=["N", "D", "C"], y_name="loss")
  np.testing.assert_allclose(f.b, [-0.1, -0.05, 0.02], atol=1e-9)
  assert f.a == pytest.approx(5.0, rel=1e-9)


def test_offset_law_recovery():
  """y = c + a x^b (Henighan et al. 2020's irreducible-loss form)."""
  y = (1.7 + 400 * X30**-0.34) * np.exp(0.002 * RNG.standard_normal(30))
  f = powerlaw.fit_powerlaw(X30, y, names=["N"], y_name="loss", offset=True,
                            bootstrap=200, seed=2)
  assert f.c == pytest.approx(1.7, abs=0.01)
  assert f.b[0] == pytest.approx(-0.34, abs=0.01)
  assert f.n_failed == 0
  for k, true in (("c", 1.7), ("b[N]", -0.34)):
    lo, hi = f.ci[k]
    assert lo - 0.01 < true < hi + 0.01, k
  d = f.to_dict()
  assert "Henighan" in d["citation"]


@pytest.mark.parametrize("kw,match", [
    (dict(X=X30, y=-X30), "positive"),
    (dict(X=np.column_stack([X30, 2 * X30]), y=X30), "collinear"),
    (dict(X=np.column_stack([X30, X30**2 + 1]), y=X30, offset=True),
     "one x"),
    (dict(X=X30[:2], y=X30[:2]), "at least"),
    (dict(X=X30, y=X30, bootstrap=1), "bootstrap"),
])
def test_bad_input(kw, match):
  with pytest.raises(powerlaw.PowerLawError, match=match):
    powerlaw.fit_powerlaw(**kw)


def _saturating(n=8, sigma=0.004, seed=0):
  C = np.logspace(18, 22, n)
  L = 1.7 + 2000 * C**-0.15
  rng = np.random.default_rng(seed)
  return C, L + sigma * rng.standard_normal(n), np.full(n, sigma), L


def test_saturation_recovers_law_and_bands_cover():
  C, L, sigma, true = _saturating()
  f = saturation.fit_saturation(C, L, sigma=sigma, bootstrap=300, seed=0)
  assert f.scheme == "noise" and f.n_failed == 0
  assert f.gamma == pytest.approx(0.15, abs=0.03)
  assert f.E == pytest.approx(1.7, abs=0.05)
  lo, hi = f.ci["gamma"]
  assert lo < 0.15 < hi
  # Predicted L* at the budgets fitted and one beyond, with bands that
  # bracket the truth.
  Cq = np.array([1e19, 1e21, 1e23])
  p = f.predict(Cq)
  want = 1.7 + 2000 * Cq**-0.15
  np.testing.assert_allclose(p["L_opt"], want, rtol=0.01)
  assert np.all(p["L_opt_ci"][0] < want) and np.all(want < p["L_opt_ci"][1])
  d = f.to_dict()
  assert "Porian" in d["citation"] and d["ci_scheme"] == "noise"


def test_saturation_without_saturation_says_E_is_at_its_bound():
  """A pure power law (E = 0): E runs to its bound, and its 'interval' (the
  replicates stay where they start, the objective being flat in log E) is
  not reported; gamma and the L* bands still are."""
  C = np.logspace(10, 11.2, 9)
  sigma = np.full(C.size, 0.003)
  L = 22.4 * C**-0.0975 + sigma * np.random.default_rng(0).standard_normal(9)
  f = saturation.fit_saturation(C, L, sigma=sigma, bootstrap=200, seed=0)
  assert f.E_at_zero and f.E == 0.0 and "E" not in f.ci
  assert f.to_dict()["E_at_zero"] is True
  assert f.gamma == pytest.approx(0.0975, abs=0.01)
  assert "gamma" in f.ci and "L_opt_ci" in f.predict(C)
  C2, L2, sigma2, _ = _saturating()
  g = saturation.fit_saturation(C2, L2, sigma=sigma2)
  assert not g.E_at_zero and g.E > 1.0


def test_saturation_resample_scheme_and_errors():
  C, L, _, _ = _saturating(seed=1)
  f = saturation.fit_saturation(C, L, bootstrap=50, seed=0)
  assert f.scheme == "resample" and f.weights == "equal"
  lo, hi = f.ci["E"]
  assert lo <= f.E <= hi
  with pytest.raises(saturation.SaturationError, match=">= 4 distinct"):
    saturation.fit_saturation(C[:3], L[:3])
  with pytest.raises(saturation.SaturationError, match="needs sigma"):
    saturation.fit_saturation(C, L, bootstrap=10, scheme="noise")
  with pytest.raises(saturation.SaturationError, match="not both"):
    saturation.fit_saturation(C, L, sigma=np.ones(8), weights=np.ones(8))


def test_cli_powerlaw_on_any_csv_column(tmp_path):
  path = tmp_path / "runs.csv"
  N = np.logspace(6, 9, 12)
  with open(path, "w") as f:
    f.write("params,tokens,eval_loss,wallclock\n")
    for n in N:
      f.write(f"{n},{20 * n},{3.0 * n**-0.05},{1e-3 * n**0.9}\n")
  out = tmp_path / "out"
  res = run_cli("scaling.fit", f"--input={path}", "--approach=powerlaw",
                "--x=wallclock", "--y=N", "--bootstrap=50", f"--out={out}",
                timeout=300)
  assert res.returncode == 0, res.stderr[-2000:]
  d = json.loads((out / "fit.json").read_text())["powerlaw"]
  # N resolves to the 'params' column (data's aliases): params = (w/1e-3)^(1/.9).
  assert d["x"] == ["wallclock"] and d["y"] == "params"
  assert d["b"]["wallclock"] == pytest.approx(1 / 0.9, rel=1e-6)
  assert (out / "powerlaw.png").exists() and "b[wallclock]" in res.stdout
  bad = run_cli("scaling.fit", f"--input={path}", "--approach=powerlaw",
                "--x=depth", "--y=loss", timeout=300)
  lines = [l for l in bad.stderr.splitlines() if l.strip()]
  assert bad.returncode == 2 and len(lines) == 1, bad.stderr
  assert lines[0].startswith("error: no numeric column 'depth'")
