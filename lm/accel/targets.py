"""Accelerator targets: what a sweep is planned for, one registry entry each.

A target is a slice (TPU) or a box of GPUs: its platform, its device count,
its memory per device and where that figure comes from. TPU targets also name
a topology that ``jax.experimental.topologies.get_topology_desc`` turns into
device descriptions, so the real TPU compiler can compile for them from a
machine without a TPU (``lm.accel.aot``). GPU targets have no deviceless
compiler here; their memory comes from ``lm.accel.memory_model``.

Names follow Cloud TPU: ``v4-8``, ``v5p-8`` and ``v5p-16`` count TensorCores
(2 per chip: 4 and 8 chips); ``v5litepod-8`` / ``v5e-8`` and ``v6e-8`` count
chips. Any ``<gen>:<AxB[xC]>`` topology string (``v5e:2x4``, ``v5p:2x2x4``)
is a target too. GPUs: ``h100``, ``h200``, ``a100-40gb``, ``a100-80gb``, with
an optional count prefix ``8xh100`` (default 1 device).
"""
from __future__ import annotations

import dataclasses
import math
import re
from typing import Dict, Optional, Tuple

from lm.config import ConfigError

GIB = 2 ** 30
_GC = "Google Cloud TPU documentation, system architecture page for"


@dataclasses.dataclass(frozen=True)
class TpuGeneration:
  """One TPU generation: its topology prefix and per-chip facts."""
  prefix: str                           # topology prefix: v4, v5e, v5p, v6e
  hbm_bytes: int                        # HBM per chip
  chips_per_host: Tuple[int, ...]       # host bounds (one TPU VM)
  chip_config: str                      # get_topology_desc chip_config_name
  cores_per_chip_in_name: int           # Cloud TPU name counts cores (v4, v5p)
  citation: str


TPU_GENERATIONS: Dict[str, TpuGeneration] = {
    "v4": TpuGeneration("v4", 32 * GIB, (2, 2, 1), "megacore", 2,
                        f"{_GC} TPU v4: 32 GiB HBM2 per chip"),
    "v5e": TpuGeneration("v5e", 16 * GIB, (2, 4, 1), "default", 1,
                         f"{_GC} TPU v5e: 16 GiB HBM2 per chip"),
    "v5p": TpuGeneration("v5p", 95 * GIB, (2, 2, 1), "megacore", 2,
                         f"{_GC} TPU v5p: 95 GiB HBM2e per chip"),
    "v6e": TpuGeneration("v6e", 32 * GIB, (2, 4, 1), "default", 1,
                         f"{_GC} TPU v6e: 32 GiB HBM per chip"),
}
_GEN_ALIASES = {"v5litepod": "v5e", "v5lite": "v5e", "v6litepod": "v6e"}


