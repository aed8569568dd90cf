"""The ``ray`` runner: every run is a Ray task, scheduled by its resources.

``--executor=ray`` starts a private Ray instance on this machine (all its
CPUs and GPUs; no dashboard); ``--ray_address=auto`` or ``HOST:PORT`` (or
``$RAY_ADDRESS``) joins a running cluster (``ray start --head`` /
``ray start --address=...``). Each
run asks ``sweep.resources_per_run``, so an 8-GPU box trains 8 runs at once,
one GPU each. Outcomes stream back in completion order; the driver (this
process) appends each to the ledger as it arrives.

Tasks are not retried by Ray (``max_retries=0``): a crashed worker, a lost
node or a raised error comes back to the driver, which resubmits the run up
to ``sweep.max_retries`` times (``experiments.executor``); the retry resumes
from the run's checkpoint. Every node must see the sweep directory at the
same path (a shared filesystem) and have this package installed.
"""
from __future__ import annotations

import logging
import os
from typing import Any, Callable, Dict, Optional

from experiments.runners import ray_task
from experiments.runners import resources as resources_lib
from experiments.runners.base import Outcome, Runner, RunTask, one_line
from lm.config import ConfigError

EXTRA_HINT = "pip install -e '.[ray]'"
# Environment variables a remote cluster's workers get from the driver (a
# private instance inherits the driver's whole environment anyway).
FORWARDED_ENV = ("SCALINGLM_CACHE",)
LOCAL_OBJECT_STORE_BYTES = 128 * 2**20  # outcomes are small dicts


def import_ray():
  try:
    import ray  # heavy optional dependency (scalinglm[ray]): lazily  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise ImportError("--executor=ray needs Ray, an optional extra: "
                      f"{EXTRA_HINT}") from None
  return ray


class RayRunner(Runner):
  name = "ray"

  def __init__(self, *, resources: Any = resources_lib.AUTO,
               address: Optional[str] = None, num_cpus: Optional[int] = None,
               log: Callable[[str], None] = print, **unused):
    del unused
    self._ray_module = import_ray()  # a missing extra fails before any write
    resources_lib.parse(resources)  # so does a bad spec
    address = address or os.environ.get("RAY_ADDRESS") or None  # Ray's convention
    self._spec, self._address, self._num_cpus = resources, address, num_cpus
    self._log = log
    self._refs: Dict[Any, RunTask] = {}
    self._ray = None
    self.resources: Dict[str, float] = {}

  def __enter__(self) -> "RayRunner":
    ray = self._ray = self._ray_module
    if self._address:
      env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
      try:
        ray.init(address=self._address, logging_level=logging.WARNING,
                 runtime_env={"env_vars": env} if env else None)
      except (ConnectionError, RuntimeError, ValueError) as e:
        raise ConfigError(
            f"cannot join the Ray cluster at --ray_address={self._address} "
            f"({(str(e).splitlines() or [''])[0][:200]}); start one with "
            "`ray start --head`, or leave --ray_address out to start a "
            "private instance on this machine") from None
    else:
      ray.init(num_cpus=self._num_cpus, include_dashboard=False,
               logging_level=logging.WARNING,
               object_store_memory=LOCAL_OBJECT_STORE_BYTES)
    try:
      self._check_cluster()
    except BaseException:
      ray.shutdown()
      raise
    # A GPU/TPU run gets a fresh worker (Ray binds the device to the process
    # when JAX starts; exiting frees its memory); CPU runs reuse workers,
    # keeping their pinned core and in-process caches (corpus, compiled steps).
    max_calls = 1 if resources_lib.uses_accelerator(self.resources) else 0
    self._remote = ray.remote(max_calls=max_calls, max_retries=0,
                              retry_exceptions=False)(ray_task.run_task).options(
        **resources_lib.ray_options(self.resources))
    return self

  def _check_cluster(self) -> None:
    ray = self._ray
    total = ray.cluster_resources()
    self.resources = resources_lib.resolve(self._spec, total)
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    if not any(resources_lib.fits(self.resources, n) for n in nodes):
      raise ConfigError(
          f"sweep.resources_per_run ({resources_lib.fmt(self.resources)}) "
          f"fits no node of the Ray cluster (it has "
          f"{resources_lib.fmt({k: v for k, v in total.items() if k in ('CPU', 'GPU', 'TPU')})});"
          " ask for less, or add nodes")
    if (total.get("GPU", 0) > 0
        and not resources_lib.uses_accelerator(self.resources)):
      self._log(f"warning: the Ray cluster has {total['GPU']:g} GPUs but "
                "sweep.resources_per_run asks for none: runs train on CPU "
                "(--config.sweep.resources_per_run=GPU=1 gives each run one)")

  def describe(self) -> str:
    total = self._ray.cluster_resources()
    where = self._address or "a private Ray instance on this machine"
    per_run = min(total.get(k, 0.0) // v for k, v in self.resources.items()
                  if v > 0)
    return (f"ray: {where} ({resources_lib.fmt({k: v for k, v in total.items() if k in ('CPU', 'GPU', 'TPU')})}); "
            f"each run asks {resources_lib.fmt(self.resources)}, "
            f"up to {per_run:g} at once")

  def submit(self, task: RunTask) -> None:
    ref = self._remote.remote(task, dict(self.resources))
    self._refs[ref] = task

  def pending(self) -> int:
    return len(self._refs)

  def next_outcome(self) -> Outcome:
    ray = self._ray
    [ref], _ = ray.wait(list(self._refs), num_returns=1)
    task = self._refs.pop(ref)
    try:
      return ray.get(ref)
    except ray.exceptions.RayError as e:  # worker crash, node loss, OOM kill
      cause = getattr(e, "cause", None)  # RayTaskError: what the task raised
      return Outcome(task, "error", {}, error=one_line(
          cause if isinstance(cause, BaseException) else e))

  def close(self) -> None:
    ray, self._ray = self._ray, None
    if ray is None:
      return
    for ref in list(self._refs):
      ray.cancel(ref, force=True)  # they resume from checkpoints next time
    self._refs.clear()
    ray.shutdown()
