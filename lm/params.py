"""Exact parameter counts for ``lm.model.Transformer`` and the shape rule.

Counting conventions (name them explicitly; papers differ):

* ``"total"`` -- every trainable scalar, embeddings included. Hoffmann et al.
  2022 (Chinchilla) count N this way (Sec. 2 and Table A9 include the
  embedding matrix).
* ``"non_embedding"`` -- total minus the embedding matrices. Kaplan et al. 2020
  (Sec. 1.2 and 2.1: N excludes vocabulary and positional embeddings) fit
  their laws to this N. Here the embedding matrices are the token-embedding table V x D plus,
  when untied, the unembedding D x V; norm scales count as non-embedding.
* ``"matmul"`` -- the weights that multiply activations in a matmul: every
  projection in the blocks plus the output (unembedding) D x V matrix, tied or
  not; no norm scales, no input-embedding gather. This is the N of the
  ``6N + 12LdT`` MFU formula (Chowdhery et al. 2022, PaLM App. B): with it,
  that formula equals the exact per-token matmul FLOPs (see ``lm.flops``).

The shape rule (``shape_for_params``) follows Marin's scaling recipe
(marin-community/marin, lib/marin/src/marin/scaling_laws/recipe.py,
``ScalingRecipe.compute_num_layers``): n_layers = round(d / (64 + 4 log2 d - 9)),
i.e. d_model / n_layers grows from ~83 at d=128 to ~103 at d=4096, inside the
flat-optimal band d/L ~ 50-100 of Kaplan et al. 2020 (Fig. 5) and the ~40-109
spread of Chinchilla's Table A9. Two relaxations, both documented where they
live: depth is rounded down or up (``depth_choices``) to double the coverage
of N, and head_dim shrinks below 64 for widths that are not multiples of it
(tiny CPU models, d_model 8-504; ``head_dim_for``). Widths step by 8 below
head_dim, by 16 up to 8 x head_dim, then by head_dim (``widths``).
"""
from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Any, Dict, Iterator, List, Optional

from lm.config import ConfigError, ModelConfig

PARAM_CONVENTIONS: Dict[str, str] = {
    "total": "all trainable parameters incl. embeddings (Hoffmann et al. 2022)",
    "non_embedding": "total minus token-embedding (and untied unembedding) "
                     "matrices (Kaplan et al. 2020, Sec. 2.1)",
    "matmul": "weights used in matmuls: block projections + the D x V output "
              "matrix (Chowdhery et al. 2022, PaLM App. B MFU formula)",
}


@dataclasses.dataclass(frozen=True)
class ParamCounts:
  """Exact parameter counts of one ``ModelConfig``."""
  total: int
  embedding: int
  non_embedding: int

  def to_dict(self) -> Dict[str, int]:
    return dataclasses.asdict(self)


def n_mlp_matrices(cfg: ModelConfig) -> int:
  """SwiGLU has gate, up and down (Shazeer 2020, Eq. 6); GELU has up and down."""
  return 3 if cfg.mlp == "swiglu" else 2


def block_params(cfg: ModelConfig) -> int:
  """Parameters of one ``lm.model.Block`` (2 RMSNorms, attention, MLP)."""
  D, F, K = cfg.d_model, cfg.d_ff, cfg.head_dim
  attn = 4 * D * (cfg.n_heads * K)          # w_q, w_k, w_v (D,H,K) + w_o (H,K,D)
  qk_norm = 2 * K if cfg.qk_norm else 0     # q_norm, k_norm scales over head_dim
  mlp = n_mlp_matrices(cfg) * D * F         # w_up (+ w_gate), w_down
  norms = 2 * D                             # attn_norm, mlp_norm scales
  return attn + qk_norm + mlp + norms


def count_params(cfg: ModelConfig) -> ParamCounts:
  """Exact parameter count of ``lm.model.Transformer(cfg)`` (no biases)."""
  V, D = cfg.vocab_size, cfg.d_model
  embedding = V * D * (1 if cfg.tie_embeddings else 2)
  non_embedding = cfg.n_layers * block_params(cfg) + D   # + final_norm scale
  return ParamCounts(total=embedding + non_embedding, embedding=embedding,
                     non_embedding=non_embedding)


