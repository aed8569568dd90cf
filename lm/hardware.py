"""Peak FLOP/s per device and model FLOPs utilisation (MFU).

MFU = achieved model FLOP/s / (n_devices x peak FLOP/s per device)
(Chowdhery et al. 2022, PaLM App. B). Every peak comes with a source string,
and MFU outputs must carry it.

Peaks are DENSE (no 2:4 sparsity) vendor figures, per jax device (one GPU,
one TPU chip for v4 and later). Resolution order in ``device_peak_flops``:
1. ``SCALINGLM_PEAK_FLOPS`` (FLOP/s per device) if set -- for any platform;
2. the vendor table below, matched on ``device.device_kind``;
3. CPU: a one-off timed f32 matmul (``measure_matmul_peak``; cached per
   process). CPUs have no meaningful nominal peak across hosts.
"""
from __future__ import annotations

import functools
import math
import os
import time
from typing import Any, Dict, Optional, Tuple

from lm.config import ConfigError

PEAK_ENV_VAR = "SCALINGLM_PEAK_FLOPS"

_NV_H100 = "NVIDIA H100 Tensor Core GPU datasheet (dense = half the sparsity figure)"
_NV_H200 = "NVIDIA H200 Tensor Core GPU datasheet (dense = half the sparsity figure)"
_NV_GH200 = "NVIDIA GH200 Grace Hopper Superchip datasheet (dense = half the sparsity figure)"
_NV_A100 = "NVIDIA A100 Tensor Core GPU datasheet (dense = half the sparsity figure)"
_GC_TPU = "Google Cloud TPU documentation, system architecture page for"

# key -> (display name, {dtype: peak FLOP/s per device}, source).
# 'tfloat32' is the tensor-core TF32 rate (what f32 matmuls reach when XLA is
# allowed TF32); 'float32' is the non-tensor-core FP32 rate.
PEAK_TABLE: Dict[str, Tuple[str, Dict[str, float], str]] = {
    "h100_sxm": ("H100 SXM", {"bfloat16": 989e12, "float16": 989e12,
                              "tfloat32": 494e12, "float32": 67e12}, _NV_H100),
    "h100_pcie": ("H100 PCIe", {"bfloat16": 756e12, "float16": 756e12,
                                "tfloat32": 378e12, "float32": 51e12}, _NV_H100),
    "h100_nvl": ("H100 NVL", {"bfloat16": 835e12, "float16": 835e12,
                              "tfloat32": 417e12, "float32": 60e12}, _NV_H100),
    "h200": ("H200 SXM", {"bfloat16": 989e12, "float16": 989e12,
                          "tfloat32": 494e12, "float32": 67e12}, _NV_H200),
    "gh200": ("GH200", {"bfloat16": 989e12, "float16": 989e12,
                        "tfloat32": 494e12, "float32": 67e12}, _NV_GH200),
    "a100": ("A100", {"bfloat16": 312e12, "float16": 312e12,
                      "tfloat32": 156e12, "float32": 19.5e12}, _NV_A100),
    "tpu_v4": ("TPU v4", {"bfloat16": 275e12}, f"{_GC_TPU} TPU v4"),
    "tpu_v5e": ("TPU v5e", {"bfloat16": 197e12}, f"{_GC_TPU} TPU v5e"),
    "tpu_v5p": ("TPU v5p", {"bfloat16": 459e12}, f"{_GC_TPU} TPU v5p"),
    "tpu_v6e": ("TPU v6e (Trillium)", {"bfloat16": 918e12},
                f"{_GC_TPU} TPU v6e"),
}

_DTYPE_ALIASES = {"bf16": "bfloat16", "bfloat16": "bfloat16",
                  "fp16": "float16", "float16": "float16",
                  "tf32": "tfloat32", "tfloat32": "tfloat32",
                  "fp32": "float32", "f32": "float32", "float32": "float32"}


def parse_device_kind(device_kind: str) -> Optional[str]:
  """``jax.Device.device_kind`` -> PEAK_TABLE key, or None if unknown.

  Examples: 'NVIDIA H100 80GB HBM3' -> h100_sxm, 'NVIDIA H100 PCIe' ->
  h100_pcie, 'NVIDIA A100-SXM4-80GB' -> a100, 'TPU v4' -> tpu_v4,
  'TPU v5 lite' / 'TPU v5e' -> tpu_v5e, 'TPU v5' / 'TPU v5p' -> tpu_v5p,
  'TPU v6 lite' / 'TPU v6e' -> tpu_v6e.
  """
  k = " ".join(device_kind.lower().replace("-", " ").replace("_", " ").split())
  if "gh200" in k:                      # before 'h200': GH200 contains it
    return "gh200"
  if "h200" in k:
    return "h200"
  if "h100" in k:
    if "pcie" in k:
      return "h100_pcie"
    if "nvl" in k:
      return "h100_nvl"
    return "h100_sxm"                   # 'NVIDIA H100 80GB HBM3' is the SXM part
  if "a100" in k:
    return "a100"
  if k.startswith("tpu"):
    if "v6" in k:
      return "tpu_v6e" if ("lite" in k or "v6e" in k) else None
    if "v5" in k:
      return "tpu_v5e" if ("lite" in k or "v5e" in k) else "tpu_v5p"
    if "v4" in k:
      return None if "lite" in k else "tpu_v4"
  return None


