"""benchmarks/accelerator_check.sh (and the scripts it runs) on CPU: smoke, tiny shapes."""
import json
import math
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, run_cli

STEPS = ("env", "throughput", "sharded", "memory", "quickstart")


def _check(tmp_path, **env):
  e = dict(os.environ, OUT=str(tmp_path / "out"), SCALINGLM_CHECK_SMOKE="1",
           SCALINGLM_CHECK_PYTHON=sys.executable,
           SCALINGLM_CACHE=str(tmp_path / "cache"))
  e.pop("XLA_FLAGS", None)
  e.update(env)
  return subprocess.run(["bash", os.path.join(ROOT, "benchmarks",
                                              "accelerator_check.sh")],
                        cwd=str(tmp_path), env=e, capture_output=True,
                        text=True, timeout=3600)


def test_accelerator_check_smoke(tmp_path):
  out = _check(tmp_path)
  assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
  s = json.load(open(tmp_path / "out" / "summary.json"))
  assert s["smoke"] is True
  for step in STEPS:
    assert s["steps"][step]["status"] == "ok", s["steps"][step]
    assert s["steps"][step]["wall_s"] > 0
  assert s["env"]["backend"] == "cpu" and s["env"]["n_devices"] == 1

  results = {r["name"]: r for r in s["throughput"]["results"]}
  assert set(results) == {"30m", "gpt2_124m", "354m"}
  for name, r in results.items():
    assert "error" not in r and r["tiny"], r
    assert r["tokens_per_s"] > 0 and 0 < r["mfu"] < 1 and math.isfinite(r["mfu"])
    assert r["tokens_per_s"] == pytest.approx(
        r["timed_calls"] * r["steps_per_call"] * r["B"] * r["T"] / r["timed_s"])
    # cuDNN is absent on CPU: the recorded failure, then the xla fallback.
    assert r["attention_fallback_from"] == "cudnn" and r["attention_impl"] == "xla"
  assert results["30m"]["ref_tokens_per_s"] == 1.43e6
  assert s["throughput"]["goal_factor"] == 1.25
  assert "goal: >= 1,787,500 tokens/s/device" in out.stdout

  sh = s["sharded"]                      # 2 simulated CPU devices
  assert sh["passed"] and sh["n_devices"] == 2 and sh["learns"]
  assert list(sh["max_rel_diff"]) == ["2x1x1"]
  assert sh["max_rel_diff"]["2x1x1"] <= sh["rtol"]
  with open(tmp_path / "out" / "logs" / "quickstart.log") as f:
    assert "runs over 2 budgets" in f.read()   # tiny_sweep's plan (smoke)
  mem = {r["name"]: r for r in s["memory"]["results"]}  # CPU compiler here
  assert set(mem) == {"tiny", "tiny_remat"}
  for r in mem.values():
    assert "error" not in r and r["compiled"]["train"]["total_bytes"] > 0


def test_accelerator_check_records_failures_and_goes_on(tmp_path):
  out = _check(tmp_path, SCALINGLM_CHECK_PYTHON="false")
  assert out.returncode == 1
  for step in STEPS:
    rec = json.load(open(tmp_path / "out" / "steps" / f"{step}.json"))
    assert rec["status"] == "failed" and rec["rc"] != 0, rec
    assert os.path.exists(tmp_path / "out" / rec["log"])


def test_sharded_check_layouts_cover_every_axis():
  from benchmarks.sharded_check import layouts
  assert layouts(1) == []
  for n in (2, 4, 8):
    got = layouts(n)
    assert all(a * b * c == n for a, b, c in got), got
    for axis in range(3):                # data, fsdp and tensor each sharded
      assert any(shape[axis] > 1 for shape in got), (n, got)


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


def test_seed_vmap_trains_each_seed_exactly_as_alone():
  """benchmarks/seed_vmap.py times a vmapped step: it must compute what the
  separate runs compute (same params and losses per seed), else its speed-up
  would compare different work."""
  import jax
  import numpy as np
  from benchmarks import seed_vmap
  init, call = seed_vmap._setup(8, 1, 16, 2)
  carries = [init(k) for k in jax.random.split(jax.random.PRNGKey(0), 3)]
  tokens = np.random.default_rng(0).integers(0, 257, (3, 3, 2, 17)).astype(np.int32)
  alone = [jax.jit(call)(c, t) for c, t in zip(carries, tokens)]
  stacked = jax.tree.map(lambda *x: np.stack(x), *carries)
  together = jax.jit(jax.vmap(call))(stacked, tokens)
  for s, (carry, losses) in enumerate(alone):
    np.testing.assert_allclose(together[1][s], losses, rtol=1e-5, atol=1e-6)
    for a, b in zip(jax.tree.leaves(carry[0]),
                    jax.tree.leaves(jax.tree.map(lambda x: x[s], together[0][0]))):
      np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
  assert not np.allclose(alone[0][1], alone[1][1])   # seeds differ
