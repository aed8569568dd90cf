"""The extrapolation check: fit on all budgets but the largest, predict it.

Sweeps are drawn from a known law L(N, D) = E + A/N^alpha + B/D^beta (Epoch's
refit of Chinchilla, Besiroglu et al. 2024) with small multiplicative noise,
sizes centred on each budget's true optimum; no model is trained.
"""
import json
import os
import types

import numpy as np
import pytest

from experiments.ledger import Ledger
from scaling.approach2 import extrapolation
from scaling.report import fit_schema
from scaling.report import families  # noqa: F401 (registers the built-in methods)
from scaling.report import registry as methods
from scaling.io.loaders import Runs
from tests.helpers.entry import run_entry

E, A, B, ALPHA, BETA = 1.82, 482.0, 2085.0, 0.348, 0.366
F_PER_N = 7.2          # C = 7.2 N D: a convention other than 6N.
OPTIONS = {"scheme": "runs", "on_edge": "drop"}


def _n_star(C):
  """The law's compute-optimal N under F(N) = 7.2 N (Hoffmann 2022 Eq. 4)."""
  G = (ALPHA * A / (BETA * B)) ** (1 / (ALPHA + BETA))
  return G * (C / F_PER_N) ** (BETA / (ALPHA + BETA))


def _sweep(n_budgets, *, noise=1e-3, seed=0, shift=0.0, tilt=0.0,
           last_sizes=(-0.6, 0.6)):
  """Rows (N, D, C, loss, budget): 7 sizes per budget, half a decade apart.

  The largest budget can be moved off the law: ``shift`` adds to its
  losses, ``tilt`` adds tilt * log10(N / N*) (moving its minimum), and
  ``last_sizes`` sets its size range in decades around N*.
  """
  rng = np.random.default_rng(seed)
  budgets = np.logspace(18, 18 + 0.5 * (n_budgets - 1), n_budgets)
  rows = []
  for C in budgets:
    last = C == budgets[-1]
    span = last_sizes if last else (-0.6, 0.6)
    for N in _n_star(C) * np.logspace(*span, 7):
      D = C / (F_PER_N * N)
      L = (E + A / N**ALPHA + B / D**BETA) * np.exp(rng.normal(0, noise))
      if last:
        L += shift + tilt * np.log10(N / _n_star(C))
      rows.append((N, D, C, L, C))
  return np.array(rows)


def _runs(rows):
  return Runs(N=rows[:, 0], D=rows[:, 1], C=rows[:, 2], loss=rows[:, 3],
              budget=rows[:, 4], run_id=np.arange(len(rows)).astype(str),
              provenance={})


def _check(rows, **kw):
  return extrapolation.check_extrapolation(
      _runs(rows), options=OPTIONS, bootstrap=200, seed=0, **kw)


@pytest.fixture(scope="module")
def on_law():
  return _check(_sweep(5))


def test_a_sweep_on_a_known_law_extrapolates_within_its_intervals(on_law):
  c = on_law
  assert c.status == "done" and c.n_budgets == 5 and c.held_out_C == 1e20
  assert c.fit_budgets == tuple(np.logspace(18, 19.5, 4))
  assert "fit on budgets ≤ 3.16e+19" in c.procedure
  N, D, L = c.N_opt, c.D_opt, c.L_opt
  assert N.inside and abs(N.rel_error) < 0.05
  assert N.interval_procedure.startswith("run resampling within budgets")
  # 4 held-in budgets: the saturating form, its interval from each budget's
  # own replicate spread of L*.
  assert L.law.startswith("L*(C) = E + A C^-gamma") and "Porian" in L.citation
  assert "spread over the Approach-2 replicates" in L.interval_procedure
  assert abs(L.rel_error) < 0.01
  lo, hi = L.interval
  assert lo < L.predicted < hi
  # The sweep's FLOP convention: F(N*) D* = C for predicted and measured.
  for N_, D_ in ((N.predicted, D.predicted), (N.measured, D.measured)):
    assert F_PER_N * N_ * D_ == pytest.approx(1e20, rel=1e-9)
  # The N* band is that of the held-in fit's N* = k_N C^a at C_max.
  assert D.interval[0] < D.predicted < D.interval[1]


def test_an_off_law_largest_budget_is_flagged(on_law):
  c = _check(_sweep(5, shift=0.15, tilt=-0.08))
  assert c.status == "done"
  # Same held-in fit, so the same prediction; the measurement moved.
  assert c.N_opt.predicted == pytest.approx(on_law.N_opt.predicted)
  assert c.N_opt.inside is False and c.N_opt.rel_error < -0.2
  assert c.L_opt.inside is False and c.L_opt.rel_error < -0.04
  text = "\n".join(extrapolation.summary_lines(c.to_dict()))
  assert text.count("OUTSIDE the interval") == 3      # N*, D*, L*


