"""Training FLOPs per token under named, cited conventions.

Every convention returns TRAINING FLOPs (forward + backward) per token, with
backward = 2 x forward (Kaplan et al. 2020, Sec. 2.1; Hoffmann et al. 2022,
App. F), i.e. 3 x the forward count. Which N each convention uses is named in
``REGISTRY`` (see ``lm.params`` for the parameter conventions): one
``FlopConvention`` per convention (name, citation, per-token function, whether
it is a 6·N·D form, aliases), shared with ``scaling`` (input checks, sweep
centring) so that 6N and scaling's 6ND are one convention.

``exact_matmul_flops`` counts every einsum of ``lm/model.py`` exactly; it is
the ground truth the conventions are compared against (and what XLA's
``cost_analysis`` reports, up to elementwise ops).
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Dict, Optional, Tuple

from lm.config import ConfigError, ModelConfig
from lm.params import count_params, matmul_params, n_mlp_matrices

def _check_positive_int(name: str, value: int) -> None:
  if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
    raise ConfigError(f"{name} must be a positive integer, got {value!r}")


def _check(seq_len: int, convention: str) -> None:
  _check_positive_int("seq_len", seq_len)
  if convention not in CONVENTIONS:
    raise ConfigError(f"unknown FLOP convention {convention!r} "
                      f"(valid: {', '.join(CONVENTIONS)})")


# ----------------------------------------------------------------------------
# Hoffmann et al. 2022, Appendix F, in the paper's own variables.

def chinchilla_forward_flops(*, seq_len: int, vocab_size: int, d_model: int,
                             num_heads: int, key_size: int, num_layers: int,
                             ffw_size: int, n_ffw_matrices: int = 2,
                             include_embeddings_and_logits: bool = True
                             ) -> float:
  """Forward FLOPs of ONE sequence of seq_len tokens (Hoffmann et al. 2022, App. F).

  ``n_ffw_matrices`` generalises App. F's dense block (2 matrices) to SwiGLU
  (3 matrices). ``include_embeddings_and_logits=False`` is the Table A4 variant.
  """
  T, V, d, f = seq_len, vocab_size, d_model, ffw_size
  hk = key_size * num_heads
  # App. F "Embeddings": 2 x seq_len x vocab_size x d_model.
  embeddings = 2 * T * V * d
  # App. F "Attention (Single Layer)".
  qkv = 2 * 3 * T * d * hk                  # key, query and value projections
  logits = 2 * T * T * hk                   # key @ query logits
  softmax = 3 * num_heads * T * T           # softmax
  reduction = 2 * T * T * hk                # softmax @ query reductions
  projection = 2 * T * hk * d               # final linear
  attention = qkv + logits + softmax + reduction + projection
  # App. F "Dense Block": 2 x seq_len x (d_model x ffw_size + d_model x ffw_size).
  dense = 2 * T * n_ffw_matrices * d * f
  # App. F "Final Logits": 2 x seq_len x d_model x vocab_size.
  final_logits = 2 * T * d * V
  # App. F "Total forward pass FLOPs": embeddings + L x (attention + dense) + logits.
  total = num_layers * (attention + dense)
  if include_embeddings_and_logits:
    total += embeddings + final_logits
  return float(total)


def chinchilla_reported_params(*, vocab_size: int, d_model: int,
                               num_layers: int, ffw_size: int,
                               num_heads: int = 0, key_size: int = 0) -> int:
  """The N of Chinchilla's Table A9 / Table A4 (C / 6ND), reconstructed.

  One d_model x vocab matrix plus, per layer, Transformer-XL style blocks with
  biases and LayerNorms (Rae et al. 2021, Gopher Sec. 3; Dai et al. 2019
  relative positions), with hk = num_heads x key_size (default d_model): QKV
  3 d hk + 3 hk, relative positions d hk + 2 hk (W_r, biases u and v), output
  projection hk d + d, FFW 2 d f + f + d, two LayerNorms 4 d; plus a final
  LayerNorm 2 d. This reconstruction matches all 50 Table A9 sizes to within
  1.5M and, with seq 2048 and vocab 32000, all six Table A4 ratios to 4
  decimals (1.0250 ... 0.9941, anchors.json tableA4_reproduction_note).
  """
  d, f = d_model, ffw_size
  hk = num_heads * key_size if num_heads and key_size else d
  per_layer = ((3 * d * hk + 3 * hk) + (d * hk + 2 * hk) + (hk * d + d)
               + (2 * d * f + f + d) + 4 * d)
  return vocab_size * d + num_layers * per_layer + 2 * d


def _chinchilla_fwd_per_token(cfg: ModelConfig, seq_len: int,
                              include_embeddings_and_logits: bool) -> float:
  return chinchilla_forward_flops(
      seq_len=seq_len, vocab_size=cfg.vocab_size, d_model=cfg.d_model,
      num_heads=cfg.n_heads, key_size=cfg.head_dim, num_layers=cfg.n_layers,
      ffw_size=cfg.d_ff, n_ffw_matrices=n_mlp_matrices(cfg),
      include_embeddings_and_logits=include_embeddings_and_logits) / seq_len


# ----------------------------------------------------------------------------
# Exact matmul count of lm/model.py.

def exact_matmul_flops(cfg: ModelConfig, seq_len: int, batch: int = 1, *,
                       causal: bool = False) -> float:
  """FORWARD matmul FLOPs (2 per multiply-add) of every einsum in lm/model.py.

  Per layer: q, k, v projections 3 x 2BTDHK; attention logits QK^T 2BT^2HK and
  probabilities @ V 2BT^2HK (jax.nn.dot_product_attention's XLA path computes
  the full T x T block; ``causal=True`` halves these two, as a flash kernel
  that skips masked blocks would, asymptotically); output projection 2BTHKD;
  MLP n_mlp x 2BTDF. Plus the unembedding 2BTDV. The embedding gather is not
  a matmul. A training step (value_and_grad) costs 3 x this: each matmul's
  backward is two matmuls of the same size (Kaplan et al. 2020, Sec. 2.1).
  """
  _check_positive_int("seq_len", seq_len)
  _check_positive_int("batch", batch)
  B, T, D, F = batch, seq_len, cfg.d_model, cfg.d_ff
  HK = cfg.n_heads * cfg.head_dim
  proj = 2 * B * T * D * HK * 4                     # w_q, w_k, w_v, w_o
  attn = 2 * B * T * T * HK * 2                     # QK^T and PV
  if causal:
    attn //= 2
  mlp = 2 * B * T * D * F * n_mlp_matrices(cfg)     # w_up, (w_gate), w_down
  unembed = 2 * B * T * D * cfg.vocab_size
  return float(cfg.n_layers * (proj + attn + mlp) + unembed)


# ----------------------------------------------------------------------------
# Named conventions.

def _six_n_total(cfg: ModelConfig, seq_len: int) -> float:
  # Kaplan et al. 2020, Sec. 2.1: C ~ 6N per token (N total, Hoffmann-style).
  return 6.0 * count_params(cfg).total


def _six_n_nonembedding(cfg: ModelConfig, seq_len: int) -> float:
  # Kaplan et al. 2020, Eq. 2.1 / Table 1: C ~ 6N, N non-embedding.
  return 6.0 * count_params(cfg).non_embedding


def _chinchilla_appendix_f(cfg: ModelConfig, seq_len: int) -> float:
  # Hoffmann et al. 2022, App. F: training = forward + 2 x forward.
  return 3.0 * _chinchilla_fwd_per_token(cfg, seq_len, True)


def _chinchilla_table_a4(cfg: ModelConfig, seq_len: int) -> float:
  # Hoffmann et al. 2022, App. F minus embeddings/logits (reproduces Table A4).
  return 3.0 * _chinchilla_fwd_per_token(cfg, seq_len, False)


def _attention_inclusive(cfg: ModelConfig, seq_len: int) -> float:
  # Chowdhery et al. 2022 (PaLM), App. B: 6N + 12 L H Q T.
  d_attn = cfg.n_heads * cfg.head_dim
  return 6.0 * matmul_params(cfg) + 12.0 * cfg.n_layers * d_attn * seq_len


def _attention_causal(cfg: ModelConfig, seq_len: int) -> float:
  # MaxText: causal attention FLOPs halved: 6N + 6 L H Q T.
  d_attn = cfg.n_heads * cfg.head_dim
  return 6.0 * matmul_params(cfg) + 6.0 * cfg.n_layers * d_attn * seq_len


@dataclasses.dataclass(frozen=True)
class FlopConvention:
  """One way of counting training FLOPs; ``lm`` and ``scaling`` share it."""
  name: str
  """Its name in configs, run.json, the ledger and fit.json."""
  citation: str
  """What it counts and where the formula comes from (written in run.json)."""
  per_token: Callable[[ModelConfig, int], float]
  """(model config, seq_len) -> training FLOPs per token."""
  six_nd_params: Tuple[Optional[str], ...] = ()
  """Parameter conventions (lm.params) of N under which C = 6 N D exactly
  (None: N as the data give it); empty when it is not a 6ND form."""
  aliases: Tuple[str, ...] = ()
  """Other names of the same convention in data (scaling's built-in data
  sets call 6N "6ND")."""

  @property
  def is_six_nd(self) -> bool:
    """Whether C = 6 N D (a 6N form: Hoffmann 2022 Eq. 4 in closed form)."""
    return bool(self.six_nd_params)


def _registry(*entries: FlopConvention) -> Dict[str, FlopConvention]:
  return {e.name: e for e in entries}


_CITATIONS = {

    "6N": "6 N per token, N = total params incl. embeddings "
          "(Kaplan et al. 2020, Sec. 2.1, C ~ 6N; N as counted by Hoffmann "
          "et al. 2022)",
    "6N_nonembedding": "6 N per token, N = non-embedding params (Kaplan et al. "
                       "2020, Eq. 2.1 / Table 1, dropping the 2 n_layer n_ctx "
                       "d_attn context term as Kaplan Sec. 2.1 does)",
    "chinchilla_appendix_f": "Hoffmann et al. 2022, App. F as printed: "
                             "embeddings 2TVd + L x attention (QKV, logits, "
                             "softmax, reduction, projection) + L x dense + "
                             "logits 2TdV; backward = 2 x forward",
    "chinchilla_table_a4": "Hoffmann et al. 2022, App. F without the embedding "
                           "and final-logit terms: the variant that "
                           "reproduces Table A4 (authors' typo per "
                           "karpathy/nanoGPT scaling_laws.ipynb)",
    "attention_inclusive": "6 N + 12 L d_attn T per token, N = matmul params "
                           "(block projections + D x V output matrix) "
                           "(Chowdhery et al. 2022, PaLM App. B; nanoGPT "
                           "estimate_mfu)",
    "attention_causal": "6 N + 6 L d_attn T per token: the attention term "
                        "halved for the causal mask (MaxText "
                        "calculate_tflops_training_per_device, causal "
                        "attention flops / 2)",
}

# The FLOP conventions: one entry each (a new one is one entry here).
REGISTRY: Dict[str, FlopConvention] = _registry(
    FlopConvention("6N", _CITATIONS["6N"], _six_n_total,
                   six_nd_params=("total", None), aliases=("6ND",)),
    FlopConvention("6N_nonembedding", _CITATIONS["6N_nonembedding"],
                   _six_n_nonembedding, six_nd_params=("non_embedding",)),
    FlopConvention("chinchilla_appendix_f", _CITATIONS["chinchilla_appendix_f"],
                   _chinchilla_appendix_f),
    FlopConvention("chinchilla_table_a4", _CITATIONS["chinchilla_table_a4"],
                   _chinchilla_table_a4),
    FlopConvention("attention_inclusive", _CITATIONS["attention_inclusive"],
                   _attention_inclusive),
    FlopConvention("attention_causal", _CITATIONS["attention_causal"],
                   _attention_causal),
)
# name -> citation (run.json's flop_convention_citation; config choices).
CONVENTIONS: Dict[str, str] = {k: e.citation for k, e in REGISTRY.items()}


def lookup(name: Optional[str]) -> Optional[FlopConvention]:
  """The registry entry of a convention name or alias (None if unknown)."""
  for e in REGISTRY.values():
    if name == e.name or name in e.aliases:
      return e
  return None


def same_convention(a: Optional[str], b: Optional[str]) -> bool:
  """Whether two names (or aliases) count C the same way."""
  if a == b:
    return True
  ea, eb = lookup(a), lookup(b)
  return ea is not None and ea is eb


def is_six_nd(name: Optional[str], param_convention: Optional[str] = None) -> bool:
  """Whether C = 6 N D exactly under ``name`` with N counted as
  ``param_convention`` (None: as given)."""
  e = lookup(name)
  return e is not None and param_convention in e.six_nd_params


def flops_per_token(cfg: ModelConfig, seq_len: int,
                    convention: str = "attention_inclusive") -> float:
  """TRAINING (forward + backward) FLOPs per token under ``convention``."""
  _check(seq_len, convention)
  return REGISTRY[convention].per_token(cfg, seq_len)


def training_flops(cfg: ModelConfig, seq_len: int, tokens: float,
                   convention: str = "attention_inclusive") -> float:
  """Total training FLOPs C for ``tokens`` tokens (C = flops_per_token x D)."""
  if not tokens >= 0:
    raise ConfigError(f"tokens must be non-negative, got {tokens!r}")
  return flops_per_token(cfg, seq_len, convention) * float(tokens)
