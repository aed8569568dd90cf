"""Exact parameter counts vs. the instantiated Flax model, and the shape rule."""
import csv
import math
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lm.config import ConfigError, ModelConfig
from lm.model import Transformer
from lm import params as P

DATA = os.path.join(os.path.dirname(__file__), "data")


def _cfg(**kw):
  base = dict(vocab_size=61, d_model=32, n_layers=2, n_heads=4, d_ff=88,
              max_seq_len=16)
  base.update(kw)
  return ModelConfig(**base).validate()


def _flax_leaves(cfg):
  """{path: size} of the model's parameters (shapes only, no compute)."""
  model = Transformer(cfg)
  tokens = jnp.zeros((1, 4), jnp.int32)
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), tokens))
  flat = jax.tree_util.tree_flatten_with_path(nn.unbox(shapes["params"]))[0]
  return {jax.tree_util.keystr(path): int(np.prod(leaf.shape))
          for path, leaf in flat}


CONFIGS = [
    dict(),
    dict(tie_embeddings=False),
    dict(mlp="gelu", d_ff=128),
    dict(mlp="gelu", d_ff=100, tie_embeddings=False, qk_norm=True),
    dict(qk_norm=True, n_layers=3, n_heads=2),
    dict(vocab_size=256, d_model=64, n_heads=1, n_layers=1, d_ff=192),
]


@pytest.mark.parametrize("kw", CONFIGS)
def test_count_matches_flax_model(kw):
  cfg = _cfg(**kw)
  leaves = _flax_leaves(cfg)
  counts = P.count_params(cfg)
  assert counts.total == sum(leaves.values())
  emb = sum(v for k, v in leaves.items() if "embedding" in k or "unembed" in k)
  assert counts.embedding == emb
  assert counts.non_embedding == counts.total - emb
  # The matmul convention: every w_* plus the D x V output matrix.
  out_matrix = leaves.get("['unembed']", leaves["['embedding']"])
  w = sum(v for k, v in leaves.items() if "['w_" in k)
  assert P.matmul_params(cfg) == w + out_matrix
  assert P.n_params(cfg, "total") == counts.total
  assert P.n_params(cfg, "non_embedding") == counts.non_embedding
  assert counts.to_dict() == {"total": counts.total, "embedding": emb,
                              "non_embedding": counts.total - emb}


def test_hand_count_one_config():
  # V=61, D=32, L=2, F=88, SwiGLU, tied: 61*32 + 2*(4*32*32 + 3*32*88 + 2*32) + 32.
  assert P.count_params(_cfg()).total == 1952 + 2 * (4096 + 8448 + 64) + 32


def test_unknown_param_convention():
  with pytest.raises(ConfigError, match="convention"):
    P.n_params(_cfg(), "kaplan")


@pytest.mark.parametrize("V,conv", [(256, "total"), (256, "non_embedding"),
                                    (32000, "total"), (50304, "non_embedding")])
def test_shape_rule_valid_and_close(V, conv):
  lo = 5e3 if V == 256 else 1e6
  prev = 0
  for N in np.geomspace(lo, 1e10, 40):
    cfg = P.shape_for_params(float(N), vocab_size=V, seq_len=64, convention=conv)
    cfg.validate()
    n = P.n_params(cfg, conv)
    assert n >= prev                        # monotone in the target
    prev = n
    K = cfg.head_dim
    assert cfg.d_model % cfg.n_heads == 0 and K % 2 == 0 and cfg.d_model % K == 0
    if cfg.d_model >= 512:                 # full-size heads from 8 x head_dim
      assert K == 64
    # Closest of the grid: nothing in the enumeration is nearer in log space.
    grid = P.enumerate_shapes(vocab_size=V, seq_len=64, max_params=float(N),
                              convention=conv)
    best = min(abs(math.log(P.n_params(c, conv) / N)) for c in grid)
    assert abs(math.log(n / N)) == pytest.approx(best)
    # Resolution of the grid: within 15% above 1e5 params (coarser for tiny
    # models, where one layer or 8 channels is a large relative step).
    if N >= 1e5:
      assert abs(math.log(n / N)) < math.log(1.15), (N, cfg)


def test_shape_rule_aspect_ratio_matches_chinchilla_range():
  """d_model/n_layers stays within Chinchilla's Table A9 range for N >= 40M."""
  with open(os.path.join(DATA, "hoffmann2022_tableA9_model_configs.csv")) as f:
    rows = list(csv.DictReader(f))
  ratios = [int(r["d_model"]) / int(r["n_layers"]) for r in rows]
  lo, hi = min(ratios), max(ratios)
  assert 39 < lo < 41 and 100 < hi < 110  # the published spread, ~40 to ~109
  for N in np.geomspace(4e7, 1.6e10, 25):
    cfg = P.shape_for_params(float(N), vocab_size=32000, seq_len=2048)
    assert lo <= cfg.d_model / cfg.n_layers <= hi, cfg


def test_marin_depth_formula():
  # Marin recipe.py: L = round(d / (64 + 4 log2 d - 9)); e.g. 512 -> 6, 1024 -> 11,
  # 4096 -> 40; floored at 1 for tiny widths.
  assert [P.marin_num_layers(d) for d in (16, 512, 1024, 4096)] == [1, 6, 11, 40]
  for d in (96, 512, 1000, 4096):
    assert P.marin_num_layers(d) in P.depth_choices(d)


def test_ffn_dims():
  for d in (8, 16, 48, 64, 256, 768, 4096):
    f = P.ffn_dim(d, "swiglu")
    assert f >= 8 * d / 3 and f - 8 * d / 3 < (64 if d >= 64 else 8)
    assert f % (64 if d >= 64 else 8) == 0
    assert P.ffn_dim(d, "gelu") == 4 * d
  with pytest.raises(ConfigError, match="mlp"):
    P.ffn_dim(64, "relu")


def test_shape_rule_passes_kwargs_and_untied():
  cfg = P.shape_for_params(1e6, vocab_size=256, seq_len=32, mlp="gelu",
                           tie_embeddings=False, qk_norm=True, head_dim=32)
  assert cfg.mlp == "gelu" and not cfg.tie_embeddings and cfg.qk_norm
  assert cfg.d_ff == 4 * cfg.d_model and cfg.max_seq_len == 32
  assert cfg.head_dim <= 32


def test_enumerate_shapes_sorted_and_brackets():
  shapes = P.enumerate_shapes(vocab_size=256, seq_len=32, max_params=1e6)
  ns = [P.n_params(c) for c in shapes]
  assert ns == sorted(ns) and ns[0] < 1e6 <= ns[-1]
  assert len({(c.d_model, c.n_layers) for c in shapes}) == len(shapes)


@pytest.mark.parametrize("N", [0, -5, float("nan"), float("inf"), 100.0])
def test_shape_rule_bad_targets(N):
  with pytest.raises(ConfigError) as e:
    P.shape_for_params(N, vocab_size=256, seq_len=32)
  assert "\n" not in str(e.value)


@pytest.mark.parametrize("kw,msg", [
    (dict(vocab_size=0), "vocab_size"), (dict(seq_len=-1), "seq_len"),
    (dict(head_dim=7), "head_dim"), (dict(convention="x"), "convention"),
    (dict(mlp="relu"), "mlp")])
def test_shape_rule_bad_args(kw, msg):
  args = dict(vocab_size=256, seq_len=32)
  args.update(kw)
  with pytest.raises(ConfigError, match=msg):
    P.shape_for_params(1e6, **args)