def _env_peak() -> Optional[float]:
  raw = os.environ.get(PEAK_ENV_VAR, "").strip()
  if not raw:
    return None
  try:
    value = float(raw)
  except ValueError:
    value = float("nan")
  if not 0 < value < math.inf:
    raise ConfigError(f"{PEAK_ENV_VAR}={raw!r} must be a positive number of "
                      "FLOP/s per device, e.g. 989e12")
  return value


_MEASURE_N = 2048


@functools.lru_cache(maxsize=None)
def measure_matmul_peak(n: int = _MEASURE_N, repeats: int = 5) -> float:
  """Best-of-``repeats`` f32 FLOP/s of an n x n x n jitted matmul on device 0.

  Cached per process (per argument tuple); a few seconds on a 2-core CPU.
  """
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  a = jnp.ones((n, n), jnp.float32)
  b = jnp.ones((n, n), jnp.float32)
  f = jax.jit(jnp.matmul)
  f(a, b).block_until_ready()                   # compile + warm up
  best = math.inf
  for _ in range(repeats):
    t0 = time.perf_counter()
    f(a, b).block_until_ready()
    best = min(best, time.perf_counter() - t0)
  return 2.0 * n ** 3 / best                    # 2 FLOPs per multiply-add


def _kind_and_platform(device: Any) -> Tuple[str, str]:
  if device is None:
    import jax  # pylint: disable=import-outside-toplevel
    device = jax.devices()[0]
  if isinstance(device, str):
    return device, ("cpu" if device.lower() == "cpu" else "")
  return str(device.device_kind), str(device.platform)


def device_peak_flops(device: Any = None, dtype: str = "bfloat16", *,
                      strict: bool = True) -> Tuple[float, str]:
  """(peak FLOP/s per device, source string) for ``device``.

  Args:
    device: a ``jax.Device``, a ``device_kind`` string, or None for
      ``jax.devices()[0]``.
    dtype: compute dtype of the matmuls: bfloat16 | float16 | tfloat32 |
      float32. On TPU there is no separate f32 figure; float32 returns the
      bf16 peak (XLA's DEFAULT precision runs f32 matmuls as bf16 passes).
    strict: unknown device kinds raise ConfigError; with strict=False they
      return (nan, reason) so a training loop can log and carry on.
  """
  dtype_key = _DTYPE_ALIASES.get(str(dtype).lower())
  if dtype_key is None:
    raise ConfigError(f"unknown dtype {dtype!r} for peak FLOP/s (valid: "
                      "bfloat16, float16, tfloat32, float32)")
  env = _env_peak()
  if env is not None:
    return env, f"{PEAK_ENV_VAR}={env:.4g} FLOP/s per device (user override)"
  kind, platform = _kind_and_platform(device)
  key = parse_device_kind(kind)
  if key is not None:
    name, peaks, source = PEAK_TABLE[key]
    if dtype_key in peaks:
      return peaks[dtype_key], f"{name} dense {dtype_key} peak, {source}"
    if key.startswith("tpu") and dtype_key in ("float32", "tfloat32"):
      return peaks["bfloat16"], (f"{name} dense bfloat16 peak used for "
                                 f"{dtype_key} (no f32 figure published; XLA "
                                 f"DEFAULT precision uses bf16 passes), {source}")
    msg = f"no {dtype_key} peak known for {name}"
  elif platform == "cpu" or kind.lower() == "cpu":
    peak = measure_matmul_peak()
    return peak, (f"measured: best f32 {_MEASURE_N}^3 matmul on this CPU "
                  f"({peak / 1e9:.1f} GFLOP/s; set {PEAK_ENV_VAR} to override)")
  else:
    msg = f"unknown device kind {kind!r}"
  msg += f"; set {PEAK_ENV_VAR}=<peak FLOP/s per device>"
  if strict:
    raise ConfigError(msg)
  return float("nan"), msg


def mfu(model_flops_per_s: float, n_devices: int, peak: float) -> float:
  """Model FLOPs utilisation (PaLM App. B): achieved / (n_devices x peak)."""
  if not isinstance(n_devices, int) or isinstance(n_devices, bool) or \
      n_devices <= 0:
    raise ConfigError(f"n_devices must be a positive integer, got {n_devices!r}")
  if not model_flops_per_s >= 0:
    raise ConfigError(
        f"model_flops_per_s must be non-negative, got {model_flops_per_s!r}")
  if math.isnan(peak):
    return float("nan")
  if not peak > 0:
    raise ConfigError(f"peak FLOP/s must be positive, got {peak!r}")
  return model_flops_per_s / (n_devices * peak)


def mfu_report(model_flops_per_s: float, n_devices: int, device: Any = None,
               dtype: str = "bfloat16") -> Dict[str, Any]:
  """{'mfu', 'peak_flops_per_device', 'peak_source', 'n_devices'} for logging."""
  peak, source = device_peak_flops(device, dtype, strict=False)
  return {"mfu": mfu(model_flops_per_s, n_devices, peak),
          "peak_flops_per_device": peak, "peak_source": source,
          "n_devices": n_devices}
