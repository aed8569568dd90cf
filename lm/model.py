"""Decoder-only Transformer (Flax Linen) with logical axis names.

Pre-norm RMSNorm blocks, RoPE, causal multi-head attention through
``jax.nn.dot_product_attention`` (cuDNN flash kernel on GPUs, XLA elsewhere),
SwiGLU or GELU MLP, tied or untied embeddings, optional QK-norm. No biases.
Parameters are stored in ``param_dtype`` (f32) and cast to the compute
``dtype`` at use. Every parameter and key activation carries logical axis
names; ``lm.sharding`` maps them to mesh axes through the config's rules table.

Shape suffixes: B batch, T sequence, D d_model, H heads, K head_dim, F d_ff,
V vocab.
"""
from __future__ import annotations

import math
from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from lm import sharding
from lm.config import ModelConfig

_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16,
           "float16": jnp.float16}


def dtype_of(name: str):
  return _DTYPES[name]


def _param(module: nn.Module, name: str, init, shape, axes, cfg: ModelConfig):
  return module.param(name, nn.with_logical_partitioning(init, axes), shape,
                      dtype_of(cfg.param_dtype))


def _constrain(x, axes):
  return sharding.constrain(x, axes)


class RMSNorm(nn.Module):
  """RMSNorm (Zhang & Sennrich 2019, Eq. 4): x / rms(x) * g."""
  cfg: ModelConfig
  axis_name: str = "norm"

  @nn.compact
  def __call__(self, x):
    scale = _param(self, "scale", nn.initializers.ones, (x.shape[-1],),
                   (self.axis_name,), self.cfg)
    x32 = x.astype(jnp.float32)
    var = jnp.mean(jnp.square(x32), axis=-1, keepdims=True)
    y = x32 * jax.lax.rsqrt(var + self.cfg.norm_eps)
    return (y * scale.astype(jnp.float32)).astype(x.dtype)


def rope(x_BxTxHxK: jax.Array, positions_BxT: jax.Array,
         theta: float) -> jax.Array:
  """Rotary position embedding (Su et al. 2021, RoFormer Eq. 34), half-split form."""
  K = x_BxTxHxK.shape[-1]
  inv_freq_K2 = 1.0 / (theta ** (jnp.arange(0, K, 2, dtype=jnp.float32) / K))
  angles_BxTxK2 = positions_BxT[..., None].astype(jnp.float32) * inv_freq_K2
  sin = jnp.sin(angles_BxTxK2)[:, :, None, :]
  cos = jnp.cos(angles_BxTxK2)[:, :, None, :]
  x1, x2 = jnp.split(x_BxTxHxK.astype(jnp.float32), 2, axis=-1)
  out = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
  return out.astype(x_BxTxHxK.dtype)


class Attention(nn.Module):
  cfg: ModelConfig

  @nn.compact
  def __call__(self, x_BxTxD, positions_BxT):
    cfg = self.cfg
    D, H, K = cfg.d_model, cfg.n_heads, cfg.head_dim
    dt = dtype_of(cfg.dtype)
    init = nn.initializers.normal(stddev=1.0 / math.sqrt(D))
    # GPT-2 style residual-projection scaling 1/sqrt(2L) (Radford et al. 2019, Sec. 2.3).
    out_init = nn.initializers.normal(
        stddev=1.0 / math.sqrt(D) / math.sqrt(2 * cfg.n_layers))
    w_q = _param(self, "w_q", init, (D, H, K), ("embed", "heads", "head_dim"), cfg)
    w_k = _param(self, "w_k", init, (D, H, K), ("embed", "heads", "head_dim"), cfg)
    w_v = _param(self, "w_v", init, (D, H, K), ("embed", "heads", "head_dim"), cfg)
    w_o = _param(self, "w_o", out_init, (H, K, D), ("heads", "head_dim", "embed"), cfg)
    x = x_BxTxD.astype(dt)
    q_BxTxHxK = jnp.einsum("btd,dhk->bthk", x, w_q.astype(dt))
    k_BxTxHxK = jnp.einsum("btd,dhk->bthk", x, w_k.astype(dt))
    v_BxTxHxK = jnp.einsum("btd,dhk->bthk", x, w_v.astype(dt))
    if cfg.qk_norm:  # QK-norm (Dehghani et al. 2023, ViT-22B Sec. 3.1)
      q_BxTxHxK = RMSNorm(cfg, "head_dim", name="q_norm")(q_BxTxHxK)
      k_BxTxHxK = RMSNorm(cfg, "head_dim", name="k_norm")(k_BxTxHxK)
    q_BxTxHxK = rope(q_BxTxHxK, positions_BxT, cfg.rope_theta)
    k_BxTxHxK = rope(k_BxTxHxK, positions_BxT, cfg.rope_theta)
    axes = ("batch", "seq", "act_heads", "head_dim")
    q_BxTxHxK = _constrain(q_BxTxHxK, axes)
    k_BxTxHxK = _constrain(k_BxTxHxK, axes)
    v_BxTxHxK = _constrain(v_BxTxHxK, axes)
    impl = None if cfg.attention_impl == "auto" else cfg.attention_impl
    if impl is None and jax.default_backend() == "gpu" and dt != jnp.float32:
      impl = "cudnn"  # flash attention kernel; XLA fallback elsewhere
    # softmax(QK^T/sqrt(K)) V with a causal mask (Vaswani et al. 2017, Eq. 1).
    o_BxTxHxK = jax.nn.dot_product_attention(
        q_BxTxHxK, k_BxTxHxK, v_BxTxHxK, is_causal=True, implementation=impl)
    o_BxTxHxK = _constrain(o_BxTxHxK, axes)
    return jnp.einsum("bthk,hkd->btd", o_BxTxHxK, w_o.astype(dt))


