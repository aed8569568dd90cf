"""Memory-aware planning (issue 22): targets, the memory model's choice,
accumulation/remat leave the math unchanged, compiles for a TPU topology."""
import importlib.util
import json

import jax
import numpy as np
import pytest

from lm import optim, sharding, step as step_lib
from lm.accel import choose, memory_model, verdict_cache
from lm.accel.spec import StepSpec
from lm.accel.targets import get_target
from lm.config import (DEFAULT_RULES, ConfigError, MeshConfig, ModelConfig,
                       TrainConfig)
from tests.conftest import run_cli

HAS_LIBTPU = importlib.util.find_spec("libtpu") is not None
needs_libtpu = pytest.mark.skipif(not HAS_LIBTPU, reason="needs '.[tpu]'")


@pytest.mark.parametrize("name,platform,n,hosts,gib", [
    ("v4-8", "tpu", 4, 1, 32), ("v5p-8", "tpu", 4, 1, 95),
    ("v5p-16", "tpu", 8, 2, 95), ("v5e-8", "tpu", 8, 1, 16),
    ("v5litepod-8", "tpu", 8, 1, 16), ("v6e-8", "tpu", 8, 1, 32),
    ("v5e:2x4", "tpu", 8, 1, 16), ("v5e:4x4", "tpu", 16, 2, 16),
    ("8xh100", "gpu", 8, 1, 80e9 / 2**30), ("h200", "gpu", 1, 1, 141e9 / 2**30),
    ("a100-40gb", "gpu", 1, 1, 40e9 / 2**30)])
def test_target_registry(name, platform, n, hosts, gib):
  t = get_target(name)
  assert (t.platform, t.n_devices, t.hosts) == (platform, n, hosts)
  assert t.hbm_bytes == pytest.approx(gib * 2**30)
  assert t.citation


def test_unknown_target_is_one_line():
  with pytest.raises(ConfigError) as e:
    get_target("v9z-8")
  assert "\n" not in str(e.value) and "v5e-8" in str(e.value)


def _spec(B=512, d=1536, L=15, T=1024, mesh=(1, 8, 1), **kw):
  m = ModelConfig(vocab_size=32000, d_model=d, n_layers=L, n_heads=d // 64,
                  d_ff=4096, max_seq_len=T, dtype="bfloat16")
  return StepSpec(model=m, batch_size=B, grad_accum=1, steps_per_call=10,
                  eval_batch_size=64, eval_batches=64, mesh_shape=mesh, **kw)


def test_candidates_keep_the_global_batch():
  spec = _spec(B=96, mesh=(1, 8, 1))
  cands = choose.candidates(spec)
  assert {(c.grad_accum, c.model.remat) for c in cands} == {
      (A, r) for A in (1, 2, 3, 4, 6, 12) for r in (False, True)}
  for c in cands:
    assert c.micro_batch_per_device * c.grad_accum * c.n_data == 96
  costs = [choose.cost(c) for c in cands]
  assert costs == sorted(costs)


def test_model_choice_is_the_cheapest_that_fits():
  """GPU target: the planner's choice is the first candidate (in cost
  order) the memory model fits, and every cheaper one does not fit."""
  target = get_target("8xa100-40gb")
  spec = _spec()
  (c,) = choose.choose([("r", spec)], target)
  limit = 0.9 * target.hbm_bytes
  room = 1 + memory_model.WORST_UNDERESTIMATE  # kept free beyond the model
  assert c.how == "modelled" and c.bytes_per_device * room <= limit
  assert c.spec.grad_accum > 1  # 64 sequences per GPU do not fit in 36 GB
  cands = choose.candidates(spec)
  for other in cands[:cands.index(c.spec)]:
    assert memory_model.estimate(other).peak_bytes * room > limit
  assert c.spec.batch_size == spec.batch_size


def test_oversized_model_refused_by_the_model():
  with pytest.raises(ConfigError) as e:
    choose.choose([("huge", _spec(B=8, d=8192, L=64, mesh=(8, 1, 1)))],
                  get_target("8xh100"))
  msg = str(e.value)
  assert "\n" not in msg and "huge" in msg and "tensor parallelism" in msg


def test_cache_key_covers_versions_and_shares_eval(monkeypatch):
  t = get_target("v5e-8")
  a = _spec(B=64)
  b = a.replace(grad_accum=2)
  assert (verdict_cache.cache_key(a, t, "train")
          != verdict_cache.cache_key(b, t, "train"))
  assert (verdict_cache.cache_key(a, t, "eval")
          == verdict_cache.cache_key(b, t, "eval"))
  base = verdict_cache.toolchain()
  k0 = verdict_cache.cache_key(a, t, "train")
  monkeypatch.setattr(verdict_cache, "toolchain",
                      lambda: {**base, "libtpu": "0.0.0"})
  assert verdict_cache.cache_key(a, t, "train") != k0


def _losses(grad_accum, remat, steps=4):
  mc = ModelConfig(vocab_size=64, d_model=32, n_layers=2, n_heads=2, d_ff=64,
                   max_seq_len=16, remat=remat).validate()
  tc = TrainConfig(batch_size=8, steps=100, warmup_steps=1, lr=1e-2,
                   grad_accum=grad_accum)
  mesh = sharding.make_mesh(MeshConfig(shape=(1, 1, 1)),
                            devices=jax.devices()[:1])
  c = step_lib.Compiled(mc, step_lib.StepOptions.from_train(tc), mesh,
                        DEFAULT_RULES)
  state = c.init(jax.random.key(0))
  fn, sh = c.train_fn(steps, 8)
  rng = np.random.default_rng(0)
  base = rng.integers(0, 64, size=40)
  rows = np.stack([np.stack([np.roll(base, -int(i))[:17]
                             for i in rng.integers(0, 20, size=8)])
                   for _ in range(steps)]).astype(np.int32)
  batch = step_lib.device_put_batch(rows, sh, rows.shape)
  _, m = fn(state, batch, optim.traced_hparams(tc))
  return np.asarray(m["loss"])


