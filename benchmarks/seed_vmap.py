r"""Does training S seeds of one shape in one jitted step pay? (issue 11, item 5)

For a model shape, times S separate train steps (one jitted call per seed,
as S independent runs do) against one ``jax.vmap``-ed step over S stacked
parameter sets, optimizer states and batches (one call for all seeds), on
the project's model (lm.model.Transformer, cross_entropy) and optimizer
(lm.optim.make_optimizer: AdamW + clipping + the traced schedule). Prints
tokens/s per seed for both and their ratio. Synthetic tokens; ``steps_per_call``
steps are fused with ``lax.scan`` in both variants, as the trainer does.

  python -m benchmarks.seed_vmap [--d 16 32 64] [--seeds 2 4 8] [--B 8 --T 64]

Only a measurement: the trainer does not train several seeds in one step
(docs/wsd.md says why it was left out).
"""
from __future__ import annotations

import argparse
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from lm import optim
from lm import safe_io
from lm.config import default_config_dict, from_config_dict
from lm.model import Transformer, cross_entropy


def _setup(d: int, L: int, T: int, B: int):
  cd = default_config_dict(
      model=dict(d_model=d, n_layers=L, n_heads=max(1, d // 16),
                 d_ff=(3 * d) // 8 * 8 or 8, max_seq_len=T, mlp="swiglu",
                 tie_embeddings=True),
      data=dict(seq_len=T),
      train=dict(batch_size=B, steps=10_000, warmup_steps=10, lr=1e-2,
                 schedule="wsd"))
  cfg = from_config_dict(cd, vocab_size=257)
  model = Transformer(cfg.model)
  hp = optim.traced_hparams(cfg.train)
  tx = optim.make_optimizer(cfg.train, hp)

  def init(key):
    params = model.init(key, jnp.zeros((1, T), jnp.int32))["params"]
    params = jax.tree.map(lambda x: getattr(x, "value", x), params)
    return params, tx.init(params)

  def one_step(carry, tokens_BxT1):
    params, opt = carry

    def loss_fn(p):
      logits = model.apply({"params": p}, tokens_BxT1[:, :-1])
      return cross_entropy(logits, tokens_BxT1[:, 1:])[0]
    loss, g = jax.value_and_grad(loss_fn)(params)
    upd, opt = tx.update(g, opt, params)
    return (optax.apply_updates(params, upd), opt), loss

  def call(carry, tokens_SPCxBxT1):
    return jax.lax.scan(one_step, carry, tokens_SPCxBxT1)
  return init, call


def _time(fn, args, reps: int) -> float:
  out = fn(*args)
  jax.block_until_ready(out)       # compile + warm-up
  t0 = time.perf_counter()
  for _ in range(reps):
    out = fn(*args)
  jax.block_until_ready(out)
  return (time.perf_counter() - t0) / reps


def measure(d: int, S: int, *, L=1, T=64, B=8, spc=100, reps=5):
  init, call = _setup(d, L, T, B)
  keys = jax.random.split(jax.random.PRNGKey(0), S)
  rng = np.random.default_rng(0)
  tokens = jnp.asarray(rng.integers(0, 257, (S, spc, B, T + 1)), jnp.int32)
  single = jax.jit(call)
  carries = [init(k) for k in keys]
  t_sep = 0.0
  for s in range(S):    # S runs, one after another (each its own calls)
    t_sep += _time(single, (carries[s], tokens[s]), reps)
  stacked = jax.tree.map(lambda *x: jnp.stack(x), *carries)
  t_vmap = _time(jax.jit(jax.vmap(call)), (stacked, tokens), reps)
  tok = spc * B * T
  return {"d_model": d, "seeds": S, "tokens_per_s_per_seed_separate":
          tok / (t_sep / S), "tokens_per_s_per_seed_vmap": tok / (t_vmap / S),
          "speedup": t_sep / t_vmap}


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--d", type=int, nargs="+", default=[16, 32, 64])
  p.add_argument("--seeds", type=int, nargs="+", default=[2, 4])
  p.add_argument("--B", type=int, default=8)
  p.add_argument("--T", type=int, default=64)
  p.add_argument("--json", default=None)
  a = p.parse_args(argv)
  rows = []
  print(f"{jax.device_count()} x {jax.devices()[0].device_kind}; L=1, "
        f"B={a.B}, T={a.T}, 100 steps per call")
  print("| d_model | seeds | tok/s per seed, separate | tok/s per seed, vmap | "
        "speed-up |\n|---|---|---|---|---|")
  for d in a.d:
    for S in a.seeds:
      r = measure(d, S, T=a.T, B=a.B)
      rows.append(r)
      print(f"| {d} | {S} | {r['tokens_per_s_per_seed_separate']:,.0f} | "
            f"{r['tokens_per_s_per_seed_vmap']:,.0f} | {r['speedup']:.2f}x |")
  if a.json:
    safe_io.atomic_write_json(a.json, rows, indent=1)
  return 0


if __name__ == "__main__":
  sys.exit(main())
