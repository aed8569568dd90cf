"""Peak FLOP/s table, device_kind parsing and MFU arithmetic."""
import math

import jax
import pytest

from lm import hardware as hw
from lm.config import ConfigError


@pytest.fixture(autouse=True)
def _no_env_override(monkeypatch):
  monkeypatch.delenv(hw.PEAK_ENV_VAR, raising=False)


@pytest.mark.parametrize("kind,key", [
    ("NVIDIA H100 80GB HBM3", "h100_sxm"),
    ("NVIDIA H100 PCIe", "h100_pcie"),
    ("NVIDIA H100 NVL", "h100_nvl"),
    ("NVIDIA H200", "h200"),
    ("NVIDIA GH200 480GB", "gh200"),
    ("NVIDIA A100-SXM4-80GB", "a100"),
    ("NVIDIA A100-SXM4-40GB", "a100"),
    ("NVIDIA A100 80GB PCIe", "a100"),
    ("TPU v4", "tpu_v4"),
    ("TPU v5 lite", "tpu_v5e"),
    ("TPU v5e", "tpu_v5e"),
    ("TPU v5", "tpu_v5p"),
    ("TPU v5p", "tpu_v5p"),
    ("TPU v6 lite", "tpu_v6e"),
    ("TPU v6e", "tpu_v6e"),
    ("Tesla V100-SXM2-16GB", None),
    ("TPU v4 lite", None),
    ("cpu", None),
])
def test_parse_device_kind(kind, key):
  assert hw.parse_device_kind(kind) == key


@pytest.mark.parametrize("kind,dtype,peak", [
    ("NVIDIA H100 80GB HBM3", "bfloat16", 989e12),
    ("NVIDIA H100 80GB HBM3", "float32", 67e12),
    ("NVIDIA H100 80GB HBM3", "tf32", 494e12),
    ("NVIDIA H200", "bf16", 989e12),
    ("NVIDIA A100-SXM4-80GB", "bfloat16", 312e12),
    ("NVIDIA A100-SXM4-80GB", "float32", 19.5e12),
    ("TPU v4", "bfloat16", 275e12),
    ("TPU v5 lite", "bfloat16", 197e12),
    ("TPU v5", "bfloat16", 459e12),
    ("TPU v6 lite", "bfloat16", 918e12),
    ("TPU v6 lite", "float32", 918e12),   # TPU: bf16 passes for f32 matmuls
])
def test_table_peaks_and_sources(kind, dtype, peak):
  value, source = hw.device_peak_flops(kind, dtype)
  assert value == peak
  assert ("NVIDIA" in source or "Google Cloud" in source) and "peak" in source


def test_env_override_wins(monkeypatch):
  monkeypatch.setenv(hw.PEAK_ENV_VAR, "1.5e14")
  value, source = hw.device_peak_flops("NVIDIA H100 80GB HBM3")
  assert value == 1.5e14 and hw.PEAK_ENV_VAR in source
  monkeypatch.setenv(hw.PEAK_ENV_VAR, "fast")
  with pytest.raises(ConfigError, match=hw.PEAK_ENV_VAR):
    hw.device_peak_flops()


def test_unknown_device():
  with pytest.raises(ConfigError, match=hw.PEAK_ENV_VAR):
    hw.device_peak_flops("Tesla V100-SXM2-16GB")
  value, source = hw.device_peak_flops("Tesla V100-SXM2-16GB", strict=False)
  assert math.isnan(value) and "V100" in source
  with pytest.raises(ConfigError, match="dtype"):
    hw.device_peak_flops("TPU v4", "int4")
  with pytest.raises(ConfigError, match="float16"):  # no fp16 figure for TPU
    hw.device_peak_flops("TPU v4", "float16")


def test_cpu_peak_is_measured():
  dev = jax.devices("cpu")[0]
  value, source = hw.device_peak_flops(dev, "float32")
  # Any real CPU does between 0.1 GFLOP/s and 100 TFLOP/s of f32 matmul.
  assert 1e8 < value < 1e14
  assert "measured" in source
  assert hw.measure_matmul_peak() == value     # cached, same number


def test_mfu_arithmetic():
  # 8 devices at 989 TFLOP/s peak; 3.956 PFLOP/s achieved -> 50%.
  assert hw.mfu(3.956e15, 8, 989e12) == pytest.approx(0.5)
  assert hw.mfu(0.0, 1, 1e12) == 0.0
  assert math.isnan(hw.mfu(1e12, 1, float("nan")))
  for bad in [dict(n_devices=0), dict(peak=0.0), dict(model_flops_per_s=-1.0)]:
    args = dict(model_flops_per_s=1e12, n_devices=1, peak=1e12)
    args.update(bad)
    with pytest.raises(ConfigError):
      hw.mfu(**args)


def test_mfu_report_names_its_peak(monkeypatch):
  monkeypatch.setenv(hw.PEAK_ENV_VAR, "2e12")
  report = hw.mfu_report(1e12, 2)
  assert report["mfu"] == pytest.approx(0.25)
  assert report["peak_flops_per_device"] == 2e12
  assert hw.PEAK_ENV_VAR in report["peak_source"]
