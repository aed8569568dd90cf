"""Typed configuration for the decoder LM.

Config flows one way: an ``lm.config_dict.ConfigDict`` (absl ``--config.x=y``
overrides) is converted once, at the boundary, into the frozen dataclasses
below. Modules below the boundary only ever see these dataclasses.
"""
from __future__ import annotations

import ast
import dataclasses
from typing import Any, Mapping, Sequence, Tuple

from lm.validation import _is_int, check_int, check_real, check_type


class ConfigError(ValueError):
  """A user-facing configuration error; its message is one actionable line."""


# Logical axis name -> mesh axis (or tuple of mesh axes, or None = replicated).
# Sharding is data: the model only names logical axes; this table places them.
DEFAULT_RULES: Tuple[Tuple[str, Any], ...] = (
    ("batch", ("data", "fsdp")),
    ("seq", None),
    ("act_embed", None),
    ("act_heads", "tensor"),
    ("act_mlp", "tensor"),
    ("act_vocab", "tensor"),
    ("embed", "fsdp"),
    ("vocab", "tensor"),
    ("heads", "tensor"),
    ("head_dim", None),
    ("mlp", "tensor"),
    ("norm", None),
)

MESH_AXES: Tuple[str, ...] = ("data", "fsdp", "tensor")

# (section, key) that may change when resuming a run or a sweep: they change
# how a run is logged or where data is found, never its results. One list,
# used by lm.trainer (workdir check) and experiments (sweep config hash).
RESUME_MUTABLE: Tuple[Tuple[str, str], ...] = (
    ("train", "progress"), ("train", "tensorboard"), ("train", "log_every"),
    ("train", "eval_every"), ("train", "ckpt_every"),
    ("train", "keep_checkpoints"), ("train", "profile_steps"),
    ("train", "eval_batch_size"), ("train", "max_epochs"),
    ("data", "cache_dir"), ("data", "tfds_data_dir"), ("data", "cache_workers"),
    # How the processes of a job find each other, not what they compute
    # (mesh.distributed stays hashed, as before these fields existed).
    ("mesh", "coordinator_address"), ("mesh", "num_processes"),
    ("mesh", "process_id"))


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
  min_lr_ratio: float = 0.1      # cosine decays to 10% of peak (Hoffmann et al. 2022, Sec. 3)
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
  flop_convention: str = "attention_inclusive"
  progress: bool = True
  tensorboard: bool = True
  profile_steps: Tuple[int, ...] = ()  # (a, b): trace steps a+1..b (lm.profiling)

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
    if self.batch_size % self.grad_accum:
      raise ConfigError(
          f"train.grad_accum={self.grad_accum} must divide train.batch_size="
          f"{self.batch_size}")
    return self


@dataclasses.dataclass(frozen=True)
class MeshConfig:
  shape: Tuple[int, ...] = (-1, 1, 1)        # (data, fsdp, tensor); -1 = the rest
  axes: Tuple[str, ...] = MESH_AXES
  rules: Tuple[Tuple[str, Any], ...] = DEFAULT_RULES
  # Multi-host: passed to jax.distributed.initialize(). Empty fields fall back
  # to $JAX_COORDINATOR_ADDRESS / $JAX_NUM_PROCESSES / $JAX_PROCESS_ID, then to
  # JAX's cluster auto-detection (TPU VMs, SLURM, Open MPI, Kubernetes).
  distributed: bool = False                  # initialize even with no field set
  coordinator_address: str = ""              # HOST:PORT of process 0
  num_processes: int = 0                     # 0: environment / auto-detect
  process_id: int = -1                       # -1: environment / auto-detect

  def validate(self) -> "MeshConfig":
    if not isinstance(self.shape, tuple) or not all(_is_int(s)
                                                    for s in self.shape):
      raise ConfigError(f"mesh.shape must be a tuple of integers such as "
                        f"(-1, 1, 1), got {self.shape!r}")
    if (not isinstance(self.axes, tuple) or not all(isinstance(a, str)
                                                    for a in self.axes)
        or len(set(self.axes)) != len(self.axes)):
      raise ConfigError(f"mesh.axes must be distinct axis names, got "
                        f"{self.axes!r}")
    check_type("mesh.distributed", self.distributed, bool)
    for name, axes in self.rules:
      names = (axes,) if isinstance(axes, str) else (axes or ())
      if (not isinstance(name, str) or not isinstance(names, tuple)
          or any(a not in self.axes for a in names)):
        raise ConfigError(f"mesh.rules entry ({name!r}, {axes!r}) must map a "
                          f"logical axis name to None, one of {self.axes} or "
                          "a tuple of them")
    check_launch_fields(self.coordinator_address, self.num_processes,
                        self.process_id)
    if len(self.shape) != len(self.axes):
      raise ConfigError(f"mesh.shape {self.shape} must have one entry per axis "
                        f"{self.axes}")
    if sum(1 for s in self.shape if s == -1) > 1:
      raise ConfigError(f"mesh.shape {self.shape}: at most one -1 allowed")
    if any(s == 0 or s < -1 for s in self.shape):
      raise ConfigError(f"mesh.shape {self.shape}: sizes must be positive or -1")
    return self


def check_launch_fields(address: Any, n: Any, pid: Any) -> None:
  if not isinstance(address, str) or (address and not _host_port(address)):
    raise ConfigError(f"mesh.coordinator_address must be HOST:PORT (or empty "
                      f"for auto-detection), got {address!r}")
  for name, v, lo in (("num_processes", n, 0), ("process_id", pid, -1)):
    if not isinstance(v, int) or isinstance(v, bool) or v < lo:
      raise ConfigError(f"mesh.{name} must be an integer >= {lo} ({lo}: from "
                        f"the environment or auto-detected), got {v!r}")
  if n and pid >= n:
    raise ConfigError(f"mesh.process_id={pid} must be < mesh.num_processes={n}")