def matmul_params(cfg: ModelConfig) -> int:
  """Weights entering a matmul: block projections + the D x V output matrix."""
  D, F = cfg.d_model, cfg.d_ff
  per_layer = 4 * D * cfg.n_heads * cfg.head_dim + n_mlp_matrices(cfg) * D * F
  return cfg.n_layers * per_layer + D * cfg.vocab_size


def n_params(cfg: ModelConfig, convention: str = "total") -> int:
  """N under a named convention (see ``PARAM_CONVENTIONS``)."""
  if convention == "total":
    return count_params(cfg).total
  if convention == "non_embedding":
    return count_params(cfg).non_embedding
  if convention == "matmul":
    return matmul_params(cfg)
  raise ConfigError(f"unknown parameter convention {convention!r} "
                    f"(valid: {', '.join(PARAM_CONVENTIONS)})")


# ----------------------------------------------------------------------------
# Shape rule.

def marin_aspect_ratio(d_model: int) -> float:
  """Target d_model / n_layers (Marin recipe.py, ScalingRecipe.compute_num_layers).

  Marin: n_layers = round(d / (64 + 4 log2 d - 9)); the divisor is the aspect
  ratio, ~83 at d=128, ~91 at d=512, ~103 at d=4096.
  """
  return 64 + 4 * math.log2(d_model) - 9


def marin_num_layers(d_model: int) -> int:
  """Marin's depth for a width, floored at 1 (it rounds to 0 below d~40)."""
  return max(1, round(d_model / marin_aspect_ratio(d_model)))


def depth_choices(d_model: int) -> List[int]:
  """d / marin_aspect_ratio(d) rounded down and up (>= 1), deduplicated.

  Marin rounds to nearest; allowing both roundings doubles the number of
  distinct N values on the grid, which matters at small scale where one layer
  more or less is a 30-100% change in N.
  """
  x = d_model / marin_aspect_ratio(d_model)
  return sorted({max(1, math.floor(x)), max(1, math.ceil(x))})


def head_dim_for(d_model: int, head_dim: int = 64) -> int:
  """Per-head width: the first of head_dim, head_dim/2, head_dim/4, ... (even,
  >= 8), then 8, that divides d_model. Widths on the grid are multiples of 8,
  so widths that are not multiples of head_dim (all below 8 x head_dim) get
  head_dim/2, head_dim/4, ... or 8: a 48-wide model has 3 heads of 16."""
  k = head_dim
  while k >= 8:
    if k % 2 == 0 and d_model % k == 0:
      return k
    k //= 2
  return 8


def heads_for(d_model: int, head_dim: int = 64) -> int:
  return d_model // head_dim_for(d_model, head_dim)


def ffn_dim(d_model: int, mlp: str, ff_multiple: int = 64) -> int:
  """d_ff for a width.

  SwiGLU: 8/3 d (2/3 of 4d keeps the MLP parameter count of a 4d GELU MLP;
  Shazeer 2020 Sec. 2, Touvron et al. 2023 LLaMA Sec. 2.2), rounded UP to a
  multiple of ``ff_multiple`` (64: whole MXU/tensor-core tiles; 8 when
  d_model < ff_multiple so tiny models keep ~8/3 d). GELU: 4 d (Vaswani et al.
  2017, Sec. 3.3).
  """
  if mlp == "gelu":
    return 4 * d_model
  if mlp != "swiglu":
    raise ConfigError(f"mlp must be 'swiglu' or 'gelu', got {mlp!r}")
  m = ff_multiple if d_model >= ff_multiple else 8
  return m * math.ceil(8 * d_model / (3 * m))


def widths(head_dim: int = 64, min_d_model: int = 8) -> Iterator[int]:
  """Candidate widths, increasing: steps of 8 below head_dim, of 16 up to
  8*head_dim, then multiples of head_dim (so every large model has full-size
  heads and the relative step in d stays <= 1/8)."""
  for d in itertools.count(8, 8):
    if d >= 8 * head_dim:
      break
    if d >= min_d_model and (d < head_dim or d % 16 == 0):
      yield d
  for d in itertools.count(8 * head_dim, head_dim):
    if d >= min_d_model:
      yield d


