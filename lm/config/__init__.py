"""Typed configuration for the decoder LM: the ConfigDict -> dataclass boundary.

Config flows one way: an ``lm.config.config_dict.ConfigDict`` (absl ``--config.x=y``
overrides) is converted once, here (``from_config_dict``), into frozen
dataclasses. Modules below the boundary only ever see these dataclasses.

This module is also the one import path of the config types. They are
defined in ``lm.config.sections`` (model, data, train sections),
``lm.config.mesh`` (mesh section, sharding rules) and ``lm.validation``
(``ConfigError`` and the field checks).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Optional, Tuple

from lm.config.sections import DataConfig, ModelConfig, TrainConfig
from lm.config.mesh import (DEFAULT_RULES, MESH_AXES, MeshConfig,
                            check_launch_fields, mesh_shape, mesh_values)
from lm.validation import ConfigError
from lm.config.config_dict import ConfigDict

__all__ = [
    "ConfigError", "Config", "ModelConfig", "DataConfig", "TrainConfig",
    "MeshConfig", "DEFAULT_RULES", "MESH_AXES", "RESUME_MUTABLE", "differing_field",
    "check_launch_fields", "mesh_shape", "model_config", "from_config_dict",
    "to_jsonable", "default_config_dict", "config_dict_of",
]

# (section, key) that may change when resuming a run or a sweep: they change
# how a run is logged or where data is found, never its results. One list,
# used by lm.run_setup and lm.init_from (``differing_field``) and experiments
# (sweep config hash).
RESUME_MUTABLE: Tuple[Tuple[str, str], ...] = (
    ("train", "progress"), ("train", "tensorboard"), ("train", "log_every"),
    ("train", "eval_every"), ("train", "ckpt_every"),
    ("train", "keep_checkpoints"), ("train", "profile_steps"),
    ("train", "eval_batch_size"), ("train", "max_epochs"),
    ("train", "keep_steps"),
    ("data", "cache_dir"), ("data", "tfds_data_dir"), ("data", "cache_workers"),
    # How the processes of a job find each other, not what they compute
    # (mesh.distributed stays hashed, as before these fields existed).
    ("mesh", "coordinator_address"), ("mesh", "num_processes"),
    ("mesh", "process_id"))


def differing_field(theirs: Mapping[str, Any], ours: Mapping[str, Any],
                    skip=()) -> Optional[Tuple[str, Any, Any]]:
  """('section.key', theirs, ours) of the first model/data/train field two
  JSON configs disagree on, ``RESUME_MUTABLE`` and ``skip`` aside; or None."""
  skip = set(RESUME_MUTABLE) | set(skip)
  for section in ("model", "data", "train"):
    a, b = theirs.get(section, {}), ours.get(section, {})
    for key in sorted(set(a) | set(b)):
      if (section, key) not in skip and a.get(key) != b.get(key):
        return f"{section}.{key}", a.get(key), b.get(key)
  return None


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
  mesh = _build(MeshConfig, "mesh", mesh_values(plain.get("mesh", {})))
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
  """A dataclass's fields as a plain {name: value} dict."""
  return {f.name: getattr(dc, f.name) for f in dataclasses.fields(dc)}
