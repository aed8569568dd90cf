r"""Sample text from the latest checkpoint of a run (read-only: a bad latest
checkpoint is skipped in memory, the workdir is never changed).

  python -m lm.sample --workdir=/tmp/tiny --prompt="def main(" \
      [--temperature=0.8 --top_k=40 --max_tokens=200 --seed=0]
"""
from __future__ import annotations

import functools
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
from absl import flags

from lm import cli, logs, sharding, step as step_lib
from lm.config import ConfigError, MeshConfig, ModelConfig, TrainConfig
from lm.model import Transformer
from lm.checkpoint import Checkpointer
from lm.data.tokenizers import load_tokenizer
from lm.validation import check_int, check_real

_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory of lm.train.")
_PROMPT = flags.DEFINE_string("prompt", "", "Text to continue.")
_TEMPERATURE = flags.DEFINE_float("temperature", 0.8, "0 = greedy.",
                                   lower_bound=0.0)
_TOP_K = flags.DEFINE_integer("top_k", 40, "Sample from the k most likely "
                              "tokens; 0 = all.", lower_bound=0)
MAX_TOKENS_LIMIT = 1_000_000
_MAX_TOKENS = flags.DEFINE_integer("max_tokens", 200, "Tokens to generate.",
                                   lower_bound=1, upper_bound=MAX_TOKENS_LIMIT)
_SEED = flags.DEFINE_integer("seed", 0, "Sampling seed.", lower_bound=0,
                             upper_bound=2**31 - 1)
flags.register_validator("temperature", math.isfinite,
                         message="--temperature must be a finite number >= 0")


def load_run(workdir: str):
  """(model_cfg, params, tokenizer, step) from the newest readable checkpoint."""

  meta = logs.read_json(os.path.join(workdir, "run.json"))
  if meta is None:
    raise FileNotFoundError(f"{workdir}/run.json not found: not an lm.train "
                            "workdir")
  try:
    c = meta["config"]
    mc = ModelConfig(**dict(c["model"])).validate()
    tc = TrainConfig(**dict(c["train"]))
  except (KeyError, TypeError) as e:
    raise ConfigError(f"{workdir}/run.json does not describe a run this "
                      f"version can load ({type(e).__name__}: {e})") from None
  mesh = sharding.make_mesh(MeshConfig(shape=(1, 1, 1)),
                            devices=jax.devices()[:1])
  compiled = step_lib.compiled_for(mc, step_lib.StepOptions.from_train(tc),
                                   mesh, MeshConfig().rules)
  ckpt_dir = os.path.join(workdir, "checkpoints")
  if not os.path.isdir(ckpt_dir):
    raise FileNotFoundError(f"no checkpoint in {ckpt_dir}")

  def check(step, record):  # run.json and the checkpoint must agree
    if record and (record.get("config") or {}).get("model") != c["model"]:
      raise ConfigError(f"{ckpt_dir}/{step} was written by another model "
                        f"config than {workdir}/run.json describes")

  ckpt = Checkpointer(ckpt_dir, read_only=True)
  try:
    restored = ckpt.restore_latest(compiled.abstract_state, check=check)
  finally:
    ckpt.close()
  if restored is None:
    raise FileNotFoundError(f"no checkpoint in {ckpt_dir}")
  return mc, restored.state.params, load_tokenizer(workdir), restored.step


@functools.partial(jax.jit, static_argnames=("model", "top_k"))
def _next_token(model, params, buf_1xT, n, rng, temperature, top_k: int):
  logits_1xTxV = model.apply({"params": params}, buf_1xT)
  logits_V = logits_1xTxV[0, n - 1]
  if top_k:
    kth = jax.lax.top_k(logits_V, top_k)[0][-1]
    logits_V = jnp.where(logits_V < kth, -jnp.inf, logits_V)
  greedy = jnp.argmax(logits_V)
  sampled = jax.random.categorical(rng, logits_V / jnp.maximum(temperature,
                                                               1e-6))
  return jnp.where(temperature > 0, sampled, greedy)


def generate(model_cfg: ModelConfig, params, tokenizer, prompt: str, *,
             max_tokens: int = 200, temperature: float = 0.8,
             top_k: int = 40, seed: int = 0) -> str:
  """Autoregressive sampling; a sliding window of ``max_seq_len`` tokens."""
  check_int("max_tokens", max_tokens, 1, MAX_TOKENS_LIMIT)
  check_real("temperature", temperature, 0, meaning="0 = greedy")
  check_int("top_k", top_k, 0, meaning="0 = all tokens")
  check_int("seed", seed, 0, 2**31 - 1)
  T = model_cfg.max_seq_len
  top_k = min(top_k, model_cfg.vocab_size)
  model = Transformer(model_cfg)
  ids = list(tokenizer.encode(prompt)) if prompt else [tokenizer.eos_id]
  out = []
  rng = jax.random.key(seed)
  for _ in range(max_tokens):
    window = (ids + out)[-T:]
    buf = np.zeros((1, T), np.int32)
    buf[0, :len(window)] = window
    rng, sub = jax.random.split(rng)
    tok = int(_next_token(model, params, jnp.asarray(buf), len(window), sub,
                          jnp.float32(temperature), top_k))
    if tok == tokenizer.eos_id:
      break
    out.append(tok)
  return tokenizer.decode(out)


def main(argv):
  del argv
  if not _WORKDIR.value:
    raise ConfigError("--workdir=<run directory> is required")
  mc, params, tok, step = load_run(_WORKDIR.value)
  text = generate(mc, params, tok, _PROMPT.value, max_tokens=_MAX_TOKENS.value,
                  temperature=_TEMPERATURE.value, top_k=_TOP_K.value,
                  seed=_SEED.value)
  print(_PROMPT.value + text)


if __name__ == "__main__":
  cli.run(main)
