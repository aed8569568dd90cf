"""Tests for Approach 3 (scaling.approach3.parametric) against published numbers."""
import json
import os

import numpy as np
import pytest

from scaling.io import loaders as data
from scaling.approach3 import parametric
from scaling.diagnostics import scipy_reference
from tests.helpers.epoch_published import assert_epoch_published

ANCHORS = json.load(open(os.path.join(data.DATASETS_DIR, "anchors.json")))
EPOCH = ANCHORS["besiroglu2024_epoch"]
HOFF = ANCHORS["hoffmann2022_chinchilla"]["approach3_params_unrounded_tex"]
HOFF_THETA = np.array([HOFF["log_A"], HOFF["log_B"], HOFF["log_E"],
                       HOFF["alpha"], HOFF["beta"]])


@pytest.fixture(scope="module")
def epoch_runs():
  return data.load_runs("chinchilla_epoch")


@pytest.fixture(scope="module")
def grid_fit(epoch_runs):
  r = epoch_runs
  return parametric.fit_parametric(r.N, r.D, r.loss)


def test_grid_has_hoffmann_4500_starts():
  g = parametric.HOFFMANN_GRID
  assert g.shape == (4500, 5)
  assert sorted(set(g[:, 0])) == [0, 5, 10, 15, 20, 25]
  assert sorted(set(g[:, 2])) == [-1, -0.5, 0, 0.5, 1]
  assert sorted(set(g[:, 3])) == [0, 0.5, 1, 1.5, 2]


def test_objective_at_published_params(epoch_runs):
  """Sum of Huber terms at Hoffmann's params, as computed by Epoch."""
  r = epoch_runs
  d = parametric.make_data(r.N, r.D, r.loss)
  obj = lambda th: float(parametric.huber_objective(
      np.asarray(th), np.ones(len(r)), d))
  want = EPOCH["objective_values_sum_huber"]
  assert obj(HOFF_THETA) == pytest.approx(want["at_hoffmann_unrounded"],
                                          rel=1e-4)
  rounded = np.log([406.4, 410.7, 1.69]).tolist() + [0.34, 0.28]
  assert obj(rounded) == pytest.approx(want["at_hoffmann_rounded"], rel=1e-4)


def test_epoch_grid_fit_reproduces_published(grid_fit):
  """Besiroglu et al. 2024: alpha .3473, beta .3672, E 1.8172, obj 1.0183e-3."""
  f = grid_fit
  assert_epoch_published(f)
  assert f.n_starts == 4500


def test_epoch_mle_reproduces_published(epoch_runs):
  r = epoch_runs
  f = parametric.fit_parametric(r.N, r.D, r.loss, method="mle")
  assert f.loglik == pytest.approx(879.77, abs=0.05)
  assert f.A == pytest.approx(482.0, rel=0.1)
  assert f.B == pytest.approx(2085.0, rel=0.1)
  assert f.alpha == pytest.approx(0.3478, abs=0.002)
  assert f.beta == pytest.approx(0.3658, abs=0.002)
  assert f.log_sigma == pytest.approx(-12.2666, abs=0.01)


def test_mean_objective_trap(epoch_runs):
  """Besiroglu et al. 2024: scipy L-BFGS-B on the MEAN of Huber terms from
  Hoffmann's unrounded params stops after <= 3 iterations at the start;
  on the SUM it keeps iterating to a lower objective."""
  r = epoch_runs
  mean = scipy_reference.fit_from(HOFF_THETA, r.N, r.D, r.loss, mean=True)
  A, B, E = np.exp(mean["x"][:3])
  assert A == pytest.approx(406.4, rel=0.01)
  assert B == pytest.approx(410.7, rel=0.01)
  assert E == pytest.approx(1.6934, abs=0.002)
  assert mean["x"][3] == pytest.approx(0.339, abs=0.001)
  assert mean["x"][4] == pytest.approx(0.285, abs=0.001)
  assert mean["nit"] <= 3 and "REDUCTION" in mean["message"]
  total = scipy_reference.fit_from(HOFF_THETA, r.N, r.D, r.loss, mean=False)
  assert total["nit"] > 3 * mean["nit"]
  assert total["f"] < mean["f"] * len(r)
  # Our solver's stopping rule is scale free: from the same start the mean
  # objective is minimised as far as the sum objective (same point).
  ours_mean = parametric.fit_parametric(r.N, r.D, r.loss, objective="mean",
                                        grid=HOFF_THETA[None])
  ours_sum = parametric.fit_parametric(r.N, r.D, r.loss, objective="sum",
                                       grid=HOFF_THETA[None])
  np.testing.assert_allclose(ours_mean.theta, ours_sum.theta, atol=1e-4)
  assert ours_mean.objective * len(r) == pytest.approx(ours_sum.objective,
                                                       rel=1e-6)
  assert ours_sum.objective <= total["f"] * (1 + 1e-6)


