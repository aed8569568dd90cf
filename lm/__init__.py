"""Sharded Flax decoder LM: configs, model, data, training, checkpoints, sampling.

  config/   ConfigDict, config files and --config.* flags, the frozen
            sections (model, data, train, mesh) built once at the boundary
  data/     corpora, tokenizers, token cache, packing, eval set, sources
  model.py, step.py, trainer.py, checkpoint.py, sample.py, evaluate.py, ...
  flops.py  FLOP conventions (the registry scaling shares)
"""
from lm.lazy_exports import lazy_exports

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

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
