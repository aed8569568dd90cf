"""Compile a run's real train and eval steps for a TPU slice, without a TPU.

``jax.experimental.topologies.get_topology_desc`` (with libtpu installed:
``pip install -e '.[tpu]'``) describes the devices of a slice; a Mesh of those
devices, NamedShardings on it and ``jax.ShapeDtypeStruct`` inputs let
``jax.jit(...).lower(...).compile()`` run the real TPU compiler here (the
approach of MaxText's train_compile.py). The compiled executable's
``memory_analysis()`` gives the bytes per chip; ``cost_analysis()`` XLA's
FLOPs per chip. Works with ``JAX_PLATFORMS=cpu``.

The train step compiled is ``lm.step.Compiled.train_fn(steps_per_call,
batch_size)`` (with the spec's grad_accum and model.remat), the eval step
``Compiled.eval_fn(eval_batch_size)`` over ``eval_batches`` batches: the
functions a run calls, on the run's mesh and shardings.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib.util
import os
import time
from typing import Any, Dict, Optional

import jax
import jax.numpy as jnp
from jax.experimental import topologies
from jax.sharding import NamedSharding, PartitionSpec

from lm import optim, sharding, step as step_lib
from lm.accel.spec import StepSpec
from lm.accel.targets import Target
from lm.config import ConfigError, MeshConfig, TrainConfig


@dataclasses.dataclass(frozen=True)
class MemoryReport:
  """``compiled.memory_analysis()`` of one program, bytes per device."""
  argument_bytes: int
  output_bytes: int
  alias_bytes: int         # outputs that reuse (donated) argument buffers
  temp_bytes: int
  code_bytes: int

  @property
  def total_bytes(self) -> int:
    """Peak live bytes per device: arguments + outputs not aliased to
    arguments + temporaries + generated code."""
    return (self.argument_bytes + self.output_bytes - self.alias_bytes
            + self.temp_bytes + self.code_bytes)

  @classmethod
  def of(cls, compiled) -> "MemoryReport":
    m = compiled.memory_analysis()
    return cls(argument_bytes=int(m.argument_size_in_bytes),
               output_bytes=int(m.output_size_in_bytes),
               alias_bytes=int(m.alias_size_in_bytes),
               temp_bytes=int(m.temp_size_in_bytes),
               code_bytes=int(m.generated_code_size_in_bytes))

  def to_dict(self) -> Dict[str, int]:
    return {**dataclasses.asdict(self), "total_bytes": self.total_bytes}


@dataclasses.dataclass(frozen=True)
class CompileResult:
  """What the TPU compiler said about one StepSpec on one target."""
  train: MemoryReport
  eval: MemoryReport
  train_xla_flops: Optional[float]   # per device, one train call (K steps)
  eval_xla_flops: Optional[float]    # per device, one eval call
  train_compile_s: float
  eval_compile_s: float

  @property
  def peak_bytes(self) -> int:
    """The larger of the two programs' peaks (they never run at once; the
    eval program's arguments are the params the train state holds)."""
    return max(self.train.total_bytes, self.eval.total_bytes)

  def to_dict(self) -> Dict[str, Any]:
    return {"train": self.train.to_dict(), "eval": self.eval.to_dict(),
            "train_xla_flops": self.train_xla_flops,
            "eval_xla_flops": self.eval_xla_flops,
            "train_compile_s": self.train_compile_s,
            "eval_compile_s": self.eval_compile_s,
            "peak_bytes": self.peak_bytes}

  @classmethod
  def from_dict(cls, d: Dict[str, Any]) -> "CompileResult":
    def mem(x):
      return MemoryReport(**{k: int(v) for k, v in x.items()
                             if k != "total_bytes"})
    return cls(train=mem(d["train"]), eval=mem(d["eval"]),
               train_xla_flops=d.get("train_xla_flops"),
               eval_xla_flops=d.get("eval_xla_flops"),
               train_compile_s=float(d["train_compile_s"]),
               eval_compile_s=float(d["eval_compile_s"]))


