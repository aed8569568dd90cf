"""Huber loss and the Huber likelihood used to fit Approach 3.

Written with ``jax.numpy`` so the objectives can be differentiated with
``jax.grad``; the functions also accept NumPy arrays.
"""
from __future__ import annotations

import math

import jax.numpy as jnp
from jax.scipy.special import erf

HUBER_DELTA = 1e-3  # Hoffmann et al. 2022, Sec. 3.3: delta = 10^-3.


def huber(r, delta: float = HUBER_DELTA):
  """Huber_delta(r), identical to ``scipy.special.huber(delta, r)``."""
  abs_r = jnp.abs(r)
  # Huber 1964: r^2/2 inside [-delta, delta], delta(|r| - delta/2) outside.
  return jnp.where(abs_r <= delta, 0.5 * r * r, delta * (abs_r - 0.5 * delta))


def huber_log_normaliser(delta=HUBER_DELTA):
  """log Z of the unit-scale Huber density exp(-Huber_delta(x)) / Z.

  Z = sqrt(2 pi) (1 - 2 Phi(-delta)) + 2 exp(-delta^2/2) / delta
  (Besiroglu et al. 2024, arXiv:2404.10102, App. on the Huber likelihood;
  the Gaussian core integrates to the first term, the two exponential tails
  to the second).
  """
  # 1 - 2 Phi(-delta) = erf(delta / sqrt 2), accurate for small delta.
  z = (math.sqrt(2.0 * math.pi) * erf(delta / math.sqrt(2.0)) +
       2.0 * jnp.exp(-0.5 * delta * delta) / delta)
  return jnp.log(z)


def huber_logpdf(r, log_scale, delta: float = HUBER_DELTA):
  """log density of r under a Huber distribution with scale exp(log_scale).

  log p(r) = -Huber_delta(r / sigma) - log Z - log sigma
  (Besiroglu et al. 2024, Huber likelihood with a free scale sigma).
  """
  x = r * jnp.exp(-log_scale)
  return -huber(x, delta) - huber_log_normaliser(delta) - log_scale
