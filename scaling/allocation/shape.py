"""From N* to a concrete model: shape, batch, lr, steps, memory, time, command.

The shapes are the project's shape rule (``lm.params.enumerate_shapes``:
Marin's depth rule, head and d_ff rules) for the base config of a sweep
config file (``--sweep_config``, default the quickstart's). Batch size,
learning rate, warmup and steps are the planner's rules for one run at the
answer's training compute (``experiments.shape_search.plan_candidate``:
``choose_batch``, ``marin_lr``, ``aligned_steps``), so the run is exactly
what ``experiments.isoflop`` would train for that shape and budget.

Memory per device (``memory_bytes``; a simple analytic estimate, stated in
the output): parameters + gradients + Adam's two moments (param_dtype bytes
each, optax keeps moments in the parameters' dtype), replicated on every
device (data parallel), plus activations of the per-device batch,
Korthikanti et al. 2022 Eq. 1 (s b h (34 + 5 a s / h) bytes per layer for
16-bit activations; doubled for float32), plus logits and their gradient
(b s V x 4 bytes x 2). Time: PaLM MFU FLOPs (6 N_matmul + 12 L d T per token,
``lm.flops`` 'attention_inclusive') / (n_devices x peak x MFU), peak from
``lm.hardware.PEAK_TABLE``.

DEVICE_MEMORY_GB is a small, clearly temporary table of device memory
(vendor datasheets) until the planner's device targets (issue 22) land;
``--target`` keys are ``lm.hardware.PEAK_TABLE`` keys.
"""
from __future__ import annotations

import dataclasses
import math
import os
import shlex
from typing import Any, Dict, List, Optional

from experiments import shape_search
from lm import flops as flops_lib
from lm import hardware
from lm import params as params_lib
from lm.config import ModelConfig
from lm.config import flags as config_flags
from scaling.allocation.errors import AllocationError

# TEMPORARY (until issue 22's device targets): memory per device, GB (1e9 B),
# vendor datasheets: NVIDIA H100 SXM/PCIe 80 GB, H100 NVL 94 GB, H200 141 GB,
# GH200 96 GB HBM3, A100 80 GB (the 40 GB part: use --target_memory_gb=40);
# Google Cloud TPU system architecture pages: v4 32 GiB, v5e 16 GiB, v5p 95
# GiB, v6e 32 GiB.
DEVICE_MEMORY_GB: Dict[str, float] = {
    "h100_sxm": 80.0, "h100_pcie": 80.0, "h100_nvl": 94.0, "h200": 141.0,
    "gh200": 96.0, "a100": 80.0, "tpu_v4": 32 * 1.073741824,
    "tpu_v5e": 16 * 1.073741824, "tpu_v5p": 95 * 1.073741824,
    "tpu_v6e": 32 * 1.073741824,
}
DEFAULT_SWEEP_CONFIG = os.path.join("experiments", "configs", "quickstart.py")
BASE_LM_CONFIG = os.path.join("lm", "configs", "tiny.py")
_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


def load_sweep_config(path: str):
  try:
    cfg = config_flags.load_config_file(path)
  except (ValueError, SyntaxError, ImportError) as e:
    raise AllocationError(f"--sweep_config: {e}") from None
  if "sweep" not in cfg or "lm" not in cfg:
    raise AllocationError(f"--sweep_config={path} is not a sweep config "
                          "(needs c.sweep and c.lm, e.g. "
                          f"{DEFAULT_SWEEP_CONFIG})")
  return cfg


