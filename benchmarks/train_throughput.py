r"""Training throughput: tokens/s, achieved TFLOP/s and MFU after warm-up.

Runs the project's own jitted train step (lm.step) on synthetic tokens, on
whatever devices JAX sees (CPU, one GPU, a TPU slice). Needs no dataset, no
tfds and no TensorBoard, so it runs on a bare accelerator image.

  python benchmarks/train_throughput.py --preset=gpt2_124m
  python benchmarks/train_throughput.py --preset 30m gpt2_124m 354m --json=out/throughput.json
  python benchmarks/train_throughput.py --L=6 --d=384 --T=1024 --B=64 --dtype=bfloat16
  python benchmarks/train_throughput.py --config=lm/configs/tiny.py
  python benchmarks/train_throughput.py --preset=30m --profile=out/profile  # jax.profiler trace

Presets (GPT-2-like: GELU MLP, d_ff = 4d, vocab 50304, tied embeddings):
  30m (L6 d384 B64), gpt2_124m (L12 d768 B32), 354m (L24 d1024 B16); T=1024.
Each preset prints its goal: GOAL_FACTOR x the tokens/s per device that a
compiled PyTorch GPT with flash attention reaches on one H100 at the same
shapes (reference figures from issue 13, not measured here).
MFU uses PaLM's model FLOPs (6N + 12·L·d·T per token, Chowdhery et al. 2022
App. B) over the device peak from lm.hardware.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import sys
import time
from typing import Any, Dict, List, Optional
from lm.config import ModelConfig
from lm import safe_io
from lm.config.flags import load_config_file
from lm import flops, hardware, optim, profiling, sharding, step as step_lib
from lm.config import DEFAULT_RULES, MeshConfig, TrainConfig
from lm.params import count_params
from lm.config import ConfigError

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# ref_tokens_per_s: compiled PyTorch GPT + flash attention, one H100, same
# (L, d, B, T=1024) -- the reference of issue 13.
PRESETS = {
    "30m": dict(L=6, d=384, heads=6, B=64, ref_tokens_per_s=1.43e6),
    "gpt2_124m": dict(L=12, d=768, heads=12, B=32, ref_tokens_per_s=470e3),
    "354m": dict(L=24, d=1024, heads=16, B=16, ref_tokens_per_s=177e3),
}
GOAL_FACTOR = 1.25       # goal: >= 1.25 x the reference tokens/s per device
# --tiny (CI smoke tests): every preset keeps its name, runs at these shapes.
TINY = dict(L=1, d=32, heads=2, B=4, T=32, vocab=257)


def parse(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--preset", nargs="+", choices=sorted(PRESETS))
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
  p.add_argument("--fallback_attention", choices=["auto", "xla", "cudnn"],
                 help="if a job fails, run it once more with this attention")
  p.add_argument("--remat", action="store_true")
  p.add_argument("--steps_per_call", type=int, default=1)
  p.add_argument("--warmup", type=int, default=3, help="calls before timing")
  p.add_argument("--calls", type=int, default=10, help="timed calls")
  p.add_argument("--tiny", action="store_true",
                 help=f"presets at tiny shapes {TINY} (CI smoke test)")
  p.add_argument("--profile", nargs="?", const="profile", default=None,
                 metavar="DIR", help="write a jax.profiler trace of the timed "
                 "calls to DIR (default ./profile; DIR/<preset> per preset)")
  p.add_argument("--json", metavar="PATH", help="also write the results here")
  return p.parse_args(argv)


def _model(args, dtype: str, L: int, d: int, heads: int, T: int, vocab: int):
  d_ff = 4 * d if args.mlp == "gelu" else int(8 * d / 3 + 127) // 128 * 128
  return ModelConfig(vocab_size=vocab, d_model=d, n_layers=L, n_heads=heads,
                     d_ff=d_ff, max_seq_len=T, mlp=args.mlp, dtype=dtype,
                     attention_impl=args.attention, remat=args.remat)


def jobs_from_args(args, dtype: str) -> List[Dict[str, Any]]:
  """[{name, mc, B, T, ref_tokens_per_s}] to measure; ValueError for bad flags."""
  if args.config:
    cd = load_config_file(args.config)
    m = dict(cd.model)
    T = args.T if args.T != 1024 else int(cd.data.seq_len)
    m.update(vocab_size=257 if cd.data.tokenizer == "byte" else args.vocab,
             max_seq_len=T, **({"dtype": args.dtype} if args.dtype else {}))
    return [dict(name=os.path.basename(args.config), mc=ModelConfig(**m),
                 B=args.B or int(cd.train.batch_size), T=T)]
  if args.preset:
    out = []
    for name in args.preset:
      p = dict(PRESETS[name], T=args.T, vocab=args.vocab)
      if args.tiny:
        p.update(TINY)
      out.append(dict(name=name, B=p["B"], T=p["T"],
                      mc=_model(args, dtype, p["L"], p["d"], p["heads"],
                                p["T"], p["vocab"]),
                      ref_tokens_per_s=PRESETS[name]["ref_tokens_per_s"],
                      tiny=bool(args.tiny)))
    return out
  if not (args.L and args.d):
    raise ValueError("give --preset, --config, or --L and --d")
  heads = args.heads or max(1, args.d // 64)
  return [dict(name=f"L{args.L}_d{args.d}", B=args.B or 16, T=args.T,
               mc=_model(args, dtype, args.L, args.d, heads, args.T,
                         args.vocab))]


def measure(mc, B: int, T: int, args, profile_dir: Optional[str]) -> Dict[str, Any]:
  """Compiles and times the train step of ``mc``; returns its figures."""
  import jax
  import numpy as np


  tc = TrainConfig(batch_size=B, steps=10_000, warmup_steps=10)
  mesh = sharding.make_mesh(MeshConfig())
  c = step_lib.compiled_for(mc, step_lib.StepOptions.from_train(tc), mesh,
                            DEFAULT_RULES)
  state = c.init(jax.random.key(0))
  hp = optim.traced_hparams(tc)
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
  with (profiling.trace(profile_dir) if profile_dir
        else contextlib.nullcontext()):
    t0 = time.perf_counter()
    for _ in range(args.calls):
      state, m = fn(state, batch, hp)
    jax.block_until_ready(m["loss"])
    dt = time.perf_counter() - t0

  n = count_params(mc)
  n_dev = jax.device_count()
  tok_s = args.calls * K * B * T / dt
  fpt = flops.flops_per_token(mc, T, "attention_inclusive")
  peak, src = hardware.device_peak_flops(dtype=mc.dtype, strict=False)
  return {
      "device_kind": jax.devices()[0].device_kind, "n_devices": n_dev,
      "backend": jax.default_backend(), "jax": jax.__version__,
      "L": mc.n_layers, "d_model": mc.d_model, "n_heads": mc.n_heads,
      "d_ff": mc.d_ff, "vocab_size": mc.vocab_size, "mlp": mc.mlp,
      "dtype": mc.dtype, "attention_impl": mc.attention_impl, "B": B, "T": T,
      "steps_per_call": K, "N": n.total, "N_non_embedding": n.non_embedding,
      "warmup_calls": args.warmup, "warmup_s": warm_s,
      "timed_calls": args.calls, "timed_s": dt,
      "tokens_per_s": tok_s, "tokens_per_s_per_device": tok_s / n_dev,
      "flops_per_token": fpt, "flop_convention": "attention_inclusive",
      "achieved_flops_per_s": tok_s * fpt,
      "mfu": hardware.mfu(tok_s * fpt, n_dev, peak),
      "peak_flops_per_device": peak, "peak_source": src,
      "final_loss": float(m["loss"][-1]),
      "profile_dir": profile_dir,
  }


def goal_line(r: Dict[str, Any]) -> str:
  """'goal: ...' for a preset result (per device, against issue 13's reference)."""
  ref = r["ref_tokens_per_s"]
  goal = GOAL_FACTOR * ref
  got = r.get("tokens_per_s_per_device")
  if r.get("tiny"):
    verdict = "not compared (tiny smoke-test shapes)"
  elif got is None:
    verdict = "not measured"
  else:
    verdict = f"{got / goal:.2f}x of goal: {'MET' if got >= goal else 'NOT met'}"
  return (f"goal: >= {goal:,.0f} tokens/s/device ({GOAL_FACTOR} x {ref:,.0f}: "
          f"compiled PyTorch GPT + flash attention, one H100, same shapes) "
          f"-> {verdict}")


def report(r: Dict[str, Any]) -> None:
  print(f"== {r['name']}: device {r['device_kind']} x{r['n_devices']} "
        f"({r['backend']}), jax {r['jax']}")
  print(f"model: L={r['L']} d={r['d_model']} heads={r['n_heads']} "
        f"d_ff={r['d_ff']} V={r['vocab_size']} mlp={r['mlp']} "
        f"dtype={r['dtype']} attention={r['attention_impl']}; N={r['N']:,} "
        f"(non-embedding {r['N_non_embedding']:,})")
  print(f"batch: B={r['B']} T={r['T']} steps/call={r['steps_per_call']}; "
        f"warm-up {r['warmup_calls']} calls {r['warmup_s']:.1f}s (incl. "
        f"compile); timed {r['timed_calls']} calls {r['timed_s']:.2f}s")
  print(f"tokens/s: {r['tokens_per_s']:,.0f} "
        f"({r['tokens_per_s_per_device']:,.0f} per device)")
  print(f"achieved: {r['achieved_flops_per_s'] / 1e12:.2f} TFLOP/s "
        f"(attention_inclusive model FLOPs, {r['flops_per_token']:.4g}/token)")
  print(f"MFU: {r['mfu']:.1%} of {r['peak_flops_per_device'] / 1e12:.1f} "
        f"TFLOP/s/device ({r['peak_source']})")
  if "ref_tokens_per_s" in r:
    print(goal_line(r))
  if r.get("profile_dir"):
    print(f"profile: {r['profile_dir']}")


def main(argv=None) -> int:
  args = parse(argv)
  import jax
  dtype = args.dtype or ("float32" if jax.default_backend() == "cpu"
                         else "bfloat16")
  try:
    jobs = jobs_from_args(args, dtype)
    for job in jobs:
      job["mc"] = job["mc"].validate()
  except (ConfigError, ValueError, TypeError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  results = []
  for job in jobs:
    prof = args.profile and (os.path.join(args.profile, job["name"])
                             if len(jobs) > 1 else args.profile)
    results.append(run_job(job, args, prof))
    if args.json:  # after every job: a later crash or timeout keeps these
      _write_json(args.json, results)
  return 1 if any("error" in r for r in results) else 0


def run_job(job: Dict[str, Any], args, profile_dir: Optional[str]) -> Dict[str, Any]:
  """measure() one job; a failure (e.g. out of memory, a kernel the device
  lacks) is recorded, retried once with ``--fallback_attention`` if set."""
  mc = job.pop("mc")
  out: Dict[str, Any] = dict(job)
  while True:
    try:
      out.update(measure(mc, job["B"], job["T"], args, profile_dir))
      report(out)
      return out
    except Exception as e:  # pylint: disable=broad-except  # record, go on
      err = f"{type(e).__name__}: {' '.join(str(e).split())[:500]}"
      print(f"== {job['name']} (attention={mc.attention_impl}): FAILED {err}",
            file=sys.stderr)
      fallback = args.fallback_attention
      if not fallback or fallback == mc.attention_impl or "first_error" in out:
        out["error"] = err
        return out
      out.update(first_error=err, attention_fallback_from=mc.attention_impl)
      mc = dataclasses.replace(mc, attention_impl=fallback)


def _write_json(path: str, results: List[Dict[str, Any]]) -> None:
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  safe_io.atomic_write_json(
      path, {"results": results, "goal_factor": GOAL_FACTOR,
             "reference": "compiled PyTorch GPT + flash attention, one H100, "
                          "same shapes (issue 13)"}, indent=2, default=str)


if __name__ == "__main__":
  sys.exit(main())
