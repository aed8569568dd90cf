"""Tests for the loss_curve family (scaling/loss_curve/): the laws' pair sums
against their O(T^2) / recurrence definitions, the published numbers of Luo
et al. 2025, recovery of a known law, the CSV format and the CLI."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from scaling.io.types import ScalingDataError
from scaling.loss_curve import data, fitting, laws, luo2025, sources
from scaling.numerics import lbfgs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MP = laws.LAWS["multipower"]
TISSUE = laws.LAWS["tissue"]
TRUE_MP = dict(L0=2.0, A=0.8, alpha=0.5, B=300.0, C=2.0, beta=0.6, gamma=0.6)


def _curve(name, lr, every=10, loss=None):
  step = np.arange(every, lr.size, every)
  return data.LossCurve(name, lr, step,
                        np.ones(step.size) if loss is None else loss)


def _brute_multipower(p, lr, t):
  """The README's formula, summed over every step k = 1..t."""
  P = np.cumsum(lr)
  k = np.arange(1, t + 1)
  S_k = P[t] - P[k - 1]
  G = 1 - (1 + p["C"] * lr[k] ** -p["gamma"] * S_k) ** -p["beta"]
  return (p["L0"] + p["A"] * P[t] ** -p["alpha"]
          - p["B"] * np.sum((lr[k - 1] - lr[k]) * G))


def _brute_tissue(p, lr, t):
  """Tissue et al.'s momentum recurrence, decreases of the rate only."""
  m = s2 = 0.0
  for i in range(1, t + 1):
    m = p["lambda"] * m + max(lr[i - 1] - lr[i], 0.0)
    s2 += m
  return p["L0"] + p["A"] * np.cumsum(lr)[t] ** -p["alpha"] - p["C"] * s2


def _schedules(T=1500):
  return {
      "cosine": data.schedule_lr("cosine", T, 1e-3, 100),
      "wsd": data.schedule_lr("wsd", T, 1e-3, 100),
      "constant": data.schedule_lr("wsd", T, 1e-3, 100, cooldown_fraction=0.0),
      "linear": data.schedule_lr("linear", T, 1e-3, 100),
  }


def test_pair_sums_equal_their_definitions():
  lr = _schedules(600)["wsd"]
  c = _curve("wsd", lr, every=37)
  tp = dict(L0=2.0, A=0.8, alpha=0.5, C=0.4, **{"lambda": 0.99})
  for block in (1, 8):   # exact, and blocked with exact tails
    got_mp = laws.predict(MP, TRUE_MP, [c], block=block, window=64)[0]
    got_t = laws.predict(TISSUE, tp, [c], block=block, window=64)[0]
    want_mp = [_brute_multipower(TRUE_MP, lr, t) for t in c.step_M]
    want_t = [_brute_tissue(tp, lr, t) for t in c.step_M]
    # blocked with a window 16x shorter than the default: within 1e-5 relative
    tol = 1e-12 if block == 1 else 1e-5
    np.testing.assert_allclose(got_mp, want_mp, rtol=tol, atol=0)
    np.testing.assert_allclose(got_t, want_t, rtol=tol, atol=0)


@pytest.mark.parametrize("size", ["25M", "100M"])
def test_published_parameters_reproduce_published_errors(size):
  cs = sources.load(f"luo2025_{size}")
  assert sorted(cs.names()) == sorted(luo2025.FIT + luo2025.TEST)
  test = cs.select(luo2025.TEST)
  pub = luo2025.PUBLISHED[size]
  preds = laws.predict(MP, pub["params"], test.curves)
  m = [fitting.metrics(p, c.loss_M) for p, c in zip(preds, test)]
  assert abs(np.mean([x["PredE"] for x in m]) - pub["PredE"]) < 1e-5
  assert abs(np.mean([x["WorstE"] for x in m]) - pub["WorstE"]) < 1e-5


def test_blocked_sum_is_close_to_exact_on_long_schedules():
  cs = sources.load("luo2025_25M").select(["cosine_72000", "wsd_20000_24000"])
  sub = [data.LossCurve(c.name, c.lr_T, c.step_M[::25], c.loss_M[::25])
         for c in cs]
  exact = laws.predict(MP, luo2025.PUBLISHED["25M"]["params"], sub, block=1)
  blocked = laws.predict(MP, luo2025.PUBLISHED["25M"]["params"], sub)
  for e, b in zip(exact, blocked):
    assert np.max(np.abs(e - b)) < 1e-5


@pytest.mark.parametrize("size", ["25M", "100M"])
def test_protocol_fit_within_bounds_of_published_errors(size):
  """Luo et al.'s protocol: fit 3 curves, predict 6; test PredE / WorstE no
  worse than the published numbers x 1.25 (the issue's bound)."""
  cs = sources.load(f"luo2025_{size}")
  f = fitting.fit("multipower", cs.select(luo2025.FIT).curves)
  test = cs.select(luo2025.TEST)
  m = [fitting.metrics(p, c.loss_M)
       for p, c in zip(fitting.predict(f, test.curves), test)]
  pub = luo2025.PUBLISHED[size]
  assert np.mean([x["PredE"] for x in m]) <= 1.25 * pub["PredE"]
  assert np.mean([x["WorstE"] for x in m]) <= 1.25 * pub["WorstE"]
  # The minimiser of the stated objective: no worse than the published fit.
  obj = fitting._objective("multipower", {})
  _, arr, loss = fitting._data(cs.select(luo2025.FIT).curves,
                               fitting.FitOptions())
  x_pub = fitting._to_x("multipower", pub["params"], {})
  assert f.objective <= lbfgs.evaluate(obj, x_pub[None], np.ones((1, loss.size)),
                                       arr)[0]


