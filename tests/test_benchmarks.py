"""The benchmarks run on CPU and print what they promise (smoke, tiny shapes)."""
from tests.conftest import run_cli


def test_train_throughput_runs_on_cpu():
  out = run_cli("benchmarks.train_throughput", "--L=1", "--d=32", "--heads=2",
                "--T=32", "--B=4", "--vocab=257", "--calls=2", "--warmup=1",
                "--steps_per_call=2", timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
  for needle in ("tokens/s:", "TFLOP/s", "MFU:", "N="):
    assert needle in out.stdout, out.stdout


def test_data_throughput_runs_on_cpu(tmp_path):
  out = run_cli("benchmarks.data_throughput", "--mb=0.3", "--tokenizer=byte",
                "--T=32", "--B=8", "--processes=2", "--calls=3",
                "--workers=1,2",
                f"--json={tmp_path}/dt.json", timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
  for needle in ("1 worker(s):", "2 worker(s):", "MB/s",
                 "from the cache -> device_put boundary:",
                 "uncached stream packer", "tokens/s per host", "20M"):
    assert needle in out.stdout, out.stdout
  import json
  figures = json.load(open(tmp_path / "dt.json"))
  assert figures["cache_tokens_per_s_per_host"] > 0
  assert set(figures["tokenize_mb_per_s"]) == {"1", "2"}
