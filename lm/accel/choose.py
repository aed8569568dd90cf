"""The cheapest (micro-batch, grad_accum, remat) of a step that fits a target.

Cost of a setting (lower is cheaper; an assumption, not a measurement):
``(4/3 if remat) / min(1, m T / SATURATION_TOKENS)``, m the per-device
micro-batch: remat recomputes the forward pass (+1/3 of a step's FLOPs,
Chen et al. 2016), and micro-batches under ``SATURATION_TOKENS`` tokens per
device leave the matrix units under-used; ties go to fewer micro-batches
(each re-gathers FSDP weights). The global batch is never changed.

TPU targets: candidates are compiled in cost order for the target topology
(``lm.accel.verdict_cache``), skipping those the memory model puts above
``MODEL_SKIP_FACTOR`` x the limit; the first that fits is chosen, with its
compiled bytes ("compiled"). GPU targets: the first candidate the model
fits ("modelled"). A step that fits at no setting is a one-line ConfigError
naming it and what would fit.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Optional, Sequence, Tuple

from lm.accel import memory_model, verdict_cache
from lm.accel.spec import StepSpec
from lm.accel.targets import GIB, Target
from lm.config import ConfigError

SATURATION_TOKENS = 4096   # tokens per device per micro-batch: assumption
MODEL_SKIP_FACTOR = 1.3    # skip compiling candidates modelled above this x limit
def candidates(spec: StepSpec) -> List[StepSpec]:
  """Every (grad_accum, remat) of ``spec``'s global batch whose micro-batch
  splits evenly over the data devices, cheapest first."""
  per_device = spec.batch_size // spec.n_data
  out = []
  for A in range(1, spec.batch_size + 1):
    if spec.batch_size % A or (spec.batch_size // A) % spec.n_data:
      continue
    if per_device % A:
      continue
    for remat in (False, True):
      out.append(spec.replace(grad_accum=A, remat=remat))
  return sorted(out, key=lambda s: (cost(s), s.grad_accum, s.model.remat))


def cost(spec: StepSpec) -> float:
  """Relative step time of a setting (module docstring)."""
  util = min(1.0, spec.micro_batch_per_device * spec.seq_len
             / SATURATION_TOKENS)
  return (4.0 / 3.0 if spec.model.remat else 1.0) / util


@dataclasses.dataclass(frozen=True)
class MemoryChoice:
  """The setting chosen for one run on one target."""
  run_id: str
  spec: StepSpec
  target: str
  how: str                  # "compiled" | "modelled"
  bytes_per_device: float   # compiled peak (train/eval) or modelled peak
  limit_bytes: float        # memory_fraction x HBM per device
  hbm_bytes: int
  modelled_bytes: float
  compiled: Optional[Dict[str, Any]] = None   # lm.accel.aot.CompileResult
  tried: Tuple[str, ...] = ()   # settings compiled before this one (too big)

  def to_dict(self) -> Dict[str, Any]:
    m = self.spec.model
    return {"run_id": self.run_id, "target": self.target, "how": self.how,
            "micro_batch_per_device": self.spec.micro_batch_per_device,
            "grad_accum": self.spec.grad_accum, "remat": m.remat,
            "setting": self.spec.setting(),
            "bytes_per_device": self.bytes_per_device,
            "limit_bytes": self.limit_bytes, "hbm_bytes": self.hbm_bytes,
            "modelled_bytes": self.modelled_bytes,
            "mesh": dict(zip(self.spec.mesh_axes, self.spec.mesh_shape)),
            "compiled": self.compiled, "tried_too_big": list(self.tried)}


def _refusal(run_id: str, spec: StepSpec, target: Target,
             limit: float) -> str:
  smallest = candidates(spec)[-1] if candidates(spec) else spec
  est = memory_model.estimate(smallest).peak_bytes
  state = memory_model.terms(spec)["state"]
  shard = dict(zip(spec.mesh_axes, spec.mesh_shape))
  return (f"run {run_id} does not fit {target.name} ({limit / GIB:.3g} GiB "
          f"usable per device) even at micro-batch 1 with remat (~"
          f"{est / GIB:.2f} GiB per device modelled; parameters + Adam state "
          f"alone {state / GIB:.2f} GiB on mesh {shard}): shard it over more "
          "devices (a larger slice with mesh.shape=(1,-1,1)), add tensor "
          "parallelism (mesh.shape=(1,-1,T)), or pick a target with more "
          "memory per device")


class _Search:
  """One run's search over its candidates (TPU targets).

  Compiled verdicts prune by monotonicity (a setting that does not fit rules
  out every setting with as large a micro-batch and no more remat; one that
  fits ends the search when no cheaper setting is left), and correct the
  memory model for this run: candidates the model, scaled by the smallest
  compiler / model ratio seen on this run, puts above ``slack`` x the limit
  are not compiled (``MODEL_SKIP_FACTOR`` before any compile).
  """

  def __init__(self, spec: StepSpec, limit: float):
    self.cands = candidates(spec)
    self.limit = limit
    self.model = [memory_model.estimate(c).peak_bytes for c in self.cands]
    self.ratio = 1.0
    self.slack = MODEL_SKIP_FACTOR
    self.ruled_out = [False] * len(self.cands)
    self.best: Optional[Tuple[int, Dict[str, Any]]] = None
    self.tried: List[str] = []

  def next(self) -> Optional[int]:
    """Index of the next candidate to compile, or None: search over."""
    for i, c in enumerate(self.cands):
      if self.best is not None and i >= self.best[0]:
        return None
      if self.ruled_out[i]:
        continue
      if self.model[i] * self.ratio > self.limit * self.slack:
        continue   # not ruled out: a later ratio may bring it back
      return i
    return None

  def update(self, i: int, v: Dict[str, Any]) -> None:
    res = v.get("result")
    fits = res is not None and res["peak_bytes"] <= self.limit
    c = self.cands[i]
    if res is not None:
      r = res["peak_bytes"] / self.model[i]
      self.ratio = r if self.slack == MODEL_SKIP_FACTOR else min(self.ratio, r)
      self.slack = 1.1
    if fits:
      self.best = (i, res)
      return
    self.tried.append(c.setting())
    m = c.micro_batch_per_device
    for k, o in enumerate(self.cands):
      if o.micro_batch_per_device >= m and (c.model.remat
                                            or not o.model.remat):
        self.ruled_out[k] = True


def choose(items: Sequence[Tuple[str, StepSpec]], target: Target, *,
           fraction: float = 0.9, workers: int = 1, progress: bool = True,
           compile: bool = True) -> List[MemoryChoice]:
  """The cheapest fitting setting of each (run_id, spec); ConfigError (one
  line) naming the first run that fits at no setting. ``compile=False``:
  TPU targets modelled too (no libtpu needed; a quick first look)."""
  limit = fraction * target.hbm_bytes
  spec_of = dict(items)
  chosen: Dict[str, MemoryChoice] = {}
  if not (target.compilable and compile):
    for rid, spec in items:
      for c in candidates(spec):
        est = memory_model.estimate(c).peak_bytes
        # The model's worst measured under-estimate is kept free as well.
        if est * (1 + memory_model.WORST_UNDERESTIMATE) <= limit:
          chosen[rid] = MemoryChoice(rid, c, target.name, "modelled", est,
                                     limit, target.hbm_bytes, est)
          break
      else:
        raise ConfigError(_refusal(rid, spec, target, limit))
    return [chosen[rid] for rid, _ in items]
  searches = {rid: _Search(spec, limit) for rid, spec in items}
  while True:
    pending = []
    for rid, _ in items:
      if rid in chosen:
        continue
      srch = searches[rid]
      i = srch.next()
      if i is None:
        if srch.best is None:
          raise ConfigError(_refusal(rid, spec_of[rid], target, limit))
        b, res = srch.best
        c = srch.cands[b]
        chosen[rid] = MemoryChoice(
            rid, c, target.name, "compiled", float(res["peak_bytes"]), limit,
            target.hbm_bytes, srch.model[b], res, tuple(srch.tried))
      else:
        pending.append((rid, i))
    if not pending:
      break
    got = verdict_cache.verdicts(
        [(searches[rid].cands[i], target) for rid, i in pending],
        workers=workers, progress=progress, desc=f"compile for {target.name}")
    for (rid, i), v in zip(pending, got):
      searches[rid].update(i, v)
  return [chosen[rid] for rid, _ in items]


def format_choices(choices: Sequence[MemoryChoice]) -> str:
  """The memory columns of the plan table, one line per run."""
  head = (f"{'run':<32} {'micro x accum':>14} {'remat':>5} "
          f"{'GiB/device':>10} {'limit':>6} {'how':>9} {'model GiB':>9}")
  lines = [head, "-" * len(head)]
  for c in choices:
    lines.append(
        f"{c.run_id:<32} {c.spec.micro_batch_per_device:>8g} x "
        f"{c.spec.grad_accum:<3d} {'yes' if c.spec.model.remat else 'no':>5} "
        f"{c.bytes_per_device / GIB:10.2f} {c.limit_bytes / GIB:6.2f} "
        f"{c.how:>9} {c.modelled_bytes / GIB:9.2f}")
  return "\n".join(lines)
