"""Sharded Flax decoder LM: configs, model, data, training, checkpoints, sampling.

  config/   ConfigDict, config files and --config.* flags, the frozen
            sections (model, data, train, mesh) built once at the boundary
  data/     corpora, tokenizers, token cache, packing, eval set, sources
  model.py, step.py, trainer.py, checkpoint.py, sample.py, evaluate.py, ...
  flops.py  FLOP conventions (the registry scaling shares)
"""
import importlib

# Public name -> the module defining it.
_EXPORTS = {
    "ConfigError": "lm.config",
    "Config": "lm.config",
    "ModelConfig": "lm.config",
    "DataConfig": "lm.config",
    "TrainConfig": "lm.config",
    "MeshConfig": "lm.config",
    "default_config_dict": "lm.config",
    "from_config_dict": "lm.config",
    "ConfigDict": "lm.config.config_dict",
    "Transformer": "lm.model",
    "cross_entropy": "lm.model",
    "TrainingDiverged": "lm.trainer",
    "count_params": "lm.params",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
  """Resolves a public name from _EXPORTS when first used (PEP 562), so that
  ``import lm`` stays cheap and entry points run with ``python -m`` are
  not imported twice."""
  if name in _EXPORTS:
    return getattr(importlib.import_module(_EXPORTS[name]), name)
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
  return sorted(set(globals()) | set(__all__))
