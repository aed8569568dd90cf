"""The ``local`` runner: trains each task in this process, one at a time.

Runs use this process's whole mesh (all its devices; in a multi-host job,
every process's devices, each process running the same tasks in the same
order). A retried task goes to the front of the queue, so it resumes from
its checkpoint right away.
"""
from __future__ import annotations

import collections

from experiments.runners.base import Outcome, Runner, RunTask, execute


class LocalRunner(Runner):
  name = "local"

  def __init__(self, *, catch_errors: bool = True, **unused):
    del unused  # runner settings that only other runners use (resources)
    self._queue: collections.deque = collections.deque()
    self._catch = catch_errors

  def describe(self) -> str:
    import jax
    return (f"local: one run at a time over {jax.device_count()} "
            f"{jax.devices()[0].platform} device(s)")

  def submit(self, task: RunTask) -> None:
    if task.attempt > 1:
      self._queue.appendleft(task)
    else:
      self._queue.append(task)

  def pending(self) -> int:
    return len(self._queue)

  def next_outcome(self) -> Outcome:
    return execute(self._queue.popleft(), catch_errors=self._catch)
