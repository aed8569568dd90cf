"""Tests for scaling.isoflop (Chinchilla Approach 2)."""
import time
import warnings

import numpy as np
import pytest

from scaling import data as data_lib
from scaling import isoflop


def _synthetic(a=0.5, k=0.1, budgets=(1e18, 1e19, 1e20, 1e21), n=9,
               half_width=0.6, noise=0.0, seed=0, centre_shift=0.0):
  """Losses exactly quadratic in log10 N around N* = k C^a (plus noise)."""
  rng = np.random.default_rng(seed)
  N, C, L, budget = [], [], [], []
  for c in budgets:
    log_n_opt = np.log10(k * c**a)
    x = log_n_opt + centre_shift + np.linspace(-half_width, half_width, n)
    # L*(C) decreasing in C, curvature 0.3 per decade^2 (arbitrary, positive).
    loss = 2.0 + 5.0 * c**-0.05 + 0.3 * (x - log_n_opt)**2
    N.append(10**x); C.append(np.full(n, c)); budget.append(np.full(n, c))
    L.append(loss + noise * rng.standard_normal(n))
  N, C = np.concatenate(N), np.concatenate(C)
  return dict(N=N, C=C, D=C / (6 * N), loss=np.concatenate(L),
              budget=np.concatenate(budget))


def test_exact_recovery_on_noise_free_parabolas():
  fit = isoflop.fit_isoflop(_synthetic(a=0.45, k=0.3), bootstrap=0)
  assert fit.a == pytest.approx(0.45, abs=1e-9)
  assert fit.k_N == pytest.approx(0.3, rel=1e-7)
  # D = C/(6N) is exactly quadratic in log D too, with D* = C/(6 N*).
  assert fit.b == pytest.approx(0.55, abs=1e-9)
  assert fit.k_D == pytest.approx(1 / (6 * 0.3), rel=1e-7)
  pred = fit.predict(1e22)
  assert pred["N_opt"] == pytest.approx(0.3 * 1e22**0.45, rel=1e-7)


def test_bootstrap_interval_covers_truth_with_noise_and_is_seeded():
  d = _synthetic(a=0.5, noise=0.01, n=15)
  fit = isoflop.fit_isoflop(d, bootstrap=500, seed=3)
  lo, hi = fit.ci["a"]
  assert lo < 0.5 < hi and lo < fit.a < hi
  again = isoflop.fit_isoflop(d, bootstrap=500, seed=3)
  assert again.ci == fit.ci
  other = isoflop.fit_isoflop(d, bootstrap=500, seed=4)
  assert other.ci != fit.ci


def test_seed_noise_scheme_estimates_noise_and_weighted_fit_runs():
  d = _synthetic(a=0.5, noise=0.02, n=30, seed=1)
  fit = isoflop.fit_isoflop(d, bootstrap=400, scheme="seed_noise", weighted=True)
  # Pooled residual std of correctly specified parabolas estimates the noise.
  assert fit.seed_noise_std == pytest.approx(0.02, rel=0.2)
  lo, hi = fit.ci["a"]
  assert lo < 0.5 < hi
  assert fit.weighted and fit.scheme == "seed_noise"


def test_chinchilla_epoch_isoflop_reproduces_anchor():
  runs = data_lib.load_runs("chinchilla_epoch_isoflop")
  # anchors.json: 0.4951 with "quadratic fit ... over all points" -> keep all.
  keep = isoflop.fit_isoflop(runs, bootstrap=200, on_edge="keep")
  assert keep.a == pytest.approx(0.4951, abs=0.005)
  assert keep.b == pytest.approx(0.5049, abs=0.005)
  assert not keep.dropped and len(keep.minima) == 9
  # Default rule: the 1e20 budget's vertex lies outside its sampled N range
  # (10^8.70 < 10^8.80): dropped with a warning naming it.
  with pytest.warns(UserWarning, match="1e\\+20"):
    drop = isoflop.fit_isoflop(runs, bootstrap=200)
  assert list(drop.dropped) == ["1e+20"]
  assert drop.a == pytest.approx(0.4951, abs=0.005)
  lo, hi = drop.ci["a"]
  assert lo < drop.a < hi