@dataclasses.dataclass(frozen=True)
class Target:
  """What a sweep is planned for."""
  name: str                  # canonical name (e.g. v5e-8, 8xh100)
  platform: str              # "tpu" | "gpu"
  n_devices: int             # jax devices: TPU chips (megacore) or GPUs
  hbm_bytes: int             # memory per device
  citation: str              # where hbm_bytes comes from
  topology: str = ""         # TPU: get_topology_desc topology_name
  chip_config: str = ""      # TPU: chip_config_name
  chips_per_host: Tuple[int, ...] = ()   # TPU: host bounds
  device_kind: str = ""      # what jax reports (GPU: for lm.hardware)

  @property
  def hosts(self) -> int:
    if self.platform != "tpu":
      return 1
    return max(1, self.n_devices // math.prod(self.chips_per_host))

  @property
  def compilable(self) -> bool:
    """Whether the deviceless compiler can build for it (TPU only)."""
    return self.platform == "tpu"

  def describe(self) -> str:
    where = (f"topology {self.topology}, {self.hosts} host(s)"
             if self.platform == "tpu" else "GPU box")
    return (f"{self.name}: {self.n_devices} {self.platform.upper()} devices "
            f"({where}), {self.hbm_bytes / GIB:.2f} GiB per device "
            f"({self.citation})")


@dataclasses.dataclass(frozen=True)
class GpuModel:
  device_kind: str
  hbm_bytes: int
  citation: str


# Datasheet capacities in GB (1e9 bytes), the vendor's unit.
GPU_MODELS: Dict[str, GpuModel] = {
    "h100": GpuModel("NVIDIA H100 80GB HBM3", 80 * 10 ** 9,
                     "NVIDIA H100 Tensor Core GPU datasheet: 80 GB HBM3 (SXM)"),
    "h200": GpuModel("NVIDIA H200", 141 * 10 ** 9,
                     "NVIDIA H200 Tensor Core GPU datasheet: 141 GB HBM3e"),
    "a100-40gb": GpuModel("NVIDIA A100-SXM4-40GB", 40 * 10 ** 9,
                          "NVIDIA A100 Tensor Core GPU datasheet: 40 GB HBM2"),
    "a100-80gb": GpuModel("NVIDIA A100-SXM4-80GB", 80 * 10 ** 9,
                          "NVIDIA A100 Tensor Core GPU datasheet: 80 GB HBM2e"),
}
_GPU_ALIASES = {"h100-80gb": "h100", "h100_80gb": "h100", "h200-141gb": "h200",
                "a100": "a100-80gb", "a100-40g": "a100-40gb",
                "a100-80g": "a100-80gb"}

# Cloud TPU slice names -> topology (the name's number counts TensorCores on
# v4 / v5p, chips on v5e / v6e).
NAMED_TPU: Dict[str, str] = {
    "v4-8": "v4:2x2x1", "v4-16": "v4:2x2x2", "v4-32": "v4:2x2x4",
    "v5p-8": "v5p:2x2x1", "v5p-16": "v5p:2x2x2", "v5p-32": "v5p:2x2x4",
    "v5e-1": "v5e:1x1", "v5e-4": "v5e:2x2", "v5e-8": "v5e:2x4",
    "v5e-16": "v5e:4x4", "v5e-32": "v5e:4x8",
    "v6e-1": "v6e:1x1", "v6e-4": "v6e:2x2", "v6e-8": "v6e:2x4",
    "v6e-16": "v6e:4x4",
}


def _tpu_target(name: str, topology: str) -> Target:
  prefix, _, dims_text = topology.partition(":")
  gen = TPU_GENERATIONS.get(_GEN_ALIASES.get(prefix, prefix))
  if gen is None or not re.fullmatch(r"\d+(x\d+){1,2}", dims_text):
    raise ConfigError(
        f"unknown TPU topology {topology!r}: expected <generation>:<AxB[xC]> "
        f"with generation one of {', '.join(TPU_GENERATIONS)}, e.g. v5e:2x4")
  dims = tuple(int(x) for x in dims_text.split("x"))
  if min(dims) < 1:
    raise ConfigError(f"TPU topology {topology!r} has an empty dimension")
  bounds = tuple(min(b, d) for b, d in
                 zip(gen.chips_per_host, dims + (1,) * (3 - len(dims))))
  return Target(name=name, platform="tpu", n_devices=math.prod(dims),
                hbm_bytes=gen.hbm_bytes, citation=gen.citation,
                topology=f"{gen.prefix}:{dims_text}",
                chip_config=gen.chip_config, chips_per_host=bounds)


def get_target(name: str) -> Target:
  """The target named ``name`` (see the module docstring); a one-line
  ConfigError listing the known names otherwise."""
  raw = str(name).strip()
  key = raw.lower().replace(" ", "")
  if key.startswith("v5litepod-"):
    key = "v5e-" + key[len("v5litepod-"):]
  if key in NAMED_TPU:
    return _tpu_target(key, NAMED_TPU[key])
  if ":" in key:
    return _tpu_target(key, key)
  m = re.fullmatch(r"(?:(\d+)x)?([a-z0-9_-]+)", key)
  if m:
    count = int(m.group(1) or 1)
    gpu = _GPU_ALIASES.get(m.group(2), m.group(2))
    if gpu in GPU_MODELS and count >= 1:
      g = GPU_MODELS[gpu]
      return Target(name=f"{count}x{gpu}", platform="gpu", n_devices=count,
                    hbm_bytes=g.hbm_bytes, citation=g.citation,
                    device_kind=g.device_kind)
  raise ConfigError(
      f"unknown target {raw!r}: use a Cloud TPU name ({', '.join(NAMED_TPU)}, "
      "v5litepod-N), a topology such as v5e:2x4, or [Nx]GPU with GPU one of "
      f"{', '.join(GPU_MODELS)} (e.g. 8xh100)")


def maybe_target(name: Optional[str]) -> Optional[Target]:
  return get_target(name) if name else None