def nearest_shapes(N_star: float, cfg, k: int = 3) -> List[Any]:
  """The rule's shape nearest N* in log N, then the nearest below/above."""
  s = cfg.sweep
  vocab = shape_search.vocab_size_of(cfg.lm.data)
  shapes = params_lib.enumerate_shapes(
      vocab_size=vocab, seq_len=int(s.seq_len), max_params=2.0 * N_star,
      convention=s.param_convention, head_dim=int(s.head_dim),
      ff_multiple=int(s.ff_multiple), **shape_search.shape_kwargs(cfg.lm))
  n = lambda c: params_lib.n_params(c, s.param_convention)
  best = min(shapes, key=lambda c: abs(math.log(n(c) / N_star)))
  below = [c for c in shapes if n(c) < n(best)]
  above = [c for c in shapes if n(c) > n(best)]
  out = [best]
  if below and k > 1:
    out.append(max(below, key=n))
  if above and k > 2:
    out.append(min(above, key=n))
  return sorted(out, key=n)


def memory_bytes(cfg_model, batch_per_device: float, seq_len: int,
                 shards: int = 1) -> Dict[str, float]:
  """Analytic memory per device (module docstring), bytes by component;
  ``shards``: devices the states are split over (FSDP), 1 = replicated."""
  N = params_lib.count_params(cfg_model).total
  pb = _BYTES.get(str(cfg_model.param_dtype), 4)
  ab = _BYTES.get(str(cfg_model.dtype), 4)
  states = N * pb * 4 / shards   # params, grads, Adam m and v
  s, b, h, a = seq_len, batch_per_device, cfg_model.d_model, cfg_model.n_heads
  # Korthikanti et al. 2022, Eq. 1: s b h (34 + 5 a s / h) bytes per layer
  # at 2 bytes per activation.
  acts = cfg_model.n_layers * s * b * h * (34 + 5 * a * s / h) * (ab / 2)
  logits = 2 * b * s * cfg_model.vocab_size * 4
  return {"states": float(states), "activations": float(acts),
          "logits": float(logits), "total": float(states + acts + logits)}


def _peak(target: str, dtype: str):
  if target not in hardware.PEAK_TABLE:
    raise AllocationError(f"unknown --target {target!r} (valid: "
                          f"{', '.join(hardware.PEAK_TABLE)})")
  name, peaks, source = hardware.PEAK_TABLE[target]
  key = str(dtype)
  if key == "float32" and "tfloat32" in peaks:
    key = "tfloat32"   # f32 matmuls run on TF32 tensor cores under XLA
  if key not in peaks:
    key = "bfloat16"
  return peaks[key], f"{name} dense {key} peak, {source}"


def describe(run, cfg, law_loss, *, target: Optional[str], n_devices: int,
             mfu: float) -> Dict[str, Any]:
  """One planned run as a JSON-able row: shape, rules, memory, time."""
  model = dict(shape_search.shape_kwargs(cfg.lm), **run.shape,
               vocab_size=shape_search.vocab_size_of(cfg.lm.data),
               max_seq_len=run.seq_len)
  m = ModelConfig(**model).validate()
  row = {"N": run.N, "shape": dict(run.shape), "batch_size": run.batch_size,
         "seq_len": run.seq_len, "lr": run.lr, "warmup_steps": run.warmup_steps,
         "steps": run.steps, "D": run.D, "tokens_per_param": run.D / run.N,
         "flops": run.flops, "flop_convention": run.flop_convention,
         "flops_error": run.flops_error, "L_predicted": law_loss(run.N, run.D),
         "param_convention": run.param_convention}
  mfu_flops = flops_lib.training_flops(m, run.seq_len, run.D,
                                       "attention_inclusive")
  row["mfu_flops"] = mfu_flops
  if target:
    peak, source = _peak(target, m.dtype)
    mem = memory_bytes(m, run.batch_size / n_devices, run.seq_len)
    mem_fsdp = memory_bytes(m, run.batch_size / n_devices, run.seq_len,
                            shards=n_devices)
    cap = DEVICE_MEMORY_GB.get(target)
    row.update(target=target, n_devices=n_devices, mfu=mfu,
               peak_flops_per_device=peak, peak_source=source,
               time_s=mfu_flops / (n_devices * peak * mfu),
               memory_per_device=mem, memory_per_device_fsdp=mem_fsdp,
               device_memory_bytes=None if cap is None else cap * 1e9,
               fits=None if cap is None else mem["total"] <= cap * 1e9,
               fits_fsdp=None if cap is None else mem_fsdp["total"] <= cap * 1e9)
    if row["fits"] is False and row["fits_fsdp"] and n_devices > 1:
      row["mesh_shape"] = (1, n_devices, 1)   # (data, fsdp, tensor)
  return row


