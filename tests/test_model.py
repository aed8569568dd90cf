"""Model properties: causality, shapes, RoPE relative-position invariance, config errors."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lm.config import ConfigError, ModelConfig
from lm.model import Transformer, cross_entropy, rope


def _cfg(**kw):
  base = dict(vocab_size=61, d_model=32, n_layers=2, n_heads=4, d_ff=64,
              max_seq_len=16)
  base.update(kw)
  return ModelConfig(**base).validate()


@pytest.mark.parametrize("kw", [dict(), dict(mlp="gelu", tie_embeddings=False),
                                dict(qk_norm=True)])
def test_causal_and_shapes(kw):
  cfg = _cfg(**kw)
  model = Transformer(cfg)
  tokens = jax.random.randint(jax.random.key(1), (2, 16), 0, cfg.vocab_size)
  params = model.init(jax.random.key(0), tokens)["params"]
  logits = model.apply({"params": params}, tokens)
  assert logits.shape == (2, 16, cfg.vocab_size)
  assert logits.dtype == jnp.float32
  t = 9
  changed = tokens.at[:, t].set((tokens[:, t] + 1) % cfg.vocab_size)
  logits2 = model.apply({"params": params}, changed)
  # Positions before t cannot see token t; position t and later must change.
  np.testing.assert_array_equal(np.asarray(logits[:, :t]),
                                np.asarray(logits2[:, :t]))
  assert np.abs(np.asarray(logits[:, t:] - logits2[:, t:])).max() > 1e-4


def test_rope_is_relative():
  """q.k after RoPE depends only on the position difference."""
  k1, k2 = jax.random.split(jax.random.key(0))
  q = jax.random.normal(k1, (1, 1, 1, 8))
  k = jax.random.normal(k2, (1, 1, 1, 8))
  def dot(pq, pk):
    rq = rope(q, jnp.array([[pq]]), 10_000.0)
    rk = rope(k, jnp.array([[pk]]), 10_000.0)
    return float(jnp.sum(rq * rk))
  assert dot(3, 1) == pytest.approx(dot(12, 10), rel=1e-5)
  assert dot(3, 1) != pytest.approx(dot(3, 2), rel=1e-3)


def test_bf16_compute_keeps_f32_params():
  cfg = _cfg(dtype="bfloat16")
  model = Transformer(cfg)
  tokens = jnp.zeros((1, 8), jnp.int32)
  params = model.init(jax.random.key(0), tokens)["params"]
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(params))
  assert np.isfinite(np.asarray(model.apply({"params": params}, tokens))).all()


def test_cross_entropy_matches_uniform():
  V = 7
  logits = jnp.zeros((2, 3, V))
  targets = jnp.zeros((2, 3), jnp.int32)
  total, nll = cross_entropy(logits, targets, z_loss=1e-4)
  assert float(nll) == pytest.approx(np.log(V), rel=1e-6)
  assert float(total) == pytest.approx(np.log(V) + 1e-4 * np.log(V) ** 2,
                                       rel=1e-6)


@pytest.mark.parametrize("kw,msg", [
    (dict(n_heads=5), "must divide"),
    (dict(d_model=0), "positive"),
    (dict(mlp="relu"), "mlp"),
    (dict(n_heads=32), "even"),
])
def test_bad_model_config(kw, msg):
  with pytest.raises(ConfigError, match=msg):
    _cfg(**kw)