def _host_port(address: str) -> bool:
  host, sep, port = address.rpartition(":")
  return bool(sep and host and port.isdigit() and 0 < int(port) < 65536)


@dataclasses.dataclass(frozen=True)
class Config:
  model: ModelConfig
  data: DataConfig
  train: TrainConfig
  mesh: MeshConfig


def _to_plain(value: Any) -> Any:
  if hasattr(value, "to_dict"):
    return value.to_dict()
  return value


def _build(cls, section: str, values: Mapping[str, Any], **extra):
  fields = {f.name for f in dataclasses.fields(cls)}
  unknown = sorted(set(values) - fields)
  if unknown:
    raise ConfigError(f"unknown config key {section}.{unknown[0]} "
                      f"(valid: {', '.join(sorted(fields - set(extra)))})")
  kwargs = dict(values)
  kwargs.update(extra)
  try:
    return cls(**kwargs).validate()
  except TypeError as e:
    raise ConfigError(f"bad {section} config: {e}") from None


def mesh_shape(value: Any) -> Tuple[int, ...]:
  """``mesh.shape`` as a tuple of ints: from a tuple/list or its text
  ("(2, -1, 1)"); anything else (1.7, "abc") is a one-line ConfigError."""
  raw = value
  if isinstance(value, str):
    try:
      value = ast.literal_eval(value.strip())
    except (ValueError, SyntaxError):
      value = None
  if _is_int(value):
    value = (value,)
  if (not isinstance(value, (tuple, list))
      or not all(_is_int(s) or (isinstance(s, float) and s.is_integer())
                 for s in value)):
    raise ConfigError(f"mesh.shape must be a tuple of integers, one per mesh "
                      f"axis (data, fsdp, tensor), e.g. (-1, 1, 1) with -1 = "
                      f"the remaining devices; got {raw!r}")
  return tuple(int(s) for s in value)


def _tupleize(rules: Sequence[Any]) -> Tuple[Tuple[str, Any], ...]:
  out = []
  for item in rules:
    if not isinstance(item, (tuple, list)) or len(item) != 2:
      raise ConfigError(f"mesh.rules entries must be (logical axis, mesh axes) "
                        f"pairs, got {item!r}")
    name, axes = item
    if isinstance(axes, list):
      axes = tuple(axes)
    out.append((name, axes))
  return tuple(out)


def model_config(cfg: Any, vocab_size: int) -> ModelConfig:
  """ModelConfig from the ``model`` section plus the tokenizer's vocab size."""
  values = dict(_to_plain(cfg.model))
  values.setdefault("max_seq_len", int(cfg.data.seq_len))
  return _build(ModelConfig, "model", values, vocab_size=vocab_size)


def from_config_dict(cfg: Any, vocab_size: int) -> Config:
  """The single ConfigDict -> dataclass conversion (call at the boundary)."""
  allowed = {"model", "data", "train", "mesh", "name"}
  plain = _to_plain(cfg)
  unknown = sorted(set(plain) - allowed)
  if unknown:
    raise ConfigError(f"unknown config section {unknown[0]!r} "
                      f"(valid: {', '.join(sorted(allowed))})")
  data = _build(DataConfig, "data", plain.get("data", {}))
  train = _build(TrainConfig, "train", plain.get("train", {}))
  mesh_vals = dict(plain.get("mesh", {}))
  if "shape" in mesh_vals:
    mesh_vals["shape"] = mesh_shape(mesh_vals["shape"])
  if "axes" in mesh_vals:
    mesh_vals["axes"] = tuple(mesh_vals["axes"])
  if "rules" in mesh_vals:
    mesh_vals["rules"] = _tupleize(mesh_vals["rules"])
  mesh = _build(MeshConfig, "mesh", mesh_vals)
  model = model_config(cfg, vocab_size)
  if model.max_seq_len < data.seq_len:
    raise ConfigError(f"model.max_seq_len={model.max_seq_len} < data.seq_len="
                      f"{data.seq_len}")
  return Config(model=model, data=data, train=train, mesh=mesh)


def to_jsonable(obj: Any) -> Any:
  """Dataclass / tuple tree -> JSON-friendly structure (for run metadata)."""
  if dataclasses.is_dataclass(obj):
    return {f.name: to_jsonable(getattr(obj, f.name))
            for f in dataclasses.fields(obj)}
  if isinstance(obj, (list, tuple)):
    return [to_jsonable(x) for x in obj]
  if isinstance(obj, dict):
    return {str(k): to_jsonable(v) for k, v in obj.items()}
  return obj


def default_config_dict(**overrides: Mapping[str, Any]):
  """A ConfigDict with every field of every section, at its default.

  Config files start from this so that any ``--config.<section>.<key>=``
  override is valid. ``model`` has no defaults for its sizes: pass them.
  """
  from lm.config_dict import ConfigDict
  sections = {
      "data": config_dict_of(DataConfig()),
      "train": config_dict_of(TrainConfig()),
      "mesh": config_dict_of(MeshConfig()),
      "model": {f.name: f.default for f in dataclasses.fields(ModelConfig)
                if f.name != "vocab_size"
                and f.default is not dataclasses.MISSING},
  }
  for name, values in overrides.items():
    unknown = set(values) - set(sections[name]) - (
        {"d_model", "n_layers", "n_heads", "d_ff", "max_seq_len"}
        if name == "model" else set())
    if unknown:
      raise ConfigError(f"unknown config key {name}.{sorted(unknown)[0]}")
    sections[name].update(values)
  return ConfigDict(sections)


def config_dict_of(dc: Any) -> dict:
  return {f.name: getattr(dc, f.name) for f in dataclasses.fields(dc)}
