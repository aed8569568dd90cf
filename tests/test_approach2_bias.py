"""The reduced simulation study of benchmarks/approach2_bias.py (issue 9.3).

The default Approach-2 estimator must recover the exponent of known laws
within 0.01 and its 95 % seed-noise interval must cover at a nominal rate on
the off-centre (grid drifting to 3x the optimum) and wide (2.4 decades)
designs at sigma = 0.005: 200 replicates per cell (coverage standard error
~0.015, so [0.90, 0.99] is about +-3 SE around 0.95).
"""
import pytest

from benchmarks import approach2_bias
from scaling.approach2 import estimators as isoflop_estimators


@pytest.mark.slow
@pytest.mark.parametrize("law,design,sweep", [
    ("asymmetric", "off_x3", (8, 6)), ("epoch", "wide", (8, 6)),
    # The sparse drifting grid (5 sizes 0.6 decade apart) that a window of
    # the 4 nearest sizes covered at 0.85-0.895 only (docs/estimators.md).
    ("epoch", "wide_off_x3", (5, 4))])
def test_default_estimator_is_unbiased_with_nominal_coverage(law, design, sweep):
  q = approach2_bias.QUICK
  n_sizes, n_budgets = sweep
  cell = approach2_bias.run_cell(
      law, design, n_sizes, n_budgets, 0.005,
      isoflop_estimators.DEFAULT_ESTIMATOR, replicates=q["replicates"],
      bootstrap=q["bootstrap"], seed=11)
  assert cell.n_failed == 0 and cell.n_ok == q["replicates"]
  assert abs(cell.bias) <= 0.01, cell
  assert 0.90 <= cell.coverage <= 0.99, cell


def test_the_global_parabola_is_biased_on_a_drifting_wide_grid():
  # Why the default is not the plain parabola: noise-free, a grid drifting
  # to 3x the optimum over 2.4 decades moves its exponent; the default's
  # stays put (one replicate, sigma = 0: a deterministic check).
  kw = dict(replicates=1, bootstrap=0)
  glob = approach2_bias.run_cell("asymmetric", "wide_off_x3", 8, 6, 0.0,
                                 "parabola", **kw)
  default = approach2_bias.run_cell("asymmetric", "wide_off_x3", 8, 6, 0.0,
                                    isoflop_estimators.DEFAULT_ESTIMATOR, **kw)
  assert abs(glob.bias) > 0.003
  assert abs(default.bias) < 0.3 * abs(glob.bias)
