"""StepSpec: everything that changes a run's compiled train and eval programs.

Runs of a sweep that share a StepSpec share one compile (and one verdict in
``lm.accel.verdict_cache``); learning rate, steps, warmup and seed are traced
(``lm.optim``) and so are not part of it.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any, Dict, Tuple

from lm.config import DEFAULT_RULES, MESH_AXES, Config, ModelConfig
from lm.sharding import resolve_mesh_shape


@dataclasses.dataclass(frozen=True)
class StepSpec:
  """One (shape, micro-batch, mesh) of a run."""
  model: ModelConfig                 # includes model.remat
  batch_size: int                    # global sequences per optimizer step
  grad_accum: int                    # micro-batches per optimizer step
  steps_per_call: int                # optimizer steps per jitted call (scan)
  eval_batch_size: int               # global rows per eval batch
  eval_batches: int                  # eval batches per eval call (lax.map)
  mesh_shape: Tuple[int, ...]        # resolved: no -1
  mesh_axes: Tuple[str, ...] = MESH_AXES
  rules: Tuple[Tuple[str, Any], ...] = DEFAULT_RULES
  z_loss: float = 0.0
  b1: float = 0.9
  b2: float = 0.95
  eps: float = 1e-8

  @property
  def seq_len(self) -> int:
    return self.model.max_seq_len

  @property
  def n_data(self) -> int:
    """Devices the batch is split over (data x fsdp axes that divide it)."""
    n = 1
    for axis, size in zip(self.mesh_axes, self.mesh_shape):
      if axis in ("data", "fsdp") and self.batch_size % (n * size) == 0:
        n *= size
    return n

  @property
  def micro_batch_per_device(self) -> float:
    return self.batch_size / self.grad_accum / self.n_data

  def setting(self) -> str:
    """'8 x 4, remat' : per-device micro-batch x accumulation (+ remat)."""
    m = self.micro_batch_per_device
    mb = f"{m:g}" if m == int(m) else f"{m:.3g}"
    return f"{mb} x {self.grad_accum}" + (", remat" if self.model.remat else "")

  def to_dict(self) -> Dict[str, Any]:
    d = dataclasses.asdict(self)
    d["model"] = dataclasses.asdict(self.model)
    return json.loads(json.dumps(d))

  def program_dict(self, program: str) -> Dict[str, Any]:
    """The fields that change one program: "train" (all but the eval
    batches) or "eval" (model, eval batches, mesh)."""
    d = self.to_dict()
    if program == "train":
      for k in ("eval_batch_size", "eval_batches"):
        d.pop(k)
    else:
      for k in ("batch_size", "grad_accum", "steps_per_call", "z_loss", "b1",
                "b2", "eps"):
        d.pop(k)
    return d

  def digest(self) -> str:
    return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True)
                          .encode()).hexdigest()

  def replace(self, **kw) -> "StepSpec":
    model_kw = {k: kw.pop(k) for k in ("remat",) if k in kw}
    spec = dataclasses.replace(self, **kw)
    if model_kw:
      spec = dataclasses.replace(
          spec, model=dataclasses.replace(spec.model, **model_kw))
    return spec


def eval_batches(eval_tokens: int, eval_batch_size: int, seq_len: int) -> int:
  """Eval batches of one eval call (lm.data.eval_set keeps
  ceil(eval_tokens / seq_len) rows; lm.evaluate pads to whole batches)."""
  rows = -(-int(eval_tokens) // int(seq_len))
  be = min(int(eval_batch_size), rows)
  return -(-rows // be)


def spec_from_config(cfg: Config, n_devices: int) -> StepSpec:
  """The StepSpec of a resolved ``lm.config.Config`` on ``n_devices``."""
  t, m = cfg.train, cfg.mesh
  rows = -(-int(t.eval_tokens) // int(cfg.data.seq_len))
  return StepSpec(
      model=cfg.model, batch_size=int(t.batch_size),
      grad_accum=int(t.grad_accum), steps_per_call=int(t.steps_per_call),
      eval_batch_size=min(int(t.eval_batch_size), rows),
      eval_batches=eval_batches(t.eval_tokens, t.eval_batch_size,
                                cfg.data.seq_len),
      mesh_shape=resolve_mesh_shape(m.shape, n_devices), mesh_axes=m.axes,
      rules=m.rules, z_loss=float(t.z_loss), b1=float(t.b1), b2=float(t.b2),
      eps=float(t.eps))
