"""The worker side of the ``ray`` runner: one Ray task trains one run.

Imported by Ray worker processes, so it imports neither jax nor ray at module
level: a task that asked for no accelerator sets ``JAX_PLATFORMS=cpu`` and
pins itself to as many free cores as it asked CPUs *before* JAX starts, so
XLA's intra-op thread pool matches the task's CPU share (two 1-CPU runs on a
2-core machine get one core each instead of four threads fighting for two).
A CPU worker keeps its cores for its life and trains the next runs Ray gives
it on them; a GPU/TPU task runs in a fresh worker (``max_calls=1``, see
ray_runner), which frees the device when it ends.
"""
from __future__ import annotations

import fcntl
import math
import os
import tempfile
from typing import Dict, List

from experiments.runners import resources as resources_lib
from experiments.runners.base import Outcome, RunTask, execute

_HELD: List = []  # open, flock'ed core files: this process's cores


def pin_to_free_cores(n: int) -> List[int]:
  """Pins this process to ``n`` cores no other pinned task holds.

  Cores are claimed with ``flock`` on per-core files under the temp dir, so
  tasks of any sweep on this node share out the cores; the claims die with
  the process. When fewer than ``n`` are free, nothing is pinned.
  """
  allowed = sorted(os.sched_getaffinity(0))
  if n >= len(allowed):
    return allowed
  d = os.path.join(tempfile.gettempdir(), f"scalinglm-cores-{os.getuid()}")
  os.makedirs(d, exist_ok=True)
  got, files = [], []
  for core in allowed:
    f = open(os.path.join(d, f"core{core}.lock"), "a")  # noqa: SIM115
    try:
      fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
      f.close()
      continue
    got.append(core)
    files.append(f)
    if len(got) == n:
      break
  if len(got) < n:
    for f in files:
      f.close()
    return allowed
  _HELD.extend(files)
  os.sched_setaffinity(0, got)
  return got


def run_task(task: RunTask, resources: Dict[str, float]) -> Outcome:
  """Entry point of the Ray task (see module docstring)."""
  if not resources_lib.uses_accelerator(resources) and not _HELD:
    os.environ.setdefault("JAX_PLATFORMS", "cpu")  # first task of this worker
    if hasattr(os, "sched_setaffinity"):
      pin_to_free_cores(max(1, math.ceil(resources.get("CPU", 1.0))))
  return execute(task)
