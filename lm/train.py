r"""Train (or resume) a decoder LM.

  python -m lm.train --config=lm/configs/tiny.py --workdir=/tmp/tiny \
      [--config.train.steps=2000 --config.model.d_model=128 ...]
"""
from absl import flags
from lm.config import flags as config_flags

from lm import cli
from lm.config import ConfigError
from lm import sharding
from lm.trainer import train

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Path to a config file (lm/configs/*.py).",
    lock_config=True)
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Run directory: checkpoints, metrics.jsonl, run.json. "
    "Re-running with the same workdir resumes.")


def main(argv):
  del argv
  if _CONFIG.value is None:
    raise ConfigError("--config=<path to config .py> is required")
  if not _WORKDIR.value:
    raise ConfigError("--workdir=<run directory> is required")
  # Before any other JAX call (multi-host): jax.distributed.initialize().
  sharding.maybe_initialize_distributed(_CONFIG.value.mesh)
  meta = train(_CONFIG.value, _WORKDIR.value)
  p = meta["params"]
  print(f"done: step {meta['final_step']}, eval_loss {meta['eval_loss']:.4f} "
        f"nats/token, train_loss {meta['train_loss']:.4f}, N={p['total']:,} "
        f"({p['non_embedding']:,} non-embedding), "
        f"{meta['tokens']:,} tokens, {meta['flops']:.3e} FLOPs "
        f"[{meta['flop_convention']}], {meta['wall_time_s']:.1f}s "
        f"-> {_WORKDIR.value}")


if __name__ == "__main__":
  cli.run(main)
