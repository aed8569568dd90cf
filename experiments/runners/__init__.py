"""Runner registry: where the runs of a sweep train (``--executor=NAME``).

Each entry names a ``Runner`` class by import path, so a runner's optional
dependencies (Ray) are imported only when it is chosen. The interface, and
what every runner guarantees, is in ``experiments.runners.base``.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict

from lm.config import ConfigError
from experiments.runners.base import load


@dataclasses.dataclass(frozen=True)
class RunnerSpec:
  name: str
  target: str          # "module:Class"
  summary: str
  multi_host: bool     # may run inside a multi-process JAX job
  extra: str = ""      # setup.cfg extra it needs

  def make(self, **options: Any):
    return load(self.target)(**options)


RUNNERS: Dict[str, RunnerSpec] = {
    spec.name: spec for spec in (
        RunnerSpec("local", "experiments.runners.local:LocalRunner",
                   "in this process, one run after another, over this "
                   "process's mesh (every process of a multi-host job runs "
                   "the same runs)", multi_host=True),
        RunnerSpec("ray", "experiments.runners.ray_runner:RayRunner",
                   "one Ray task per run with sweep.resources_per_run, as "
                   "many at once as the cluster fits", multi_host=False,
                   extra="ray"),
    )
}


def get(name: str) -> RunnerSpec:
  try:
    return RUNNERS[name]
  except KeyError:
    raise ConfigError(f"unknown --executor={name!r} (valid: "
                      f"{', '.join(RUNNERS)})") from None
