"""Tests for scaling.isoflop (Chinchilla Approach 2)."""
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
  with pytest.warns(UserWarning, match="jumps by more than"):
    fit = isoflop.fit_isoflop(d, bootstrap=0, on_edge="keep")
  assert [r["C"] for r in fit.minima] == pytest.approx(
      sorted(set(runs.budget.tolist())), rel=1e-9)
  assert fit.a == pytest.approx(0.4951, abs=0.005)


def test_bootstrap_keeps_budget_set_and_counts_edge_and_failed_replicates():
  # Budgets of 4 runs: resamples often draw < 3 distinct sizes (no parabola),
  # and a vertex near the grid edge often falls outside it in a replicate.
  d = _synthetic(a=0.5, noise=0.01, n=4, half_width=0.6, centre_shift=0.25,
                 budgets=(1e18, 1e19, 1e20, 1e21, 1e22))
  with pytest.warns(UserWarning, match="replicates"):
    fit = isoflop.fit_isoflop(d, bootstrap=400, seed=0, on_edge="keep")
  # P(>= 3 distinct of 4 sizes in 4 draws with replacement) = (4! + 4 * 6 *
  # 3!) / 4^4 = 168/256 per budget; a replicate survives only if all 5
  # budgets have >= 3 distinct sizes (and are convex).
  p_ok = (1 - 88 / 256)**5
  assert fit.n_failed_replicates >= 400 * (1 - p_ok) - 4 * np.sqrt(400)
  assert fit.samples["a"].size == 400 - fit.n_failed_replicates
  fracs = [r["bootstrap_edge_fraction"] for r in fit.minima]
  assert all(0.0 <= f <= 1.0 for f in fracs) and max(fracs) > 0.05
  assert all(r["bootstrap_fail_fraction"] > 0.2 for r in fit.minima)


def test_grouping_by_gaps_recovers_marin_budgets():
  runs = data_lib.load_runs("marin_dclm")
  C_b, rule = isoflop.group_budgets(runs.C)
  assert len(set(C_b.tolist())) == len(set(runs.budget.tolist())) == 7
  # Each group is exactly one nominal budget.
  for cb in set(C_b.tolist()):
    assert len(set(runs.budget[C_b == cb].tolist())) == 1
  assert "7 groups" in rule


def test_grouping_does_not_chain_noisy_epoch_budgets():
  # Epoch's read-off C scatters by ~0.1 decade; gap clustering alone chains
  # Chinchilla's budgets (0.22-0.48 decade apart) into wide groups. No group
  # may span more than 0.2 decade, and the rule says C is too noisy.
  runs = data_lib.load_runs("chinchilla_epoch")
  C_b, rule = isoflop.group_budgets(runs.C)
  for cb in set(C_b.tolist()):
    assert np.ptp(np.log10(runs.C[C_b == cb])) <= 0.2 + 1e-12
  assert "too noisy" in rule


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


def test_missing_D_is_filled_only_where_missing():
  d = _synthetic()
  d["D"] = d["D"] * 1.5          # not C/(6N): must be kept where given
  d["D"][3] = np.nan
  with pytest.warns(UserWarning, match="1/36 run\\(s\\) have no D"):
    fit = isoflop.fit_isoflop(d, bootstrap=0, on_edge="keep")
  assert fit.filled_6nd == {"D": 1, "C": 0}
  full = isoflop.fit_isoflop(dict(d, D=_synthetic()["D"] * 1.5), bootstrap=0,
                             on_edge="keep")
  assert fit.k_D != pytest.approx(_synthetic()["D"].mean())
  # Only row 3 differs; all other budgets are unchanged.
  assert fit.minima[1]["D_opt"] == pytest.approx(full.minima[1]["D_opt"],
                                                 rel=1e-12)
