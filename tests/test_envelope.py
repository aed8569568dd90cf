"""Tests for scaling.io.curves and scaling.approach1.envelope (Chinchilla Approach 1)."""
import json
import os

import numpy as np
import pytest

from scaling.io import curves as curves_lib
from scaling.approach1 import envelope
from scaling.io.loaders import ScalingDataError

# Hoffmann et al. 2022 Eq. 10 (rounded): L = E + A/N^alpha + B/D^beta.
E, A, B, ALPHA, BETA = 1.69, 406.4, 410.7, 0.34, 0.28
A_TRUE = BETA / (ALPHA + BETA)  # Hoffmann 2022 Eq. 4: a = beta/(alpha+beta)


def _law(N, D):
  return E + A / N**ALPHA + B / D**BETA  # Hoffmann 2022 Eq. 2


def _synthetic(n_sizes=31, horizons=(1000.0,), start=1e-4, noise=0.0, seed=0):
  """Schedule-free curves: the loss after D tokens is L(N, D) itself.

  Sizes are log-spaced over 1e7..1e10; each size gets one run per horizon
  (final tokens = horizon * N), recorded at 200 log-spaced token counts from
  start * horizon * N.
  """
  rng = np.random.default_rng(seed)
  ids, Ns, Cs, Ls = [], [], [], []
  for N in np.logspace(7, 10, n_sizes):
    for h in horizons:
      D = np.logspace(np.log10(start * h * N), np.log10(h * N), 200)
      ids.append(f"N={N:.3g}:h={h}")
      Ns.append(N)
      Cs.append(6 * N * D)  # Hoffmann 2022 Sec. 3: C = 6ND
      Ls.append(_law(N, D) + noise * rng.standard_normal(D.size))
  return curves_lib.curves_from_arrays(ids, Ns, Cs, Ls)


# Tolerance: the envelope's N is quantised to the size grid (spacing 0.1
# decade), so each log10 N_env is within 0.05 decade of the true N*(C). For
# an error bounded by e over a fitted span S of log10 C, the OLS slope error
# is at most 3e/S (uniform design: sum|x - x̄| / sum (x - x̄)^2 = 3/S); with
# S ≈ 6 decades of usable C this gives 0.025. Observed errors are ~0.003.
@pytest.mark.parametrize("noise", [0.0, 0.01])
def test_recovers_compute_optimal_exponent_on_synthetic_curves(noise):
  curves = _synthetic(noise=noise)
  # One horizon of 1000 tokens/param: the optimum (~20 tokens/param) sits
  # early in every run, so the first-points rule is switched off here.
  fit = envelope.fit_envelope(curves, min_token_fraction=0.0, bootstrap=50)
  span = np.log10(fit.to_dict()["C_range_used"])
  assert span[1] - span[0] > 5.5
  assert fit.a == pytest.approx(A_TRUE, abs=0.025)
  # D_env = C / (6 N_env) exactly, so a + b = 1.
  assert fit.a + fit.b == pytest.approx(1.0, abs=1e-9)
  lo, hi = fit.ci["a"]
  assert lo <= fit.a <= hi


def test_default_rules_with_several_horizons():
  # Hoffmann-style: each size trained to several horizons (5..160 tokens per
  # parameter), so the first-points rule (10% of the final tokens) leaves an
  # honest envelope.
  curves = _synthetic(n_sizes=31, horizons=(5.0, 10.0, 20.0, 40.0, 80.0, 160.0),
                      start=1e-3)
  fit = envelope.fit_envelope(curves)
  assert fit.a == pytest.approx(A_TRUE, abs=0.025)
  # At the centroid of the fitted log C the OLS line is the mean of the
  # envelope points, each within 0.05 decade of the true N*(C) (size grid);
  # 0.1 decade allows for the finite horizons.
  C_mid = np.exp(np.mean(np.log(fit.C_grid[fit.valid])))
  G = (ALPHA * A / (BETA * B))**(1 / (ALPHA + BETA))  # Hoffmann 2022 Eq. 4
  N_true = G * (C_mid / 6)**A_TRUE                     # Hoffmann 2022 Eq. 4
  pred = fit.predict(C_mid)
  assert abs(np.log10(pred["N_opt"] / N_true)) < 0.1
  # D_env = C / (6 N_env) on every point, so the fitted laws obey C = 6ND.
  assert 6 * pred["N_opt"] * pred["D_opt"] == pytest.approx(C_mid, rel=1e-9)


def test_keeping_edge_sizes_biases_the_exponent():
  # Without the edge rule the smallest/largest models win outside the sampled
  # size range and drag a away from the truth: the rule is load-bearing.
  curves = _synthetic()
  biased = envelope.fit_envelope(curves, min_token_fraction=0.0,
                                 drop_edge_sizes=False)
  assert abs(biased.a - A_TRUE) > 0.03


