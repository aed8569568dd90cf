"""Tests for scaling.approach3.bootstrap: published intervals, schemes, coverage."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scaling.approach3 import bootstrap
from scaling.io import loaders as data
from scaling.numerics import lbfgs
from scaling.approach3 import parametric

# Besiroglu et al. 2024, 4000 bootstraps of the MLE fit (anchors.json).
EPOCH_CI95 = dict(alpha=(0.317, 0.373), beta=(0.331, 0.415))


@pytest.fixture(scope="module")
def epoch_runs():
  return data.load_runs("chinchilla_epoch")


def test_resample_weights_schemes_and_seed():
  w = bootstrap.resample_weights(240, 50, "epoch", seed=3)
  assert w.shape == (50, 240) and np.all(w.sum(axis=1) == 240)
  np.testing.assert_array_equal(
      w, bootstrap.resample_weights(240, 50, "epoch", seed=3))
  assert not np.array_equal(
      w, bootstrap.resample_weights(240, 50, "epoch", seed=4))
  h = bootstrap.resample_weights(240, 10, "hoffmann", seed=0)
  assert set(np.unique(h)) == {0.0, 1.0} and np.all(h.sum(axis=1) == 192)
  with pytest.raises(bootstrap.BootstrapError, match="scheme"):
    bootstrap.resample_weights(240, 10, "jackknife", seed=0)


def test_epoch_intervals_1000_resamples(epoch_runs):
  """Epoch's published 95% intervals from 1000 resamples of the sum-Huber fit.

  Epoch's intervals come from 4000 bootstraps of their MLE fit; that refit
  is ~10x slower here (its likelihood has kinks 5e-9 wide in the residual),
  so it runs in the slow test below. The sum-Huber and MLE point estimates
  differ by < 0.001 in alpha and beta.
  """
  r = epoch_runs
  res = bootstrap.bootstrap_parametric(r.N, r.D, r.loss, n_resamples=1000,
                                       seed=0)
  for name, (lo, hi) in EPOCH_CI95.items():
    assert res.ci[name][0] == pytest.approx(lo, abs=0.01), name
    assert res.ci[name][1] == pytest.approx(hi, abs=0.01), name
  assert res.n_failed == 0 and res.n_not_converged <= 10
  assert res.samples["alpha"].shape == (1000,)
  assert res.interval.startswith("percentile 2.5-97.5%")
  # Derived quantities carry intervals that contain the point estimate.
  opt = res.point.compute_optimal(5.76e23)
  lo, hi = res.ci["N_opt@5.76e+23"]
  assert lo < opt["N_opt"] < hi
  lo, hi = res.ci["a"]
  assert lo < res.point.a < hi
  # Seeded: the same seed gives the same intervals.
  again = bootstrap.bootstrap_parametric(r.N, r.D, r.loss, n_resamples=1000,
                                         seed=0, point=res.point)
  assert again.ci == res.ci


def test_point_start_matches_full_grid_refit(epoch_runs):
  """Refits from the point estimate find the full-grid optimum of resamples."""
  r = epoch_runs
  point = parametric.fit_parametric(r.N, r.D, r.loss)
  w = bootstrap.resample_weights(len(r), 3, "epoch", seed=11)
  res = bootstrap.bootstrap_parametric(r.N, r.D, r.loss, n_resamples=3,
                                       seed=11, point=point)
  for i in range(3):
    idx = np.repeat(np.arange(len(r)), w[i].astype(int))
    full = parametric.fit_parametric(r.N[idx], r.D[idx], r.loss[idx])
    assert res.samples["alpha"][i] == pytest.approx(full.alpha, abs=1e-3)
    assert res.samples["beta"][i] == pytest.approx(full.beta, abs=1e-3)


def test_hoffmann_scheme(epoch_runs):
  r = epoch_runs
  res = bootstrap.bootstrap_parametric(r.N, r.D, r.loss, scheme="hoffmann",
                                       seed=0)
  assert res.n_resamples == 100 and res.samples["alpha"].shape == (100,)
  assert "10-90%" in res.interval and "Hoffmann" in res.interval
  assert res.percentiles == (10.0, 90.0)
  lo, hi = res.ci["alpha"]
  assert lo < res.point.alpha < hi
  # 80% subsamples without replacement vary less than full bootstraps.
  assert hi - lo < EPOCH_CI95["alpha"][1] - EPOCH_CI95["alpha"][0]


def test_bad_settings(epoch_runs):
  r = epoch_runs
  with pytest.raises(bootstrap.BootstrapError, match="scheme"):
    bootstrap.bootstrap_parametric(r.N, r.D, r.loss, scheme="x")
  with pytest.raises(bootstrap.BootstrapError, match="n_resamples"):
    bootstrap.bootstrap_parametric(r.N, r.D, r.loss, n_resamples=1)


@pytest.mark.slow
def test_epoch_intervals_mle_4000(epoch_runs):
  """The published setting: 4000 bootstraps of the MLE fit."""
  r = epoch_runs
  res = bootstrap.bootstrap_parametric(r.N, r.D, r.loss, method="mle",
                                       n_resamples=4000, seed=0)
  for name, (lo, hi) in EPOCH_CI95.items():
    assert res.ci[name][0] == pytest.approx(lo, abs=0.01), name
    assert res.ci[name][1] == pytest.approx(hi, abs=0.01), name


@pytest.mark.slow
def test_coverage_on_synthetic_law():
  """95% intervals cover the true alpha and beta at about the nominal rate."""
  N, D = np.meshgrid(np.logspace(7.5, 10, 8), np.logspace(9, 11.5, 8))
  N, D = N.ravel(), D.ravel()
  true = dict(E=1.8, A=400.0, B=2000.0, alpha=0.34, beta=0.37)
  theta0 = np.array([[np.log(400.0), np.log(2000.0), np.log(1.8), 0.34,
                      0.37]])
  n_rep, hits = 60, dict(alpha=0, beta=0)
  for rep in range(n_rep):
    rng = np.random.default_rng(1000 + rep)
    L = parametric.predict_loss(true, N, D) * np.exp(
        0.01 * rng.standard_normal(N.size))
    point = parametric.fit_parametric(N, D, L, grid=theta0)
    res = bootstrap.bootstrap_parametric(N, D, L, n_resamples=400, seed=rep,
                                         point=point)
    for k in hits:
      lo, hi = res.ci[k]
      hits[k] += lo <= true[k] <= hi
  for k, h in hits.items():
    # Binomial(60, 0.95): P(X < 51) ~ 1.6%; percentile intervals of a
    # nonlinear fit are allowed to be slightly liberal.
    assert 51 <= h <= 60, (k, h)


def test_float64_does_not_leak_out_of_the_solver(epoch_runs):
  # The solver scopes x64 to its own block (scaling.numerics.lbfgs.x64): code that
  # runs afterwards in the same process (lm/, float32) must be unaffected.
  r = epoch_runs
  fit = parametric.fit_parametric(r.N, r.D, r.loss,
                                  grid=np.array([[6.0, 7.5, 0.5, 0.3, 0.3]]))
  assert jnp.zeros(1).dtype == jnp.float32
  assert jax.config.jax_enable_x64 is False
  bootstrap.bootstrap_parametric(r.N, r.D, r.loss, n_resamples=4, point=fit)
  assert jnp.zeros(1).dtype == jnp.float32
  assert jax.config.jax_enable_x64 is False


def _wrong_gradient(x, w, data):
  """Value sum(x^2), but its reported gradient is -2x (points uphill)."""
  del w, data
  q = jnp.sum(x**2)
  return q - 2.0 * (q - jax.lax.stop_gradient(q))


def test_immediate_line_search_failure_is_failed_not_converged():
  x0 = np.array([[1.0, -2.0], [0.5, 0.5]])
  out = lbfgs.run(_wrong_gradient, x0, np.ones((2, 1)), (np.zeros(1),))
  np.testing.assert_array_equal(out["failed"], [True, True])
  np.testing.assert_array_equal(out["converged"], [False, False])
  np.testing.assert_array_equal(out["x"], x0)
  # A healthy objective converges and is not failed.
  ok = lbfgs.run(lambda x, w, d: jnp.sum((x - 1.0)**2), x0, np.ones((2, 1)),
                 (np.zeros(1),))
  assert ok["converged"].all() and not ok["failed"].any()
  np.testing.assert_allclose(ok["x"], 1.0, atol=1e-6)


def _concave_then_convex(x, w, data):
  """1e-6 (x^4/4 - x^2/2): concave for |x| < 0.577, minimum at x = 1."""
  del w, data
  return 1e-6 * (0.25 * x[0]**4 - 0.5 * x[0]**2)


def test_unit_restart_leaves_a_concave_region_with_tiny_gradients():
  """Where the curvature is negative every memory update is skipped: steps
  of length |g| = 1e-7 crawl, unit-length restarts do not."""
  x0, w, d = np.array([[0.1]]), np.ones((1, 1)), (np.zeros(1),)
  crawl = lbfgs.run(_concave_then_convex, x0, w, d,
                    lbfgs.StopRule(max_iter=50))
  unit = lbfgs.run(_concave_then_convex, x0, w, d,
                   lbfgs.StopRule(max_iter=50, unit_restart=True))
  assert abs(crawl["x"][0, 0] - 0.1) < 1e-3 and not crawl["converged"][0]
  assert unit["x"][0, 0] == pytest.approx(1.0, abs=1e-4)
  assert unit["converged"][0]
  # evaluate() is the objective at the lanes, in run()'s compiled blocks.
  np.testing.assert_allclose(
      lbfgs.evaluate(_concave_then_convex, np.array([[0.1], [1.0]]),
                     np.ones((2, 1)), d),
      [1e-6 * (0.25e-4 - 0.005), -0.25e-6], rtol=1e-12)
