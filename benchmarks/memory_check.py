r"""The memory model against this machine's compiler (issue 22).

Compiles the project's train and eval steps (lm.step) on the visible devices
(a GPU when one is lent: the real CUDA compiler, cuDNN attention) at a few
shapes and compares ``compiled.memory_analysis()`` per device with
``lm.accel.memory_model.estimate`` (calibrated on the TPU compiler). Nothing
runs: it only compiles.

  python benchmarks/memory_check.py --json=out/memory.json
  python benchmarks/memory_check.py --tiny            # CPU smoke test
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time

import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding, PartitionSpec

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The project's modules need the line above (run as a script).
from lm import optim, sharding, step as step_lib  # noqa: E402
from lm.accel import aot, memory_model  # noqa: E402
from lm.accel.spec import StepSpec  # noqa: E402
from lm.accel.verdict_cache import write_json_atomic  # noqa: E402
from lm.config import MeshConfig, ModelConfig, TrainConfig  # noqa: E402

# (name, L, d, heads, d_ff, vocab, mlp, per-device batch, remat)
SHAPES = (("gpt2_124m_b8", 12, 768, 12, 3072, 50304, "gelu", 8, False),
          ("gpt2_124m_b16_remat", 12, 768, 12, 3072, 50304, "gelu", 16, True),
          ("c4_small_474m_b4", 15, 1536, 24, 4096, 32000, "swiglu", 4, False))
TINY = (("tiny", 2, 64, 2, 192, 257, "swiglu", 4, False),
        ("tiny_remat", 2, 64, 2, 192, 257, "swiglu", 4, True))


def compile_here(spec, devices):
  """lm.accel.aot.compile_program's train and eval programs, compiled for
  ``devices`` (this machine's) instead of a TPU topology."""
  mesh = sharding.make_mesh(MeshConfig(shape=tuple(spec.mesh_shape)), devices)
  opts = step_lib.StepOptions(grad_accum=spec.grad_accum)
  c = step_lib.Compiled(spec.model, opts, mesh, tuple(spec.rules))
  rep = NamedSharding(mesh, PartitionSpec())
  hp = {k: jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=rep)
        for k, v in optim.traced_hparams(
            TrainConfig(steps=10, warmup_steps=1)).items()}
  T1 = spec.seq_len + 1
  fn, bsh = c.train_fn(spec.steps_per_call, spec.batch_size)
  efn, esh = c.eval_fn(spec.eval_batch_size)
  out = {}
  for prog, f, args in (
      ("train", fn, (c.abstract_state, jax.ShapeDtypeStruct(
          (spec.steps_per_call, spec.batch_size, T1), jnp.int32,
          sharding=bsh), hp)),
      ("eval", efn, (c.abstract_state.params, jax.ShapeDtypeStruct(
          (spec.eval_batches, spec.eval_batch_size, T1), jnp.int32,
          sharding=esh)))):
    t0 = time.perf_counter()
    compiled = f.lower(*args).compile()
    out[prog] = {"memory": aot.MemoryReport.of(compiled).to_dict(),
                 "xla_flops": None, "compile_s": time.perf_counter() - t0}
  return aot.result_of(out["train"], out["eval"])


def measure(shape, T: int, dtype: str):
  name, L, d, H, F, V, mlp, b, remat = shape
  n = jax.device_count()
  m = ModelConfig(vocab_size=V, d_model=d, n_layers=L, n_heads=H, d_ff=F,
                  max_seq_len=T, mlp=mlp, dtype=dtype, remat=remat).validate()
  spec = StepSpec(model=m, batch_size=b * n, grad_accum=1, steps_per_call=1,
                  eval_batch_size=b * n, eval_batches=2,
                  mesh_shape=(1, n, 1))
  res = compile_here(spec, jax.devices())
  est = memory_model.estimate(spec)
  return {"name": name, "device_kind": jax.devices()[0].device_kind,
          "n_devices": n, "spec": spec.to_dict(), "compiled": res.to_dict(),
          "modelled_train_bytes": est.train_bytes,
          "modelled_eval_bytes": est.eval_bytes,
          "train_error": est.train_bytes / res.train.total_bytes - 1,
          "eval_error": est.eval_bytes / res.eval.total_bytes - 1,
          "model": dataclasses.asdict(memory_model.CALIBRATED)}


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--tiny", action="store_true")
  p.add_argument("--T", type=int, default=1024)
  p.add_argument("--dtype", default="bfloat16")
  p.add_argument("--json")
  args = p.parse_args(argv)
  shapes, T = (TINY, 32) if args.tiny else (SHAPES, args.T)
  out = []
  for shape in shapes:
    try:
      r = measure(shape, T, args.dtype)
    except Exception as e:  # pylint: disable=broad-except  # record, go on
      r = {"name": shape[0], "error": f"{type(e).__name__}: "
                                      f"{' '.join(str(e).split())[:300]}"}
    out.append(r)
    if "error" in r:
      print(f"{r['name']}: FAILED {r['error']}")
    else:
      c = r["compiled"]
      print(f"{r['name']}: {r['n_devices']} x {r['device_kind']}: train "
            f"{c['train']['total_bytes'] / 2**30:.3f} GiB compiled, "
            f"{r['modelled_train_bytes'] / 2**30:.3f} modelled "
            f"({r['train_error']:+.1%}); eval "
            f"{c['eval']['total_bytes'] / 2**30:.3f} compiled, "
            f"{r['modelled_eval_bytes'] / 2**30:.3f} modelled "
            f"({r['eval_error']:+.1%})")
  if args.json:
    write_json_atomic(args.json, {"results": out})
  return 1 if any("error" in r for r in out) else 0


if __name__ == "__main__":
  sys.exit(main())