def plan_runs(N_star: float, C: float, cfg, *, epochs: Optional[float] = None,
              k: int = 3):
  """(PlannedRun or None, reason) for the shapes nearest N* at budget C
  under the sweep config's planner rules."""
  s = cfg.sweep
  spc = int(cfg.lm.train.get("steps_per_call", 1))
  seed = int(cfg.lm.train.get("seed", 0))
  out = []
  for m in nearest_shapes(N_star, cfg, k):
    run, reason = shape_search.plan_candidate(
        C, m, s, params_lib.n_params(m, s.param_convention), spc, seed)
    if run is not None and epochs is not None and epochs > 1:
      # Data-constrained answer: the run repeats its unique tokens.
      run = dataclasses.replace(run, max_epochs=float(math.ceil(epochs * 1.01)))
    out.append((m, run, reason))
  return out


def _leaves(d, prefix=""):
  for k, v in d.items():
    if isinstance(v, dict):
      yield from _leaves(v, f"{prefix}{k}.")
    else:
      yield f"{prefix}{k}", v


def _text(v) -> str:
  if isinstance(v, bool):
    return "true" if v else "false"
  if isinstance(v, float):
    return repr(v)
  if isinstance(v, (tuple, list)):
    return repr(tuple(v))
  return str(v)


def train_command(run, cfg, workdir: str, mesh_shape=None) -> str:
  """``python -m lm.train`` for ``run``: lm/configs/tiny.py plus one
  ``--config.`` override for every field of the run's config that differs
  (``mesh_shape``: also shard the states, e.g. (1, n, 1) for FSDP)."""
  base = config_flags.load_config_file(BASE_LM_CONFIG).to_dict()
  run_cfg = run.lm_config(cfg.lm)
  if mesh_shape is not None:
    run_cfg.mesh.shape = tuple(mesh_shape)
  want = run_cfg.to_dict()
  have = dict(_leaves(base))
  args = []
  for key, v in _leaves(want):
    if key == "model.max_seq_len" and key not in have and v == want["data"][
        "seq_len"]:
      continue   # lm.config defaults it to data.seq_len
    if key not in have:
      raise AllocationError(f"the sweep config's lm.{key} is not a field of "
                            f"{BASE_LM_CONFIG}; cannot print an lm.train "
                            "command")
    if have[key] != v:
      args.append(f"--config.{key}={shlex.quote(_text(v))}")
  return " ".join(["python -m lm.train", f"--config={BASE_LM_CONFIG}"] + args
                  + [f"--workdir={shlex.quote(workdir)}"])


def isoflop_command(N_star: float, C: float, sweep_path: str,
                    workdir: str) -> str:
  """``python -m experiments.isoflop`` bracketing N* at C with 3 sizes: the
  prior centre k (C / 120)^0.5 is set to N* at C."""
  k = N_star / (C / 120.0)**0.5
  return " ".join([
      "python -m experiments.isoflop", f"--config={shlex.quote(sweep_path)}",
      f"--workdir={shlex.quote(workdir)}",
      shlex.quote(f"--config.sweep.budgets=({C!r},)"),
      "--config.sweep.center=prior", f"--config.sweep.prior_k={k!r}",
      "--config.sweep.prior_a=0.5", "--config.sweep.prior_c0=120.0",
      "--config.sweep.n_sizes=3", "--config.sweep.size_range=4.0"])