def shape_config(d_model: int, *, vocab_size: int, seq_len: int,
                 n_layers: Optional[int] = None, mlp: str = "swiglu",
                 head_dim: int = 64, tie_embeddings: bool = True,
                 ff_multiple: int = 64, **model_kwargs: Any) -> ModelConfig:
  """The ModelConfig of one width (depth defaults to ``marin_num_layers``)."""
  return ModelConfig(
      vocab_size=vocab_size, d_model=d_model,
      n_layers=marin_num_layers(d_model) if n_layers is None else n_layers,
      n_heads=heads_for(d_model, head_dim),
      d_ff=ffn_dim(d_model, mlp, ff_multiple), max_seq_len=seq_len, mlp=mlp,
      tie_embeddings=tie_embeddings, **model_kwargs).validate()


def _check_shape_args(vocab_size: int, seq_len: int, head_dim: int,
                      convention: str) -> None:
  for name, v in (("vocab_size", vocab_size), ("seq_len", seq_len),
                  ("head_dim", head_dim)):
    if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
      raise ConfigError(f"{name} must be a positive integer, got {v!r}")
  if head_dim % 2 or head_dim < 8:
    raise ConfigError(f"head_dim must be even and >= 8, got {head_dim}")
  if convention not in PARAM_CONVENTIONS:
    raise ConfigError(f"unknown parameter convention {convention!r} "
                      f"(valid: {', '.join(PARAM_CONVENTIONS)})")


def enumerate_shapes(*, vocab_size: int, seq_len: int, max_params: float,
                     convention: str = "total", mlp: str = "swiglu",
                     head_dim: int = 64, tie_embeddings: bool = True,
                     min_d_model: int = 8, ff_multiple: int = 64,
                     **model_kwargs: Any) -> List[ModelConfig]:
  """Every shape of the rule (each width x ``depth_choices``), sorted by N.

  Stops at the first width whose smallest-depth shape has N >= max_params, so
  the list always contains at least one shape at or above max_params (a target
  is bracketed from both sides).
  """
  _check_shape_args(vocab_size, seq_len, head_dim, convention)
  out: List[ModelConfig] = []
  for d in widths(head_dim, min_d_model):
    cfgs = [shape_config(d, vocab_size=vocab_size, seq_len=seq_len,
                         n_layers=L, mlp=mlp, head_dim=head_dim,
                         tie_embeddings=tie_embeddings,
                         ff_multiple=ff_multiple, **model_kwargs)
            for L in depth_choices(d)]
    out.extend(cfgs)
    if n_params(cfgs[0], convention) >= max_params:
      break
  return sorted(out, key=lambda c: (n_params(c, convention), c.d_model))


def shape_for_params(N_target: float, *, vocab_size: int, seq_len: int,
                     convention: str = "total", mlp: str = "swiglu",
                     head_dim: int = 64, tie_embeddings: bool = True,
                     min_d_model: int = 8, ff_multiple: int = 64,
                     **model_kwargs: Any) -> ModelConfig:
  """The rule's shape whose exact N (under ``convention``) is closest to N_target.

  Widths from ``widths``, depths from ``depth_choices`` (Marin's aspect rule
  rounded down or up), heads from ``head_dim_for``, d_ff from ``ffn_dim``.
  "Closest" is in log space (|log N - log N_target|), the natural metric for
  power laws; ties go to the aspect ratio closest to Marin's. Extra
  ``model_kwargs`` (qk_norm, dtype, ...) pass through to ModelConfig.

  Raises:
    ConfigError: N_target is not positive or is below the smallest shape.
  """
  if (isinstance(N_target, bool) or not isinstance(N_target, (int, float))
      or not 0 < N_target < math.inf):
    raise ConfigError(
        f"N_target must be a positive finite number, got {N_target!r}")
  shapes = enumerate_shapes(
      vocab_size=vocab_size, seq_len=seq_len, max_params=N_target,
      convention=convention, mlp=mlp, head_dim=head_dim,
      tie_embeddings=tie_embeddings, min_d_model=min_d_model,
      ff_multiple=ff_multiple, **model_kwargs)
  smallest = n_params(shapes[0], convention)
  if N_target < smallest:
    raise ConfigError(
        f"N_target={N_target:.4g} is below the smallest expressible model "
        f"({smallest} {convention} params at d_model={shapes[0].d_model}, "
        f"vocab_size={vocab_size}); raise N_target or use "
        "convention='non_embedding'")

  def score(c: ModelConfig):
    aspect = math.log(c.d_model / c.n_layers / marin_aspect_ratio(c.d_model))
    return (abs(math.log(n_params(c, convention) / N_target)), abs(aspect))

  return min(shapes, key=score)
