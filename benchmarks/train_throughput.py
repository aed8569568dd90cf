r"""Training throughput: tokens/s, achieved TFLOP/s and MFU after warm-up.

Runs the project's own jitted train step (lm.step) on synthetic tokens, on
whatever devices JAX sees (CPU, one GPU, a TPU slice). Needs no dataset, no
tfds and no TensorBoard, so it runs on a bare accelerator image.

  python benchmarks/train_throughput.py --preset=gpt2_124m
  python benchmarks/train_throughput.py --L=6 --d=384 --T=1024 --B=64 --dtype=bfloat16
  python benchmarks/train_throughput.py --config=lm/configs/tiny.py

Presets (GPT-2-like: GELU MLP, d_ff = 4d, vocab 50304, tied embeddings):
  30m (L6 d384 B64), gpt2_124m (L12 d768 B32), 354m (L24 d1024 B16); T=1024.
MFU uses PaLM's model FLOPs (6N + 12·L·d·T per token, Chowdhery et al. 2022
App. B) over the device peak from lm.hardware.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PRESETS = {
    "30m": dict(L=6, d=384, heads=6, B=64),
    "gpt2_124m": dict(L=12, d=768, heads=12, B=32),
    "354m": dict(L=24, d=1024, heads=16, B=16),
}


def parse(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--preset", choices=sorted(PRESETS))
  p.add_argument("--config", help="lm config file (model/train sections used)")
  p.add_argument("--L", type=int)
  p.add_argument("--d", type=int)
  p.add_argument("--heads", type=int)
  p.add_argument("--T", type=int, default=1024)
  p.add_argument("--B", type=int)
  p.add_argument("--vocab", type=int, default=50304)
  p.add_argument("--mlp", default="gelu", choices=["gelu", "swiglu"])
  p.add_argument("--dtype", default=None,
                 help="compute dtype (default bfloat16 on accelerators, "
                 "float32 on CPU)")
  p.add_argument("--attention", default="auto", choices=["auto", "xla", "cudnn"])
  p.add_argument("--remat", action="store_true")
  p.add_argument("--steps_per_call", type=int, default=1)
  p.add_argument("--warmup", type=int, default=3, help="calls before timing")
  p.add_argument("--calls", type=int, default=10, help="timed calls")
  return p.parse_args(argv)


def main(argv=None) -> int:
  args = parse(argv)
  import jax
  import jax.numpy as jnp
  import numpy as np

  from lm import flops, hardware, optim, sharding, step as step_lib
  from lm.config import (ConfigError, MeshConfig, ModelConfig, TrainConfig,
                         DEFAULT_RULES)

  on_cpu = jax.default_backend() == "cpu"
  dtype = args.dtype or ("float32" if on_cpu else "bfloat16")
  if args.config:
    import importlib.util
    spec = importlib.util.spec_from_file_location("cfg", args.config)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    cd = mod.get_config()
    m = dict(cd.model)
    T = args.T if args.T != 1024 else int(cd.data.seq_len)
    B = args.B or int(cd.train.batch_size)
    m.update(vocab_size=257 if cd.data.tokenizer == "byte" else args.vocab,
             max_seq_len=T)
    if args.dtype:
      m["dtype"] = args.dtype
    mc = ModelConfig(**m)
  else:
    base = dict(PRESETS.get(args.preset, {}))
    L, d = args.L or base.get("L"), args.d or base.get("d")
    if not (L and d):
      print("error: give --preset, --config, or --L and --d", file=sys.stderr)
      return 2
    heads = args.heads or base.get("heads") or max(1, d // 64)
    B = args.B or base.get("B", 16)
    T = args.T
    mc = ModelConfig(vocab_size=args.vocab, d_model=d, n_layers=L,
                     n_heads=heads, d_ff=4 * d if args.mlp == "gelu" else
                     int(8 * d / 3 + 127) // 128 * 128, max_seq_len=T,
                     mlp=args.mlp, dtype=dtype, attention_impl=args.attention,
                     remat=args.remat)
  try:
    mc = mc.validate()
  except ConfigError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2

  tc = TrainConfig(batch_size=B, steps=10_000, warmup_steps=10)
  mesh = sharding.make_mesh(MeshConfig())
  c = step_lib.compiled_for(mc, step_lib.StepOptions.from_train(tc), mesh,
                            DEFAULT_RULES)
  state = c.init(jax.random.key(0))
  hp = {k: jnp.asarray(v, jnp.float32) for k, v in
        optim.hparams_from(tc).items()}
  K = args.steps_per_call
  fn, batch_sh = c.train_fn(K, B)
  rng = np.random.default_rng(0)
  data = rng.integers(0, mc.vocab_size, size=(K, B, T + 1), dtype=np.int32)
  batch = step_lib.device_put_batch(data, batch_sh, data.shape)

  t0 = time.perf_counter()
  for _ in range(args.warmup):
    state, m = fn(state, batch, hp)
  jax.block_until_ready(m["loss"])
  warm_s = time.perf_counter() - t0
  t0 = time.perf_counter()
  for _ in range(args.calls):
    state, m = fn(state, batch, hp)
  jax.block_until_ready(m["loss"])
  dt = time.perf_counter() - t0

  from lm.params import count_params
  n = count_params(mc)
  tokens = args.calls * K * B * T
  tok_s = tokens / dt
  fpt = flops.flops_per_token(mc, T, "attention_inclusive")
  peak, src = hardware.device_peak_flops(dtype=mc.dtype)
  n_dev = jax.device_count()
  achieved = tok_s * fpt
  print(f"device: {jax.devices()[0].device_kind} x{n_dev} ({jax.default_backend()}), "
        f"jax {jax.__version__}")
  print(f"model: L={mc.n_layers} d={mc.d_model} heads={mc.n_heads} "
        f"d_ff={mc.d_ff} V={mc.vocab_size} mlp={mc.mlp} dtype={mc.dtype} "
        f"attention={mc.attention_impl}; N={n.total:,} "
        f"(non-embedding {n.non_embedding:,})")
  print(f"batch: B={B} T={T} steps/call={K}; warm-up {args.warmup} calls "
        f"{warm_s:.1f}s (incl. compile); timed {args.calls} calls {dt:.2f}s")
  print(f"tokens/s: {tok_s:,.0f}")
  print(f"achieved: {achieved / 1e12:.2f} TFLOP/s (attention_inclusive "
        f"model FLOPs, {fpt:.4g}/token)")
  print(f"MFU: {hardware.mfu(achieved, n_dev, peak):.1%} of "
        f"{peak / 1e12:.1f} TFLOP/s/device ({src})")
  return 0


if __name__ == "__main__":
  sys.exit(main())