def test_llama3_isoflop_reproduces_published_token_law():
  # Llama 3 (arXiv:2407.21783, Sec. 3.2.1): N*(C) = A C^alpha tokens with
  # (alpha, A) = (0.53, 0.29); Open-Athena's extraction gives 0.537 / 0.299.
  runs = data_lib.load_runs("llama3_isoflop")
  fit = isoflop.fit_isoflop(runs, bootstrap=200)
  assert fit.b == pytest.approx(0.537, abs=0.005)
  assert fit.k_D == pytest.approx(0.299, rel=0.05)


def test_grouping_without_budget_column_matches_budgets():
  runs = data_lib.load_runs("chinchilla_epoch_isoflop")
  d = dict(N=runs.N, D=runs.D, C=runs.C, loss=runs.loss)
  with pytest.warns(UserWarning, match="rounding log10 C"):
    fit = isoflop.fit_isoflop(d, bootstrap=0, on_edge="keep")
  assert [r["C"] for r in fit.minima] == pytest.approx(
      sorted(set(runs.budget.tolist())), rel=1e-9)
  assert fit.a == pytest.approx(0.4951, abs=0.005)


def test_bootstrap_is_fast():
  runs = data_lib.load_runs("llama3_isoflop")
  t0 = time.perf_counter()
  fit = isoflop.fit_isoflop(runs, bootstrap=4000)
  assert time.perf_counter() - t0 < 5.0
  assert fit.samples["a"].size + fit.n_failed_replicates == 4000


def test_single_budget_is_an_error():
  d = _synthetic(budgets=(1e19,))
  with pytest.raises(data_lib.ScalingDataError, match="one usable budget"):
    isoflop.fit_isoflop(d, bootstrap=0)


def test_two_budgets_warn_about_interval():
  with pytest.warns(UserWarning, match="fewer than 3 usable budgets"):
    isoflop.fit_isoflop(_synthetic(budgets=(1e18, 1e19)), bootstrap=0)


def test_budget_with_two_sizes_is_dropped_and_none_left_is_error():
  d = _synthetic(budgets=(1e18, 1e19, 1e20, 1e21), n=9)
  keep = ~((d["budget"] == 1e21) & (np.arange(d["N"].size) % 9 > 1))
  d2 = {k: v[keep] for k, v in d.items()}
  with pytest.warns(UserWarning, match="C=1e\\+21: only 2 distinct"):
    fit = isoflop.fit_isoflop(d2, bootstrap=0)
  assert "1e+21" in fit.dropped and len(fit.minima) == 3
  tiny = {k: v[::5] for k, v in d.items()}  # <= 2 sizes per budget
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    with pytest.raises(data_lib.ScalingDataError, match="no usable budget"):
      isoflop.fit_isoflop(tiny, bootstrap=0)


def test_off_grid_and_concave_budgets_are_dropped():
  d = _synthetic(budgets=(1e18, 1e19, 1e20, 1e21))
  shifted = _synthetic(budgets=(1e22,), centre_shift=1.0)  # vertex off-grid
  d = {k: np.concatenate([d[k], shifted[k]]) for k in d}
  sel = d["budget"] == 1e18
  d["loss"] = np.where(sel, 10.0 - d["loss"], d["loss"])   # concave budget
  with pytest.warns(UserWarning):
    fit = isoflop.fit_isoflop(d, bootstrap=0)
  assert fit.dropped["1e+22"].startswith("vertex outside")
  assert "curvature" in fit.dropped["1e+18"]
  assert fit.a == pytest.approx(0.5, abs=1e-9)


@pytest.mark.parametrize("bad", [np.nan, 0.0, -1.0])
def test_non_positive_or_nan_input_is_an_error(bad):
  d = _synthetic()
  d["loss"] = d["loss"].copy()
  d["loss"][4] = bad
  with pytest.raises(data_lib.ScalingDataError, match="loss"):
    isoflop.fit_isoflop(d, bootstrap=0)


def test_seed_noise_needs_residual_dof_or_explicit_std():
  d = _synthetic(n=3)
  with pytest.raises(data_lib.ScalingDataError, match="seed_noise_std"):
    isoflop.fit_isoflop(d, bootstrap=10, scheme="seed_noise")
  fit = isoflop.fit_isoflop(d, bootstrap=10, scheme="seed_noise",
                            seed_noise_std=0.001)
  assert fit.seed_noise_std == 0.001
  with pytest.raises(data_lib.ScalingDataError, match="bootstrap"):
    isoflop.fit_isoflop(d, bootstrap=-1)
