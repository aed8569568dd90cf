"""scaling.numerics.intervals: the one percentile-interval helper and formatter."""
import numpy as np
import pytest

from scaling.numerics import intervals


def test_central_interval_covers_its_level_of_a_known_distribution():
  x = np.random.default_rng(0).normal(size=200_000)
  lo, hi = intervals.percentile_interval(x, 0.95)
  assert lo == pytest.approx(-1.96, abs=0.02) and hi == pytest.approx(1.96, abs=0.02)
  assert intervals.central_percentiles(0.8) == pytest.approx((10.0, 90.0))
  assert intervals.percentile_intervals({"x": x}, q=(10, 90))["x"] == \
      pytest.approx((-1.2816, 1.2816), abs=0.02)


def test_bands_ignore_nan_replicates_along_the_replicate_axis():
  draws = np.array([[1.0, 2.0, 3.0, np.nan], [10.0, 20.0, 30.0, 40.0]])
  lo, hi = intervals.percentile_bands({"N": draws}, q=(0, 100))["N"]
  assert lo.tolist() == [1.0, 10.0] and hi.tolist() == [3.0, 40.0]


def test_format_interval():
  assert intervals.format_interval(0.51234, (0.48, 0.55)) == "0.5123 [0.48, 0.55]"
  assert intervals.format_interval(2143.2, (1080.0, 5850.0), ci_sig=3) == \
      "2143 [1.08e+03, 5.85e+03]"
  assert intervals.format_interval(1.5, (None, 2.0)) == "1.5"
  assert intervals.format_interval(None) == "-"