def test_fit_recovers_a_known_law_and_predicts_another_schedule():
  sch = _schedules(800)
  curves = [_curve(n, lr, every=20) for n, lr in sch.items()]
  truth = laws.predict(MP, TRUE_MP, curves)
  curves = [data.LossCurve(c.name, c.lr_T, c.step_M, l)
            for c, l in zip(curves, truth)]
  f = fitting.fit("multipower", curves[:3])
  pred = fitting.predict(f, curves[3:])[0]       # linear: never fitted
  assert np.max(np.abs(pred - curves[3].loss_M) / curves[3].loss_M) < 2e-3
  for k in ("L0", "A", "alpha"):
    assert f.params[k] == pytest.approx(TRUE_MP[k], rel=0.1)


def test_bootstrap_intervals_cover_the_fit_and_band_the_prediction():
  sch = _schedules(400)
  rng = np.random.default_rng(0)
  curves = []
  for n, lr in sch.items():
    c = _curve(n, lr, every=10)
    L = laws.predict(TISSUE, dict(L0=2.0, A=0.8, alpha=0.5, C=0.3,
                                  **{"lambda": 0.999}), [c])[0]
    curves.append(data.LossCurve(n, lr, c.step_M,
                                 L * np.exp(0.002 * rng.standard_normal(L.size))))
  opts = fitting.FitOptions(bootstrap_unit="points", max_bootstrap=8)
  f = fitting.fit("tissue", curves, opts, bootstrap=8, seed=1)
  assert f.n_bootstrap == 8 and f.n_failed == 0
  ci = f.ci()
  assert set(ci) == {"L0", "A", "alpha", "C"} and "lambda" in f.fixed
  for k, (lo, hi) in ci.items():
    assert lo < hi
  (lo, hi), = fitting.predict_band(f, curves[:1], opts)
  assert np.all(lo <= hi) and np.any(lo < hi)


def test_csv_round_trip_and_bad_input(tmp_path):
  lr = _schedules(300)["cosine"]
  c = _curve("cos", lr, every=50, loss=np.linspace(3, 2, 6))
  data.write_csv(c, str(tmp_path / "cos.csv"))
  back = sources.load(str(tmp_path))
  assert back.names() == ["cos"]
  np.testing.assert_array_equal(back.curves[0].step_M, c.step_M)
  np.testing.assert_allclose(back.curves[0].lr_T, lr)
  np.testing.assert_allclose(back.curves[0].loss_M, c.loss_M)
  bad = tmp_path / "gap.csv"
  bad.write_text("step,lr,loss\n0,0,\n2,1e-3,3.0\n")
  with pytest.raises(ScalingDataError, match="one row for every step"):
    sources.load(str(bad))
  with pytest.raises(ScalingDataError, match="neither a file nor"):
    sources.load(str(tmp_path / "missing.csv"))


def _cli(*args):
  env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep +
             os.environ.get("PYTHONPATH", ""))
  return subprocess.run([sys.executable, "-m", "scaling.fit", *args],
                        cwd=ROOT, env=env, capture_output=True, text=True,
                        timeout=300)


def test_cli_fits_csv_curves_and_writes_fit_json(tmp_path):
  sch = _schedules(600)
  d = tmp_path / "curves"
  d.mkdir()
  for n, lr in sch.items():
    c = _curve(n, lr, every=20)
    L = laws.predict(MP, TRUE_MP, [c])[0]
    data.write_csv(data.LossCurve(n, lr, c.step_M, L), str(d / f"{n}.csv"))
  out = tmp_path / "out"
  p = _cli("--approach=loss_curve", f"--input={d}", f"--out={out}",
           "--loss_curve_fit=constant,cosine,wsd", "--bootstrap=0",
           "--loss_curve_predict=cosine:steps=900:lr=1e-3:warmup=100")
  assert p.returncode == 0, p.stderr
  fit = json.loads((out / "fit.json").read_text())
  e = fit["loss_curve"]
  assert e["method"] == "loss_curve.multipower"
  assert set(e["params"]) == {"L0", "A", "alpha", "B", "C", "beta", "gamma"}
  roles = {c["name"]: c["role"] for c in e["curves"]}
  assert roles == {"constant": "fit", "cosine": "fit", "wsd": "fit",
                   "linear": "test"}
  assert e["test_summary"]["PredE"] < 2e-3
  assert len(e["predictions"][0]["loss"]) == len(e["predictions"][0]["step"])
  assert (out / "loss_curve_multipower.png").exists()
  assert "linear" in p.stdout and "test average" in p.stdout
  p = _cli("--approach=loss_curve", f"--input={tmp_path / 'nope'}")
  assert p.returncode == 2 and p.stderr.strip().startswith("error:")