def test_compute_optimal_matches_published_allocations(grid_fit):
  c = 5.76e23  # Chinchilla's budget (Hoffmann et al. 2022).
  want = EPOCH["compute_optimal_at_5.76e23"]
  opt = grid_fit.compute_optimal(c)
  assert opt["N_opt"] == pytest.approx(want["epoch"]["N"], rel=0.03)
  assert opt["D_opt"] == pytest.approx(want["epoch"]["D"], rel=0.03)
  assert 6 * opt["N_opt"] * opt["D_opt"] == pytest.approx(c, rel=1e-9)
  th = HOFF_THETA
  hoff = parametric.derived(np.exp(th[2]), np.exp(th[0]), np.exp(th[1]),
                            th[3], th[4], budgets=[c])
  assert hoff["N_opt@5.76e+23"] == pytest.approx(
      want["hoffmann_unrounded"]["N"], rel=0.02)
  assert hoff["D_over_N@5.76e+23"] == pytest.approx(
      want["hoffmann_unrounded"]["D_over_N"], rel=0.02)


def test_compute_optimal_minimises_loss_on_isoflop(grid_fit):
  c = 1e21
  opt = grid_fit.compute_optimal(c)
  n = opt["N_opt"] * np.exp(np.linspace(-1, 1, 201))
  loss = parametric.predict_loss(grid_fit.params, n, c / (6 * n))
  assert np.argmin(loss) == 100
  assert loss[100] == pytest.approx(opt["loss"], rel=1e-12)


def _synthetic(seed, noise=0.003):
  rng = np.random.default_rng(seed)
  N, D = np.meshgrid(np.logspace(7.5, 10, 8), np.logspace(9, 11.5, 8))
  N, D = N.ravel(), D.ravel()
  true = dict(E=1.8, A=400.0, B=2000.0, alpha=0.34, beta=0.37)
  L = parametric.predict_loss(true, N, D) * np.exp(
      noise * rng.standard_normal(N.size))
  return N, D, L, true


def test_synthetic_recovery():
  N, D, L, true = _synthetic(0)
  f = parametric.fit_parametric(N, D, L)
  assert f.alpha == pytest.approx(true["alpha"], abs=0.02)
  assert f.beta == pytest.approx(true["beta"], abs=0.02)
  assert f.E == pytest.approx(true["E"], rel=0.02)
  assert f.a == pytest.approx(0.37 / 0.71, abs=0.02)


def test_noiseless_recovery_is_exact():
  N, D, L, true = _synthetic(0, noise=0.0)
  f = parametric.fit_parametric(N, D, L)
  assert f.alpha == pytest.approx(true["alpha"], abs=1e-5)
  assert f.beta == pytest.approx(true["beta"], abs=1e-5)
  assert f.A == pytest.approx(true["A"], rel=1e-3)
  assert f.objective < 1e-12


@pytest.mark.parametrize("kw,match", [
    (dict(method="ols"), "method"),
    (dict(objective="median"), "objective"),
    (dict(delta=0.0), "delta"),
    (dict(grid=np.zeros((3, 4))), "grid"),
])
def test_bad_arguments(epoch_runs, kw, match):
  r = epoch_runs
  with pytest.raises(parametric.ParametricFitError, match=match):
    parametric.fit_parametric(r.N, r.D, r.loss, **kw)


def test_bad_data():
  with pytest.raises(parametric.ParametricFitError, match="positive"):
    parametric.fit_parametric([1e8] * 6 + [-1.0], [1e9] * 7, [3.0] * 7)
  with pytest.raises(parametric.ParametricFitError, match="same length"):
    parametric.fit_parametric([1e8] * 7, [1e9] * 6, [3.0] * 7)
  with pytest.raises(parametric.ParametricFitError, match="at least 6"):
    parametric.fit_parametric([1e8], [1e9], [3.0])


def test_to_dict_round_trips_json(grid_fit):
  d = grid_fit.to_dict()
  assert json.loads(json.dumps(d))["alpha"] == grid_fit.alpha
  assert d["a"] == pytest.approx(grid_fit.beta / (grid_fit.alpha +
                                                  grid_fit.beta))


@pytest.mark.slow
def test_pruning_keeps_the_winner(epoch_runs, grid_fit):
  """Successive halving over starts vs every start run to its own stop."""
  r = epoch_runs
  full = parametric.fit_parametric(r.N, r.D, r.loss, prune=False)
  assert full.objective >= grid_fit.objective * (1 - 1e-6)
  assert full.alpha == pytest.approx(grid_fit.alpha, abs=1e-4)


def test_degenerate_designs_are_rejected():
  rng = np.random.default_rng(0)
  D = 10**rng.uniform(9, 11, 20)
  L = 2.0 + rng.uniform(0, 1, 20)
  # One model size: the N term is not identified.
  with pytest.raises(parametric.ParametricFitError,
                     match="3 distinct N values.*got 1"):
    parametric.fit_parametric(np.full(20, 1e8), D, L)
  with pytest.raises(parametric.ParametricFitError, match="distinct D"):
    parametric.fit_parametric(10**rng.uniform(7, 9, 20),
                              np.repeat([1e9, 1e10], 10), L)
  # One IsoFLOP budget: log D = log(C/6) - log N, collinear with log N.
  N = 10**np.linspace(7, 9, 20)
  with pytest.raises(parametric.ParametricFitError, match="collinear"):
    parametric.fit_parametric(N, 1e19 / (6 * N), L)
  # Two budgets break the collinearity: validation passes.
  N2 = np.r_[N, N]
  D2 = np.r_[1e19 / (6 * N), 1e20 / (6 * N)]
  assert len(parametric.make_data(N2, D2, np.r_[L, L])[0]) == 40