def test_li2025_checkpoints_give_finite_sane_exponent():
  curves = curves_lib.load_curves("misfitting_curves")
  assert len(curves) > 100
  assert curves.provenance["n_rows_read"] == 4852
  fit = envelope.fit_envelope(curves, bootstrap=30)
  assert np.isfinite(fit.a) and 0.3 < fit.a < 0.8
  assert np.isfinite(fit.b) and 0.2 < fit.b < 0.7
  assert fit.to_dict()["n_grid_used"] > 100


def _write_run(root, run_id, N, records, extra=None):
  d = os.path.join(root, "runs", run_id)
  os.makedirs(d)
  with open(os.path.join(d, "run.json"), "w") as f:
    json.dump({"params": {"total": N, "non_embedding": N // 2},
               "flop_convention": "6ND", "other": [1, 2], **(extra or {})}, f)
  with open(os.path.join(d, "metrics.jsonl"), "w") as f:
    for r in records:
      f.write(json.dumps(r) + "\n")


def test_workdir_loader_is_tolerant_of_extra_keys(tmp_path):
  for i, N in enumerate([1e6, 2e6, 4e6]):
    recs = []
    for step in range(1, 21):
      tokens = step * 1000 * (i + 1)
      rec = {"step": step, "tokens": tokens, "flops": 6 * N * tokens,
             "loss": float(_law(N, tokens)), "lr": 1e-3, "grad_norm": 0.5}
      if step % 5 == 0:
        rec["eval_loss"] = rec["loss"] + 0.01
      recs.append(rec)
    _write_run(str(tmp_path), f"r{i}", int(N), recs)
  curves = curves_lib.load_curves(str(tmp_path))
  assert len(curves) == 3 and curves.provenance["flop_convention"] == "6ND"
  assert curves[0].C.size == 20
  ev = curves_lib.load_workdir_curves(str(tmp_path), loss_key="eval_loss")
  assert ev[1].C.size == 4
  ne = curves_lib.load_workdir_curves(str(tmp_path), params_key="non_embedding")
  assert ne[0].N == 5e5
  assert curves_lib.is_curve_source(str(tmp_path))


def test_workdir_errors_are_one_line(tmp_path):
  with pytest.raises(ScalingDataError, match="no runs/\\*/metrics.jsonl"):
    curves_lib.load_curves(str(tmp_path))
  _write_run(str(tmp_path), "bad", 100, [{"step": 1, "flops": 1.0, "loss": 1.0}])
  os.remove(os.path.join(str(tmp_path), "runs", "bad", "run.json"))
  with pytest.raises(ScalingDataError, match="run.json"):
    curves_lib.load_curves(str(tmp_path))
  with pytest.raises(ScalingDataError, match="no training curves"):
    curves_lib.load_curves("chinchilla_epoch")


def test_too_few_sizes_is_an_error():
  c = _synthetic(n_sizes=3)
  with pytest.raises(ScalingDataError, match="distinct model sizes"):
    envelope.fit_envelope(c)


def test_failed_bootstrap_replicates_are_counted_and_warned():
  # 6 sizes with edge sizes dropped: a resample that draws few distinct
  # curves has < 2 grid points with an interior winner, so no fit (e.g. all
  # 6 draws of one curve, or only 2 sizes: no interior size at all).
  curves = _synthetic(n_sizes=6)
  with pytest.warns(UserWarning, match="replicates had no usable envelope"):
    fit = envelope.fit_envelope(curves, min_token_fraction=0.0, bootstrap=200)
  assert fit.n_failed_replicates > 0
  assert fit.samples["a"].size == 200 - fit.n_failed_replicates
  d = fit.to_dict()
  assert d["n_failed_replicates"] == fit.n_failed_replicates
  assert d["n_bootstrap_requested"] == 200


def _eval_workdir(root, horizons=(1.0,), eval_every=4):
  """Runs whose metrics.jsonl has train loss every step and eval_loss at
  every ``eval_every``-th step (as lm.trainer writes them)."""
  for i, N in enumerate(np.logspace(6, 8, 9)):
    for h in horizons:
      recs = []
      final = 60 * N * h
      for step in range(1, 41):
        tokens = final * step / 40
        rec = {"step": step, "tokens": tokens, "flops": 6 * N * tokens,
               "loss": float(_law(N, tokens)) + 0.05}
        if step % eval_every == 0:
          rec["eval_loss"] = float(_law(N, tokens))
        recs.append(rec)
      _write_run(str(root), f"r{i}_h{h}", int(N), recs)


def test_approach1_uses_eval_records_at_their_steps_and_names_its_horizons(tmp_path):
  from scaling.report import analysis as report
  from scaling.approach1 import method as approach1
  _eval_workdir(tmp_path)
  ev = curves_lib.load_workdir_curves(str(tmp_path), loss_key="eval_loss")
  assert len(ev) == 9 and all(c.C.size == 10 for c in ev)  # steps 4, ..., 40
  c0 = ev[0]
  assert c0.loss == pytest.approx(_law(c0.N, c0.D))   # eval at its own step
  assert approach1.horizons(ev) == "single-horizon"
  res = report.run_fit(None, approaches=(1,), curves=ev, bootstrap=20,
                       options={1: {"smooth_window": 1, "drop_edge_sizes": False,
                                    "min_token_fraction": 0.0}})
  d1 = res["approach1"]
  assert d1["a"] == pytest.approx(A_TRUE, abs=0.05)
  assert approach1.SINGLE_HORIZON in d1["label"] and "eval_loss" in d1["label"]
  assert d1["interval_procedure"].startswith("distinct-run subsample")
  two = tmp_path / "two"
  _eval_workdir(two, horizons=(0.5, 1.0))
  assert approach1.horizons(curves_lib.load_workdir_curves(
      str(two), loss_key="eval_loss")) == "multi-horizon"


def test_analyze_skips_approach1_when_runs_evaluate_only_at_the_end(tmp_path):
  from experiments.analyze import _curves
  from experiments.analysis_settings import AnalysisSettings
  _eval_workdir(tmp_path, eval_every=40)            # one eval record per run
  with pytest.warns(UserWarning, match="Approach 1 skipped: too few "
                    "eval_loss records.*train.eval_every"):
    curves, why = _curves(str(tmp_path), AnalysisSettings())
  assert curves is None and why.startswith("Approach 1 skipped: ")
  assert _curves(str(tmp_path), AnalysisSettings(curve_loss="loss"))[0] is not None


def test_wsd_branch_curves_recover_a_known_law():
  """End-of-schedule points (what WSD cooldown branches give) of
  L = E + A/N^α + B/D^β: Approach 1's envelope finds a = β/(α+β)."""
  from scaling.io import curves as curves_lib
  from scaling.report.registry import FitInputs
  from scaling.report.registry import METHODS
  E, A, B, alpha, beta = 1.7, 400.0, 400.0, 0.34, 0.28
  recs = []
  for i, N in enumerate(np.geomspace(1e6, 1e9, 13)):
    for C in np.geomspace(1e17, 1e22, 21):
      D = C / (6 * N)
      if not 2 <= D / N <= 2000:
        continue
      recs.append({"run_id": f"r{i}_{C:.3g}", "status": "ok", "N": N, "D": D,
                   "C": C, "eval_loss": E + A / N**alpha + B / D**beta,
                   "trunk_id": f"t{i}", "flop_convention": "6N"})
  recs.append(dict(recs[0], run_id="rep", repeat_of=recs[0]["run_id"],
                   eval_loss=0.0))     # a seed repeat: never in the envelope
  curves = curves_lib.branch_curves(recs, "synthetic")
  res = METHODS["approach1.envelope"].fit(
      FitInputs(runs=None, curves=curves, budgets=(), bootstrap=0, seed=0,
                flops_per_token=None), {})
  assert res.horizons == "multi-horizon"
  assert res.fit.a == pytest.approx(beta / (alpha + beta), abs=0.03)


def test_bootstrap_drops_replicates_won_by_one_run():
  """A replicate whose envelope is won by a single run has slope 0 by
  construction (N constant): it is discarded, as the point fit refuses it."""
  E, A, B, alpha, beta = 1.7, 400.0, 400.0, 0.34, 0.28
  Ns = np.geomspace(1e6, 1e9, 5)
  C = [np.geomspace(1e17, 1e22, 30)] * len(Ns)
  loss = [E + A / N**alpha + B / (c / (6 * N))**beta for N, c in zip(Ns, C)]
  curves = curves_lib.curves_from_arrays([f"r{i}" for i in range(5)], Ns, C,
                                         loss)
  with pytest.warns(UserWarning, match="fewer than 2 distinct runs"):
    fit = envelope.fit_envelope(curves, bootstrap=300, smooth_window=1,
                                min_token_fraction=0.0, drop_edge_sizes=False)
  assert fit.samples["a"].size < 300
  assert np.all(np.abs(fit.samples["a"]) > 1e-6)
  w = np.array([[0, 0, 1, 1], [2, 2, 2, 2], [0, 1, 2, 3]])
  v = np.array([[1, 1, 1, 0], [1, 1, 1, 1], [0, 0, 0, 0]], bool)
  np.testing.assert_array_equal(envelope._distinct_winners(w, v), [2, 1, 0])
