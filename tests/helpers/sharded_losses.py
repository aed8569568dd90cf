"""Prints per-step losses for several mesh layouts as JSON (run with 8 host devices).

Used by tests/test_sharding.py in a subprocess, because XLA_FLAGS must be set
before JAX initialises.
"""
import json
import sys

import jax
import numpy as np

from lm import optim, sharding, step as step_lib
from lm.config import DEFAULT_RULES, MeshConfig, ModelConfig, TrainConfig


def losses_for(shape, devices, steps=6, grad_accum=1):
  mc = ModelConfig(vocab_size=256, d_model=64, n_layers=2, n_heads=4, d_ff=128,
                   max_seq_len=32).validate()
  tc = TrainConfig(batch_size=16, steps=100, warmup_steps=2, lr=3e-3,
                   grad_accum=grad_accum)
  mesh = sharding.make_mesh(MeshConfig(shape=shape), devices=devices)
  c = step_lib.compiled_for(mc, step_lib.StepOptions.from_train(tc), mesh,
                            DEFAULT_RULES)
  state = c.init(jax.random.key(0))
  hp = optim.traced_hparams(tc)
  fn, sh = c.train_fn(1, 16)
  rng = np.random.default_rng(0)
  # A learnable stream (repeated pattern + noise) so losses move.
  base = rng.integers(0, 256, size=64)
  out = []
  for s in range(steps):
    starts = rng.integers(0, 32, size=16)
    rows = np.stack([np.roll(base, -int(i))[:33] for i in starts])
    batch = step_lib.device_put_batch(rows[None].astype(np.int32), sh,
                                      (1, 16, 33))
    state, m = fn(state, batch, hp)
    out.append(float(m["loss"][0]))
  spec = {k: str(v.sharding.spec) for k, v in
          [("embedding", state.params["embedding"]),
           ("w_q", state.params["block_0"]["attn"]["w_q"]),
           ("w_up", state.params["block_0"]["mlp"]["w_up"])]}
  return {"losses": out, "specs": spec}


def main():
  devs = jax.devices()
  assert len(devs) == 8, f"expected 8 host devices, got {len(devs)}"
  res = {"single": losses_for((1, 1, 1), devs[:1])}
  for shape in [(8, 1, 1), (2, 2, 2), (1, 2, 4)]:
    res["x".join(map(str, shape))] = losses_for(shape, devs)
  res["accum2_single"] = losses_for((1, 1, 1), devs[:1], grad_accum=2)
  res["accum2_2x2x2"] = losses_for((2, 2, 2), devs, grad_accum=2)
  json.dump(res, sys.stdout)


if __name__ == "__main__":
  main()
