"""The benchmarks run on CPU and print what they promise (smoke, tiny shapes)."""
from tests.conftest import run_cli


def test_train_throughput_runs_on_cpu():
  out = run_cli("benchmarks.train_throughput", "--L=1", "--d=32", "--heads=2",
                "--T=32", "--B=4", "--vocab=257", "--calls=2", "--warmup=1",
                "--steps_per_call=2", timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
  for needle in ("tokens/s:", "TFLOP/s", "MFU:", "N="):
    assert needle in out.stdout, out.stdout