def test_four_budgets_use_the_power_law_for_L_star():
  c = _check(_sweep(4))
  assert c.status == "done" and len(c.fit_budgets) == 3
  assert "loss_vs_compute.saturation" in c.loss_laws_skipped
  assert "power law, no offset" in c.L_opt.law and "Kaplan" in c.L_opt.citation
  assert c.L_opt.interval_procedure.startswith("Student-t confidence band")
  assert c.N_opt.inside
  # A pure power law cannot bend towards E: it under-predicts L*.
  assert -0.05 < c.L_opt.rel_error < 0
  # bootstrap=0: the same point predictions, no intervals, said so.
  c0 = extrapolation.check_extrapolation(_runs(_sweep(4)), options=OPTIONS,
                                         bootstrap=0)
  assert c0.N_opt.predicted == pytest.approx(c.N_opt.predicted)
  assert c0.L_opt.predicted == pytest.approx(c.L_opt.predicted)
  for p in (c0.N_opt, c0.D_opt, c0.L_opt):
    assert p.interval is None and p.inside is None
  assert "no interval" in "\n".join(extrapolation.summary_lines(c0.to_dict()))


@pytest.mark.parametrize("rows, reason", [
    (_sweep(3), "needs >= 4 budgets"),
    (_sweep(4, last_sizes=(-1.8, -0.6)), "has no usable minimum"),
])
def test_the_check_is_skipped_with_a_one_line_reason(rows, reason):
  c = _check(rows)
  assert c.status == "skipped" and reason in c.reason
  assert c.N_opt is None
  lines = extrapolation.summary_lines(c.to_dict())
  assert lines == [f"extrapolation check skipped: {c.reason}"]
  assert "\n" not in c.reason


def test_the_power_law_band_has_nominal_coverage():
  # L* = A C^-gamma exactly, lognormal noise: the 95 % Student-t band at a
  # held-out budget covers the true L* in ~95 % of 400 simulated sweeps.
  rng = np.random.default_rng(1)
  C = np.logspace(18, 19, 3)
  C_out, truth = 1e20, 80.0 * 1e20**-0.07
  method = methods.get("loss_vs_compute.power_law")
  hits = []
  for _ in range(400):
    L = 80.0 * C**-0.07 * np.exp(rng.normal(0, 0.01, C.size))
    a2 = types.SimpleNamespace(fit=types.SimpleNamespace(
        minima=[{"C": c, "L_opt": l} for c, l in zip(C, L)], ci_level=0.95))
    inputs = methods.FitInputs(None, None, (C_out,), 1, 0, None,
                               previous={"approach2": a2})
    lo, hi = method.fit(inputs, {}).interval(np.array([C_out]))["loss"]
    hits.append(lo[0] <= truth <= hi[0])
  assert 0.9 <= np.mean(hits) <= 0.99


def test_the_bootstrap_records_each_budgets_L_star_spread():
  from scaling.approach2 import isoflop
  rows = _sweep(3, noise=0.0)
  fit = isoflop.fit_isoflop(_runs(rows), bootstrap=200, scheme="seed_noise",
                            seed_noise_std=0.01)
  sd = np.array([m["L_opt_sd"] for m in fit.minima])
  # A minimum fitted through several runs is less noisy than one run.
  assert np.all((sd > 0.001) & (sd < 0.01))


def _write_ledger(workdir, n_budgets):
  led = Ledger(os.path.join(workdir, "results.jsonl"))
  for i, (N, D, C, L, _) in enumerate(_sweep(n_budgets)):
    led.append({"run_id": f"r{i}", "budget": C, "N": int(N), "D": int(D),
                "C": C, "eval_loss": float(L), "train_loss": float(L),
                "status": "ok", "wall_time_s": 1.0,
                "flop_convention": "as_given", "param_convention": "total"})


def test_the_analyze_cli_reports_the_check(tmp_path, capfd):
  _write_ledger(str(tmp_path), 4)
  rc, out, err = run_entry(capfd, "experiments.analyze", str(tmp_path),
                           "--bootstrap=50", "--approach=2")
  assert rc == 0, err
  assert "extrapolation check: fit on budgets ≤ 1e+19" in out
  for q in ("N*(C=3.16e+19): predicted", "L*(C=3.16e+19): predicted"):
    assert q in out
  report_md = (tmp_path / "report" / "report.md").read_text()
  assert "extrapolation check: fit on budgets" in report_md
  assert "extrapolation.png" in report_md
  text = (tmp_path / "report" / "fit.json").read_text()
  assert "NaN" not in text
  rec = fit_schema.extrapolation(fit_schema.read(str(tmp_path / "report" /
                                                     "fit.json")))
  assert rec["status"] == "done" and rec["held_out_C"] == pytest.approx(10**19.5)
  assert set(fit_schema.EXTRAPOLATION_KEYS) <= set(rec)
  assert isinstance(rec["N_opt"]["inside"], bool)
  assert json.loads(text)["extrapolation"]["L_opt"]["rel_error"] == \
      pytest.approx(rec["L_opt"]["rel_error"])


def test_scaling_fit_runs_the_check_on_request(tmp_path, capfd):
  _write_ledger(str(tmp_path), 4)
  ledger = tmp_path / "results.jsonl"
  before = ledger.read_bytes()
  out_dir = tmp_path / "fit"
  rc, out, err = run_entry(capfd, "scaling.fit", f"--input={ledger}",
                           "--approach=2", "--bootstrap=50", "--plots=false",
                           f"--out={out_dir}", "--extrapolation")
  assert rc == 0, err
  assert ("extrapolation check: fit on budgets ≤ 1e+19 (3 of the 3 below "
          "the largest), predict the held-out largest C = 3.16e+19") in out
  rec = fit_schema.extrapolation(fit_schema.read(str(out_dir / "fit.json")))
  assert rec["status"] == "done" and "power law" in rec["L_opt"]["law"]
  assert ledger.read_bytes() == before       # reading never modifies input
