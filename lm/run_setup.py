"""Setting up one training attempt: config checks, data, compiled steps,
where to start, run.json and evaluation (the pieces ``lm.trainer._train``
runs in order, one job each)."""
from __future__ import annotations

import dataclasses
import os
import platform
import time
from typing import Any, Dict, Optional

import jax
import numpy as np

from lm import config as config_lib
from lm import evaluate as evaluate_lib
from lm import flops as flops_lib
from lm import hardware, logs, optim, schedules, sharding, step as step_lib
from lm import init_from as init_from_lib
from lm import params as params_lib
from lm.checkpoint import Checkpointer
from lm.config import ConfigError
from lm.data import build_dataset

MFU_CONVENTION = "attention_inclusive"  # PaLM App. B model FLOPs, as MFU is defined


def _versions() -> Dict[str, str]:
  import flax
  import optax
  import orbax.checkpoint as ocp
  return {"python": platform.python_version(), "jax": jax.__version__,
          "flax": flax.__version__, "optax": optax.__version__,
          "orbax": getattr(ocp, "__version__", "?"), "numpy": np.__version__}


def _check_resumable(old: Optional[dict], new_cfg: dict, workdir: str,
                     ignore=()) -> None:
  """Refuses a config that differs from the run already in ``workdir``
  (except ``lm.config.RESUME_MUTABLE`` fields, which cannot change results)."""
  if not old or "config" not in old:
    return
  diff = config_lib.differing_field(old["config"], new_cfg, ignore)
  if diff is not None:
    name, theirs, ours = diff
    raise ConfigError(
        f"{workdir} holds a run with {name}={theirs!r}, but this config says "
        f"{ours!r}; use a new --workdir (or the same config) to resume")


def _peak_dtype(dtype: str) -> str:
  # XLA runs f32 matmuls on GPU tensor cores as TF32 unless asked for
  # "highest" precision, so f32 MFU is measured against the TF32 peak there.
  precision = str(jax.config.jax_default_matmul_precision or "").lower()
  if (dtype == "float32" and jax.default_backend() == "gpu"
      and precision not in ("highest", "float32")):
    return "tfloat32"
  return dtype


def _checkpoint_check(cfg_json: dict, workdir: str,
                      provenance: Optional[dict]):
  """Refuses a checkpoint written by another config or another caller (the
  checkpoint's own record: deleting run.json does not bypass this)."""

  def check(step: int, record: dict) -> None:
    if not record:  # written before checkpoints carried their config
      return
    where = f"{workdir} (checkpoint at step {step})"
    _check_resumable({"config": record.get("config") or {}}, cfg_json, where)
    for key, want in sorted((provenance or {}).items()):
      got = (record.get("provenance") or {}).get(key)
      if got != want:
        raise ConfigError(
            f"{where} was written with {key}={str(got)[:16]!r}, not "
            f"{str(want)[:16]!r} (another sweep or config); use a new "
            "--workdir, or the original config to resume")
  return check


@dataclasses.dataclass
class Setup:
  """The config, data and compiled functions of one attempt."""
  cfg: Any
  cfg_json: dict
  old: Optional[dict]          # run.json before this attempt
  dataset: Any
  eval_set: Any
  mesh: Any
  compiled: step_lib.Compiled
  hp: Dict[str, jax.Array]
  fpt: float                   # training FLOPs per token (train.flop_convention)

  @property
  def tokens_per_step(self) -> int:
    return self.cfg.train.batch_size * self.cfg.data.seq_len


def load(cd, pre, workdir: str) -> Setup:
  """Config checks (cheap ones first), data, eval set, compiled steps."""
  pi, pc = jax.process_index(), jax.process_count()
  old = logs.read_json(os.path.join(workdir, "run.json"))
  # Refuse a changed config before spending time on data / tokenizers.
  _check_resumable(old, config_lib.to_jsonable(pre), workdir,
                   ignore={("model", "vocab_size")})
  dataset = build_dataset(pre.data, batch_size=pre.train.batch_size,
                          seed=pre.train.seed, process_index=pi,
                          process_count=pc)
  cfg = config_lib.from_config_dict(cd, vocab_size=dataset.vocab_size)
  # Refuse before training: too little data, or an eval set that cannot be made.
  eval_set = evaluate_lib.check_data(dataset, cfg.train, cfg.data.seq_len, pc)
  cfg_json = config_lib.to_jsonable(cfg)
  _check_resumable(old, cfg_json, workdir)
  mesh, compiled, hp = compile_run(cfg)
  fpt = flops_lib.flops_per_token(cfg.model, cfg.data.seq_len,
                                  cfg.train.flop_convention)
  return Setup(cfg, cfg_json, old, dataset, eval_set, mesh, compiled, hp, fpt)


