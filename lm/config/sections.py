"""The ``model``, ``data`` and ``train`` config sections: frozen dataclasses.

Each ``validate()`` checks its own fields and returns the section, or raises
one ``ConfigError`` line naming the field. Built from a ConfigDict only by
``lm.config.from_config_dict``; import them from ``lm.config``.
"""
from __future__ import annotations

import dataclasses
from typing import Tuple

from lm.validation import ConfigError, _is_int, check_int, check_real, check_type
from lm import schedules


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Decoder-only Transformer hyper-parameters.

  ``vocab_size`` comes from the tokenizer, not the user.
  """
  vocab_size: int
  d_model: int
  n_layers: int
  n_heads: int
  d_ff: int
  max_seq_len: int
  mlp: str = "swiglu"            # "swiglu" | "gelu"
  tie_embeddings: bool = True
  qk_norm: bool = False
  rope_theta: float = 10_000.0
  norm_eps: float = 1e-6
  dtype: str = "float32"         # compute dtype: "float32" | "bfloat16"
  param_dtype: str = "float32"
  attention_impl: str = "auto"  # jax.nn.dot_product_attention implementation: auto|xla|cudnn
  remat: bool = False

  @property
  def head_dim(self) -> int:
    return self.d_model // self.n_heads

  def validate(self) -> "ModelConfig":
    for name in ("vocab_size", "d_model", "n_layers", "n_heads", "d_ff",
                 "max_seq_len"):
      v = getattr(self, name)
      if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
        raise ConfigError(f"model.{name} must be a positive integer, got {v!r}")
    if self.d_model % self.n_heads:
      raise ConfigError(
          f"model.n_heads={self.n_heads} must divide model.d_model="
          f"{self.d_model} (head_dim = d_model / n_heads)")
    if self.head_dim % 2:
      raise ConfigError(
          f"head_dim = d_model/n_heads = {self.head_dim} must be even for RoPE")
    if self.mlp not in ("swiglu", "gelu"):
      raise ConfigError(f"model.mlp must be 'swiglu' or 'gelu', got {self.mlp!r}")
    for name in ("dtype", "param_dtype"):
      if getattr(self, name) not in ("float32", "bfloat16", "float16"):
        raise ConfigError(f"model.{name} must be float32, bfloat16 or float16, "
                          f"got {getattr(self, name)!r}")
    if self.attention_impl not in ("auto", "xla", "cudnn"):
      raise ConfigError("model.attention_impl must be auto, xla or cudnn, got "
                        f"{self.attention_impl!r}")
    check_real("model.rope_theta", self.rope_theta, 0, lo_open=True,
               meaning="RoPE base wavelength")
    check_real("model.norm_eps", self.norm_eps, 0, lo_open=True,
               meaning="RMSNorm epsilon")
    for name in ("tie_embeddings", "qk_norm", "remat"):
      check_type(f"model.{name}", getattr(self, name), bool)
    return self


@dataclasses.dataclass(frozen=True)
class DataConfig:
  source: str = "default"        # "default" (embedded stdlib corpus) | "files" | "tfds"
  path: str = ""                 # files/dirs for source="files" (comma separated)
  tfds_name: str = ""            # e.g. "lm1b" or "c4/en:3.1.0"
  tfds_data_dir: str = ""
  tfds_train_split: str = "train"
  tfds_val_split: str = ""       # empty: "validation" if the dataset has it, else hold out train records
  tfds_max_records: int = 0      # 0 = every record; else records [0, n) of each split
  text_key: str = "text"
  tokenizer: str = "byte"        # "byte" | "sentencepiece"
  sp_vocab_size: int = 8192
  sp_model_path: str = ""        # existing .model file; empty: train one and cache it
  seq_len: int = 128
  val_fraction: float = 0.01     # held-out share of documents' bytes (tfds: of records)
  max_corpus_bytes: int = 0      # 0 = no cap (embedded corpus / local files)
  cache_dir: str = ""            # empty: $SCALINGLM_CACHE, else ~/.cache/scalinglm
  token_cache: bool = True       # tokenize once into memory-mapped files (lm.data.token_cache)
  cache_workers: int = 0         # tokenizer processes building a cache; 0 = all CPUs

  def validate(self) -> "DataConfig":
    for name in ("source", "path", "tfds_name", "tfds_data_dir",
                 "tfds_train_split", "tfds_val_split", "text_key", "tokenizer",
                 "sp_model_path", "cache_dir"):
      check_type(f"data.{name}", getattr(self, name), str)
    check_int("data.seq_len", self.seq_len, 1, meaning="tokens per sequence")
    check_int("data.sp_vocab_size", self.sp_vocab_size, 1)
    check_int("data.max_corpus_bytes", self.max_corpus_bytes, 0,
              meaning="0 = no cap")
    check_real("data.val_fraction", self.val_fraction, 0, 0.5, lo_open=True,
               hi_open=True, meaning="held-out share of the documents' bytes")
    if self.source not in ("default", "files", "tfds"):
      raise ConfigError(
          f"data.source must be default, files or tfds, got {self.source!r}")
    if self.source == "files" and not self.path:
      raise ConfigError("data.source='files' needs data.path=<file or dir>")
    if self.source == "tfds" and not self.tfds_name:
      raise ConfigError("data.source='tfds' needs data.tfds_name=<name>")
    if self.tokenizer not in ("byte", "sentencepiece"):
      raise ConfigError("data.tokenizer must be byte or sentencepiece, got "
                        f"{self.tokenizer!r}")
    if self.tokenizer == "sentencepiece" and self.sp_vocab_size < 64:
      raise ConfigError(
          f"data.sp_vocab_size must be >= 64, got {self.sp_vocab_size}")
    check_int("data.tfds_max_records", self.tfds_max_records, 0,
              meaning="0 = every record")
    check_int("data.cache_workers", self.cache_workers, 0,
              meaning="0 = all CPUs")
    check_type("data.token_cache", self.token_cache, bool)
    return self


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  batch_size: int = 16           # global sequences per optimizer step
  steps: int = 1000              # planned optimizer steps (schedule ends here)
  lr: float = 3e-3
  warmup_steps: int = 100
  min_lr_ratio: float = 0.1      # final lr / peak, every schedule (cosine: 10%, Hoffmann et al. 2022, Sec. 3)
  schedule: str = "cosine"       # lm.schedules.SCHEDULES: cosine | linear | wsd
  cooldown_fraction: float = 0.2  # wsd: share of the steps in the cooldown (Hägele et al. 2024)
  cooldown_shape: str = "1-sqrt"  # wsd: lm.schedules.COOLDOWN_SHAPES: linear | 1-sqrt
  weight_decay: float = 0.1
  b1: float = 0.9
  b2: float = 0.95
  eps: float = 1e-8
  grad_clip: float = 1.0
  grad_accum: int = 1
  z_loss: float = 0.0
  seed: int = 0
  steps_per_call: int = 1        # optimizer steps fused into one jitted call (lax.scan)
  log_every: int = 50
  eval_every: int = 0            # 0: eval only at the end
  eval_tokens: int = 262_144     # target tokens of the fixed eval set (lm.data.eval_set)
  eval_batch_size: int = 64      # global rows per eval batch (independent of batch_size)
  max_epochs: float = 0.0        # refuse runs with D > max_epochs x unique train tokens; 0 = no limit
  ckpt_every: int = 0            # 0: only at the end
  keep_checkpoints: int = 2
  keep_steps: Tuple[int, ...] = ()  # also save at these steps, never rotated out (trunk branch points)
  flop_convention: str = "attention_inclusive"
  progress: bool = True
  tensorboard: bool = True
  profile_steps: Tuple[int, ...] = ()  # (a, b): trace steps a+1..b (lm.profiling)

  def _validate_schedule(self) -> None:
    for name, valid in (("schedule", schedules.SCHEDULE_NAMES),
                        ("cooldown_shape", schedules.COOLDOWN_SHAPE_NAMES)):
      if getattr(self, name) not in valid:
        raise ConfigError(f"train.{name} must be one of {', '.join(valid)}, "
                          f"got {getattr(self, name)!r}")
    check_real("train.cooldown_fraction", self.cooldown_fraction, 0, 1,
               hi_open=True, meaning="wsd: share of the steps in the cooldown")
    start = schedules.decay_start(self.steps, self.cooldown_fraction)
    if self.schedule == "wsd" and start < self.warmup_steps:
      raise ConfigError(
          f"train.cooldown_fraction={self.cooldown_fraction:g} starts the wsd "
          f"cooldown at step {start}, before the warmup ends at "
          f"train.warmup_steps={self.warmup_steps}; lower one of them")
    k = self.keep_steps
    if not (isinstance(k, tuple) and all(_is_int(s) and 0 < s <= self.steps
                                         for s in k)):
      raise ConfigError("train.keep_steps must be a tuple of steps in [1, "
                        f"train.steps={self.steps}], got {k!r}")

  def validate(self) -> "TrainConfig":
    for name in ("batch_size", "steps", "grad_accum", "steps_per_call",
                 "log_every", "eval_tokens", "eval_batch_size",
                 "keep_checkpoints"):
      v = getattr(self, name)
      if not _is_int(v) or v <= 0:
        raise ConfigError(f"train.{name} must be a positive integer, got {v!r}")
    for name in ("warmup_steps", "eval_every", "ckpt_every"):
      v = getattr(self, name)
      if not _is_int(v) or v < 0:
        raise ConfigError(f"train.{name} must be a non-negative integer, got {v!r}")
    check_int("train.seed", self.seed, 0, 2**31 - 1)
    check_real("train.lr", self.lr, 0, lo_open=True, meaning="peak learning rate")
    check_real("train.min_lr_ratio", self.min_lr_ratio, 0, 1,
               meaning="final lr / peak lr")
    check_real("train.weight_decay", self.weight_decay, 0,
               meaning="AdamW decoupled decay")
    check_real("train.b1", self.b1, 0, 1, hi_open=True,
               meaning="Adam first-moment decay")
    check_real("train.b2", self.b2, 0, 1, hi_open=True,
               meaning="Adam second-moment decay")
    check_real("train.eps", self.eps, 0, lo_open=True, meaning="Adam epsilon")
    check_real("train.grad_clip", self.grad_clip, 0,
               meaning="global-norm clip; 0 disables clipping")
    check_real("train.z_loss", self.z_loss, 0, meaning="z-loss coefficient")
    check_real("train.max_epochs", self.max_epochs, 0,
               meaning="0 = no limit")
    p = self.profile_steps
    if p and not (len(p) == 2 and all(type(s) is int for s in p)
                  and 0 <= p[0] < p[1] <= self.steps):
      raise ConfigError("train.profile_steps must be () or (a, b) with 0 <= a "
                        f"< b <= train.steps={self.steps}, got {tuple(p)!r}")
    check_type("train.flop_convention", self.flop_convention, str)
    for name in ("progress", "tensorboard"):
      check_type(f"train.{name}", getattr(self, name), bool)
    if self.warmup_steps >= self.steps:
      raise ConfigError(f"train.warmup_steps={self.warmup_steps} must be "
                        f"smaller than train.steps={self.steps}")
    self._validate_schedule()
    if self.batch_size % self.grad_accum:
      raise ConfigError(
          f"train.grad_accum={self.grad_accum} must divide train.batch_size="
          f"{self.batch_size}")
    return self