@functools.lru_cache(maxsize=8)
def topology_devices(target: Target):
  """The device descriptions of a TPU target (needs libtpu)."""
  if not target.compilable:
    raise ConfigError(f"target {target.name} is a GPU target: no deviceless "
                      "compiler; its memory is modelled (lm.accel.memory_model)")
  # Compile-only use: several processes may load libtpu at once (each would
  # otherwise take /tmp/libtpu_lockfile, which only a TPU VM needs).
  os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")
  try:
    desc = topologies.get_topology_desc(
        platform="tpu", topology_name=target.topology,
        chip_config_name=target.chip_config,
        chips_per_host_bounds=target.chips_per_host, num_slices=1,
        wrap=(False,) * len(target.chips_per_host))
  except Exception as e:  # pylint: disable=broad-except  # no libtpu, etc.
    raise ConfigError(
        f"cannot describe TPU topology {target.topology} "
        f"({(str(e).splitlines() or [''])[0][:160]}); the deviceless TPU "
        "compiler needs libtpu: pip install -e '.[tpu]'") from None
  devices = list(desc.devices)
  if len(devices) != target.n_devices:
    raise ConfigError(f"topology {target.topology} gave {len(devices)} "
                      f"devices, expected {target.n_devices} for {target.name}")
  return devices


def tpu_available() -> bool:
  """Whether libtpu (the deviceless TPU compiler) is importable."""
  return importlib.util.find_spec("libtpu") is not None


def _xla_flops(compiled) -> Optional[float]:
  try:
    cost = compiled.cost_analysis()
  except Exception:  # pylint: disable=broad-except  # not every backend has it
    return None
  if isinstance(cost, (list, tuple)):
    cost = cost[0] if cost else {}
  flops = (cost or {}).get("flops")
  return float(flops) if flops is not None else None


def _setup(spec: StepSpec, target: Target):
  devices = topology_devices(target)
  mesh = sharding.make_mesh(MeshConfig(shape=tuple(spec.mesh_shape),
                                       axes=tuple(spec.mesh_axes),
                                       rules=tuple(spec.rules)), devices)
  opts = step_lib.StepOptions(grad_accum=spec.grad_accum, z_loss=spec.z_loss,
                              b1=spec.b1, b2=spec.b2, eps=spec.eps)
  c = step_lib.Compiled(spec.model, opts, mesh, tuple(spec.rules))
  return c, NamedSharding(mesh, PartitionSpec())


def compile_program(spec: StepSpec, target: Target, program: str
                    ) -> Dict[str, Any]:
  """Compiles one program of ``spec`` ("train" or "eval") for ``target``:
  {'memory': MemoryReport dict, 'xla_flops', 'compile_s'}."""
  c, replicated = _setup(spec, target)
  T1 = spec.seq_len + 1
  if program == "train":
    hp = {k: jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=replicated)
          for k, v in optim.traced_hparams(
              TrainConfig(steps=10, warmup_steps=1)).items()}
    K, B = spec.steps_per_call, spec.batch_size
    fn, batch_sh = c.train_fn(K, B)
    args = (c.abstract_state,
            jax.ShapeDtypeStruct((K, B, T1), jnp.int32, sharding=batch_sh), hp)
  elif program == "eval":
    fn, eval_sh = c.eval_fn(spec.eval_batch_size)
    args = (c.abstract_state.params,
            jax.ShapeDtypeStruct((spec.eval_batches, spec.eval_batch_size, T1),
                                 jnp.int32, sharding=eval_sh))
  else:
    raise ValueError(f"program must be train or eval, got {program!r}")
  t0 = time.perf_counter()
  compiled = fn.lower(*args).compile()
  dt = time.perf_counter() - t0
  return {"memory": MemoryReport.of(compiled).to_dict(),
          "xla_flops": _xla_flops(compiled), "compile_s": dt}


def result_of(train: Dict[str, Any], ev: Dict[str, Any]) -> CompileResult:
  """A CompileResult from two ``compile_program`` outputs."""
  def mem(x):
    return MemoryReport(**{k: int(v) for k, v in x.items()
                           if k != "total_bytes"})
  return CompileResult(train=mem(train["memory"]), eval=mem(ev["memory"]),
                       train_xla_flops=train["xla_flops"],
                       eval_xla_flops=ev["xla_flops"],
                       train_compile_s=train["compile_s"],
                       eval_compile_s=ev["compile_s"])


def compile_spec(spec: StepSpec, target: Target) -> CompileResult:
  """Compiles the train and eval steps of ``spec`` for ``target``."""
  return result_of(compile_program(spec, target, "train"),
                   compile_program(spec, target, "eval"))