def test_accumulation_and_remat_leave_losses_unchanged():
  """What the planner changes (grad_accum, remat) does not change the math:
  the same per-step losses as the plain step (float32 summation order
  differs: ~1e-7 relative; a wrong accumulation moves them by > 1e-3)."""
  plain = _losses(1, False)
  assert plain[-1] < plain[0]
  for A, remat in ((4, False), (1, True)):
    np.testing.assert_allclose(_losses(A, remat), plain, rtol=2e-5)


def test_isoflop_plan_json_for_a_gpu_target(tmp_path):
  out = run_cli("experiments.isoflop",
                "--config=experiments/configs/quickstart.py", "--plan_only",
                "--target=8xh100", f"--workdir={tmp_path}", "--noprogress")
  assert out.returncode == 0, out.stderr[-2000:]
  assert "modelled" in out.stdout and "micro x accum" in out.stdout
  plan = json.loads((tmp_path / "plan.json").read_text())
  assert plan["schema"] == "scalinglm.plan/1" and plan["runs"]
  assert plan["target"]["name"] == "8xh100"
  for r in plan["runs"]:
    mem = r["memory"]
    assert mem["how"] == "modelled"
    assert mem["bytes_per_device"] <= mem["limit_bytes"]
    assert r["train"]["grad_accum"] == mem["grad_accum"]
    assert r["model"]["remat"] == mem["remat"]
    assert (mem["micro_batch_per_device"] * mem["grad_accum"]
            * mem["mesh"]["data"] * mem["mesh"]["fsdp"]
            == r["train"]["batch_size"])


@needs_libtpu
def test_compile_check_tiny_config_fits_v5e(tmp_path):
  out = run_cli("lm.compile_check", "--config=lm/configs/tiny.py",
                "--target=v5e-8", "--noprogress", f"--json={tmp_path}/c.json",
                env={"SCALINGLM_COMPILE_CACHE": str(tmp_path / "cache")})
  assert out.returncode == 0, out.stderr[-2000:]
  assert "train step: arguments" in out.stdout
  assert "fits" in out.stdout and "XLA" in out.stdout
  rep = json.loads((tmp_path / "c.json").read_text())
  res = rep["verdict"]["result"]
  assert 0 < res["peak_bytes"] < 0.9 * 16 * 2**30
  assert res["train_xla_flops"] > 0
  assert rep["choice"]["grad_accum"] == 1 and not rep["choice"]["remat"]


@needs_libtpu
def test_compile_check_refuses_an_oversized_run(tmp_path):
  out = run_cli("lm.compile_check", "--config=lm/configs/tiny.py",
                "--target=v5e-8", "--noprogress",
                "--config.model.d_model=8192", "--config.model.n_heads=64",
                "--config.model.n_layers=64", "--config.model.d_ff=32768",
                env={"SCALINGLM_COMPILE_CACHE": str(tmp_path / "cache")})
  assert out.returncode == 2
  lines = [l for l in out.stderr.splitlines() if l.strip()
           and not l.startswith(("WARNING", "E0000", "===", "learning/",
                                 "Failed to find host bounds"))]
  assert len(lines) == 1 and lines[0].startswith("error: run tiny does not "
                                                  "fit v5e-8"), lines


def test_isoflop_refuses_a_run_that_fits_nowhere(tmp_path):
  """A plan with a run that fits at no setting stops at plan time with one
  error line naming the run, and writes nothing."""
  out = run_cli("experiments.isoflop",
                "--config=experiments/configs/quickstart.py", "--plan_only",
                "--target=a100-40gb", "--config.sweep.memory_fraction=1e-4",
                f"--workdir={tmp_path}/w", "--noprogress")
  assert out.returncode == 2
  lines = [l for l in out.stderr.splitlines() if l.strip()]
  assert len(lines) == 1 and lines[0].startswith("error: run C"), lines
  assert "does not fit 1xa100-40gb" in lines[0] and "tensor parallelism" in lines[0]
  assert not (tmp_path / "w").exists()


def test_memory_model_calibration_reproduces():
  """The committed coefficients are the fit to the committed compiler
  measurements, and the stated errors are what they give."""
  pts = memory_model.calibration_points()
  assert len(pts) == 7
  fit = memory_model.calibrate(pts, "refit",
                               base=memory_model.Coefficients(c_code=32e6))
  c = memory_model.CALIBRATED
  for name in memory_model.FREE:
    assert getattr(fit, name) == pytest.approx(getattr(c, name), rel=1e-3)
  errs = memory_model.errors(pts)
  assert -0.37 < min(errs) and max(errs) < 0.08
  loo = [memory_model.errors([pts[i]], memory_model.calibrate(
      pts[:i] + pts[i + 1:], "loo", base=memory_model.Coefficients(
          c_code=32e6)))[0] for i in range(len(pts))]
  assert min(loo) >= -memory_model.WORST_UNDERESTIMATE - 0.005
