"""Besiroglu et al. 2024's refit of Chinchilla's 240 points (Epoch AI), the
golden numbers every Approach-3 estimator must reproduce on them."""
import pytest


def assert_epoch_published(f):
  """alpha .3473, beta .3672, E 1.8172, objective 1.0183e-3, A, B, a."""
  assert f.alpha == pytest.approx(0.3473, abs=0.002)
  assert f.beta == pytest.approx(0.3672, abs=0.002)
  assert f.E == pytest.approx(1.8172, abs=0.003)
  assert f.objective == pytest.approx(1.0183e-3, rel=0.01)
  assert f.A == pytest.approx(477.84, rel=0.05)
  assert f.B == pytest.approx(2143.86, rel=0.1)
  assert f.a == pytest.approx(0.5139, abs=0.002)
