"""Per-budget Approach-2 estimators (scaling.approach2.estimators) and F(N)."""
import numpy as np
import pytest

from benchmarks import approach2_bias
from scaling.approach2 import estimators as est_lib
from scaling.approach3 import optimum
from scaling.numerics import token_flops

LAW = approach2_bias.LAWS["epoch"]


def _profile(shift=0.0, span=2.4, n=12, C=1e20):
  """One isoFLOP profile of Epoch's law, D = C/(6N); true log10 N* known."""
  x_star = np.log10(approach2_bias.law_N_opt(LAW, C))
  x = x_star + shift + np.linspace(-span / 2, span / 2, n)
  N = 10**x
  return x, approach2_bias.law_loss(LAW, N, C / (6 * N)), x_star


@pytest.mark.parametrize("name", list(est_lib.ESTIMATORS))
def test_every_estimator_finds_an_interior_minimum(name):
  x, y, x_star = _profile(span=1.2, n=9)
  out = est_lib.get(name)(x, y, 1.0)
  assert out["ok"][0] and out["inside"][0]
  assert out["x_opt"][0] == pytest.approx(x_star, abs=0.02)


@pytest.mark.parametrize("name", list(est_lib.ESTIMATORS))
def test_edge_rule_flags_a_minimum_at_the_edge(name):
  x, y, _ = _profile(shift=1.0, span=1.2, n=7)   # minimum below the sizes
  out = est_lib.get(name)(x, y, 1.0)
  assert not out["inside"][0]


def test_local_parabola_is_less_biased_than_the_global_one_on_an_offset_wide_grid():
  # Loss is not parabolic in log N over 2.4 decades; with the grid off the
  # optimum by 0.5 decade the global vertex moves, the local one much less.
  x, y, x_star = _profile(shift=0.5, span=2.4, n=12)
  glob = est_lib.get("parabola")(x, y, 1.0)["x_opt"][0]
  loc = est_lib.get("local_parabola")(x, y, 1.0)["x_opt"][0]
  assert abs(loc - x_star) < 0.3 * abs(glob - x_star)
  assert abs(glob - x_star) > 0.005


def test_local_parabola_leaves_out_the_farthest_size_of_a_small_grid():
  x, y, _ = _profile(span=1.5, n=5)
  out = est_lib.get("local_parabola")(x, y, 1.0)
  assert out["window"].sum() == 4
  assert est_lib.get("local_parabola")(x, y, 1.0, k=7)["window"].sum() == 4
  with pytest.raises(ValueError, match="k >= 3"):
    est_lib.get("local_parabola")(x, y, 1.0, k=2)
  with pytest.raises(ValueError, match="no option"):
    est_lib.get("akima")(x, y, 1.0, k=5)


def test_local_parabola_window_keeps_a_sparse_grid_near_its_minimum():
  # 5 sizes 0.6 decade apart, the grid's centre 0.48 decade above N*: the 4
  # nearest sizes reach 1.2 decades beyond the minimum, where the profile is
  # far from quadratic. The window keeps the sizes within 0.75 decade (here
  # the 3 nearest), and its vertex is the closer one.
  x, y, x_star = _profile(shift=0.48, span=2.4, n=5)
  est = est_lib.get("local_parabola")
  windowed, wide = est(x, y, 1.0), est(x, y, 1.0, window_decades=np.inf)
  assert windowed["window"].sum() == 3 and wide["window"].sum() == 4
  best = x[np.argmin(y)]
  assert np.all(np.abs(x[windowed["window"][0]] - best) <= 0.75)
  assert (abs(windowed["x_opt"][0] - x_star)
          < 0.5 * abs(wide["x_opt"][0] - x_star))
  # Fewer than 3 sizes within the window: the 3 nearest still count.
  assert est(x, y, 1.0, window_decades=0.1)["window"].sum() == 3
  with pytest.raises(ValueError, match="window_decades > 0"):
    est(x, y, 1.0, window_decades=0.0)


def test_huber_parabola_bounds_the_influence_of_an_outlier():
  # A large outlier (e.g. a run that nearly diverged): beyond delta = 1 nat
  # the Huber fit no longer follows it, least squares does.
  x, y, _ = _profile(span=1.2, n=9)
  vertex = {}
  for name in ("parabola", "huber_parabola"):
    for bump in (3.0, 10.0):
      yy = y.copy()
      yy[1] += bump
      vertex[name, bump] = est_lib.get(name)(x, yy, 1.0)["x_opt"][0]
  assert abs(vertex["huber_parabola", 10.0] - vertex["huber_parabola", 3.0]) < 1e-6
  assert abs(vertex["parabola", 10.0] - vertex["parabola", 3.0]) > 0.05


@pytest.mark.parametrize("name", list(est_lib.ESTIMATORS))
def test_resampling_weights_equal_duplicated_runs(name):
  x, y, _ = _profile(span=1.5, n=8)
  rng = np.random.default_rng(0)
  y = y + 0.01 * rng.standard_normal(y.size)
  w = np.array([2, 1, 0, 1, 3, 1, 1, 1], float)
  dup = np.repeat(np.arange(8), w.astype(int))
  a = est_lib.get(name)(x, y, w)["x_opt"][0]
  b = est_lib.get(name)(x[dup], y[dup], 1.0)["x_opt"][0]
  assert a == pytest.approx(b, abs=1e-9)


def test_isoflop_minima_lie_exactly_on_the_eq4_power_law():
  # The estimand: along D = C/(6N) the minimum is exactly G (C/6)^a.
  for law in approach2_bias.LAWS.values():
    chk = approach2_bias.estimand_check(law)
    assert chk["a_dense_minima"] == pytest.approx(chk["a_true"], abs=1e-4)
    assert chk["max_abs_ln_N_error"] < 1e-4


def test_token_flops_from_runs_and_the_constrained_optimum():
  N = np.array([1e6, 2e6, 4e6, 8e6])
  F = 6 * N + 3e5 * np.sqrt(N)              # some non-6N convention
  tf = token_flops.TokenFlops.from_runs(N, np.ones(4), F)
  assert not tf.is_six_n
  assert tf(N) == pytest.approx(F, rel=1e-12)            # exact at the runs
  assert tf(1.6e7) / 1.6e7 == pytest.approx(F[-1] / N[-1])  # F/N held beyond
  assert token_flops.TokenFlops.from_runs(N, np.ones(4), 6 * N).is_six_n
  E, A, B, alpha, beta = LAW
  opt = optimum.constrained(A, B, alpha, beta, 1e20, tf)
  assert tf(opt["N_opt"]) * opt["D_opt"] == pytest.approx(1e20, rel=1e-12)
  grid = opt["N_opt"] * np.exp(np.linspace(-0.5, 0.5, 20001))
  L = A / grid**alpha + B / (1e20 / tf(grid))**beta
  assert abs(np.log(grid[np.argmin(L)] / opt["N_opt"])) < 1e-4
  six = optimum.constrained(A, B, alpha, beta, 1e20, token_flops.TokenFlops.six_n())
  assert six["N_opt"] == pytest.approx(optimum.eq4(A, B, alpha, beta, 1e20)["N_opt"])