def compile_run(cfg):
  """(mesh, compiled step functions, traced hyper-parameters)."""
  mesh = sharding.make_mesh(cfg.mesh)
  compiled = step_lib.compiled_for(
      cfg.model, step_lib.StepOptions.from_train(cfg.train), mesh,
      cfg.mesh.rules)
  hp = optim.traced_hparams(cfg.train)
  return mesh, compiled, hp


@dataclasses.dataclass
class Start:
  """Where this attempt starts."""
  step: int
  state: Any
  data_state: Optional[dict]
  own: bool                      # restored from this run's own checkpoint
  init_record: Optional[dict]    # what init_from adopted (run.json init_from)


def start_at(su: Setup, ckpt: Checkpointer, workdir: str,
             provenance: Optional[dict], init_from) -> Start:
  """This run's newest sound checkpoint; else ``init_from``'s; else step 0."""
  restored = ckpt.restore_latest(
      su.compiled.abstract_state,
      check=_checkpoint_check(su.cfg_json, workdir, provenance))
  if restored is not None:
    record = restored.record.get("init_from") or (su.old or {}).get("init_from")
    return Start(restored.step, restored.state, restored.data_state, True,
                 record)
  if init_from is not None:
    adopted, record = init_from_lib.adopt(
        init_from, su.compiled.abstract_state, su.cfg, su.cfg_json, provenance)
    return Start(adopted.step, adopted.state, adopted.data_state, False,
                 record)
  return Start(0, su.compiled.init(jax.random.key(su.cfg.train.seed)), None,
               False, None)


def run_meta(su: Setup, start: Start, workdir: str,
             provenance: Optional[dict]) -> Dict[str, Any]:
  """run.json as this attempt starts (status 'running')."""
  cfg, tc = su.cfg, su.cfg.train
  peak, peak_source = hardware.device_peak_flops(
      dtype=_peak_dtype(cfg.model.dtype), strict=False)  # NaN MFU if unknown
  prior = (su.old or {}) if start.own else {}
  return {
      "status": "running", "config": su.cfg_json,
      "params": params_lib.count_params(cfg.model).to_dict(),
      "flop_convention": tc.flop_convention,
      "flop_convention_citation": flops_lib.CONVENTIONS[tc.flop_convention],
      "flops_per_token": su.fpt, "mfu_convention": MFU_CONVENTION,
      "peak_flops_per_device": peak, "peak_flops_source": peak_source,
      "n_devices": jax.device_count(), "n_processes": jax.process_count(),
      "mesh": dict(zip(su.mesh.axis_names, map(int, su.mesh.devices.shape))),
      "device_kind": jax.devices()[0].device_kind,
      "data": su.dataset.metadata, "versions": _versions(),
      "schedule": schedules.describe(tc), "planned_steps": tc.steps,
      "tokens_per_step": su.tokens_per_step,
      "resumed_from_step": start.step if start.own and start.step else None,
      "init_from": start.init_record,
      # Wall time accumulates over attempts (a resumed run adds to its total).
      "wall_time_s": float(prior.get("wall_time_s") or 0.0),
      "provenance": dict(provenance or {}),
      **evaluate_lib.data_fields(su.dataset, su.eval_set,
                                 tc.steps * su.tokens_per_step),
  }


class Evaluation:
  """Scores the eval set; accumulates eval FLOPs and time into ``meta``."""

  def __init__(self, su: Setup, meta: Dict[str, Any], prior: dict):
    self.evaluator = evaluate_lib.Evaluator(
        su.compiled, su.eval_set, su.cfg.train.eval_batch_size,
        flops_per_token=su.fpt, process_index=jax.process_index(),
        process_count=jax.process_count())
    self.meta = meta
    meta.update(eval=self.evaluator.metadata(),
                eval_flops=float(prior.get("eval_flops") or 0.0),
                eval_time_s=float(prior.get("eval_time_s") or 0.0))

  def __call__(self, state) -> Dict[str, float]:
    t0 = time.time()
    res = self.evaluator(state.params)  # cumulative cost over this run's evals:
    self.meta.update(eval_flops=self.meta["eval_flops"] + res.flops,
                     eval_time_s=self.meta["eval_time_s"] + time.time() - t0)
    self.meta["eval"]["se_per_sequence"] = res.se_per_sequence
    return {"eval_loss": res.loss, "eval_loss_se": res.se}