class Mlp(nn.Module):
  cfg: ModelConfig

  @nn.compact
  def __call__(self, x_BxTxD):
    cfg = self.cfg
    D, F = cfg.d_model, cfg.d_ff
    dt = dtype_of(cfg.dtype)
    init = nn.initializers.normal(stddev=1.0 / math.sqrt(D))
    out_init = nn.initializers.normal(
        stddev=1.0 / math.sqrt(F) / math.sqrt(2 * cfg.n_layers))
    x = x_BxTxD.astype(dt)
    w_up = _param(self, "w_up", init, (D, F), ("embed", "mlp"), cfg)
    up_BxTxF = jnp.einsum("btd,df->btf", x, w_up.astype(dt))
    if cfg.mlp == "swiglu":  # SwiGLU (Shazeer 2020, Eq. 6)
      w_gate = _param(self, "w_gate", init, (D, F), ("embed", "mlp"), cfg)
      gate_BxTxF = jnp.einsum("btd,df->btf", x, w_gate.astype(dt))
      h_BxTxF = jax.nn.silu(gate_BxTxF) * up_BxTxF
    else:  # GELU MLP (Hendrycks & Gimpel 2016; GPT-2)
      h_BxTxF = jax.nn.gelu(up_BxTxF)
    h_BxTxF = _constrain(h_BxTxF, ("batch", "seq", "act_mlp"))
    w_down = _param(self, "w_down", out_init, (F, D), ("mlp", "embed"), cfg)
    return jnp.einsum("btf,fd->btd", h_BxTxF, w_down.astype(dt))


class Block(nn.Module):
  cfg: ModelConfig

  @nn.compact
  def __call__(self, x_BxTxD, positions_BxT):
    h = Attention(self.cfg, name="attn")(
        RMSNorm(self.cfg, name="attn_norm")(x_BxTxD), positions_BxT)
    x_BxTxD = _constrain(x_BxTxD + h, ("batch", "seq", "act_embed"))
    h = Mlp(self.cfg, name="mlp")(RMSNorm(self.cfg, name="mlp_norm")(x_BxTxD))
    return _constrain(x_BxTxD + h, ("batch", "seq", "act_embed"))


class Transformer(nn.Module):
  """tokens_BxT (int32) -> logits_BxTxV (float32)."""
  cfg: ModelConfig

  @nn.compact
  def __call__(self, tokens_BxT: jax.Array,
               positions_BxT: Optional[jax.Array] = None) -> jax.Array:
    cfg = self.cfg
    V, D = cfg.vocab_size, cfg.d_model
    dt = dtype_of(cfg.dtype)
    if positions_BxT is None:
      positions_BxT = jnp.broadcast_to(
          jnp.arange(tokens_BxT.shape[1], dtype=jnp.int32), tokens_BxT.shape)
    # std 1/sqrt(D): with tied weights the initial logits have unit scale.
    embedding_VxD = _param(self, "embedding",
                           nn.initializers.normal(stddev=1.0 / math.sqrt(D)),
                           (V, D), ("vocab", "embed"), cfg)
    x_BxTxD = jnp.take(embedding_VxD, tokens_BxT, axis=0).astype(dt)
    x_BxTxD = _constrain(x_BxTxD, ("batch", "seq", "act_embed"))
    block = nn.remat(Block) if cfg.remat else Block
    for i in range(cfg.n_layers):
      x_BxTxD = block(cfg, name=f"block_{i}")(x_BxTxD, positions_BxT)
    x_BxTxD = RMSNorm(cfg, name="final_norm")(x_BxTxD)
    if cfg.tie_embeddings:
      unembed_DxV = embedding_VxD.T
    else:
      unembed_DxV = _param(self, "unembed",
                           nn.initializers.normal(stddev=1.0 / math.sqrt(D)),
                           (D, V), ("embed", "vocab"), cfg)
    logits_BxTxV = jnp.einsum("btd,dv->btv", x_BxTxD, unembed_DxV.astype(dt))
    logits_BxTxV = _constrain(logits_BxTxV, ("batch", "seq", "act_vocab"))
    return logits_BxTxV.astype(jnp.float32)


def cross_entropy(logits_BxTxV: jax.Array, targets_BxT: jax.Array,
                  z_loss: float = 0.0):
  """Mean next-token NLL in nats; optional z-loss (Chowdhery et al. 2022, PaLM Sec. 5).

  Returns (loss_for_gradients, nll) where nll excludes the z-loss term.
  """
  lse_BxT = jax.nn.logsumexp(logits_BxTxV, axis=-1)
  target_logit_BxT = jnp.take_along_axis(
      logits_BxTxV, targets_BxT[..., None], axis=-1)[..., 0]
  nll = jnp.mean(lse_BxT - target_logit_BxT)
  total = nll
  if z_loss:
    total = total + z_loss * jnp.mean(jnp.square(lse_BxT))
  return total, nll
