"""What trains next: the tasks of a sweep, in the order their inputs exist.

The executor asks a scheduler for its first tasks, hands them to the runner,
and gives each trunk outcome back for the tasks it unlocks:

* ``Independent``: every run still to do, at once (nothing depends on
  anything).
* ``Trunks`` (``sweep.scheme='wsd_trunk'``, experiments.trunks): per trunk,
  one task trains it from wherever it is to the next branch point a branch
  still needs (``stop_at``; its checkpoint there is kept), and every branch
  whose branch-point checkpoint exists (or that has checkpoints of its own,
  after a crash) is submitted with ``init_from``. When a segment comes back,
  its branches are submitted and the next segment after them, so with the
  ray runner trunks train side by side and branches start as soon as their
  checkpoint is written. Nothing is trained twice: the trunk resumes from
  its newest checkpoint, a branch from its own, finished branches are in the
  ledger, and a trunk's progress is its checkpoints (``DIR/trunks/<id>/``).

Reads only directory listings (no orbax, no JAX): ``lm.init_from`` verifies
every checkpoint a branch adopts.
"""
from __future__ import annotations

import os
from typing import Callable, Dict, List, Sequence

from experiments.runners.base import RunTask
from lm import safe_io
from lm.config import ConfigError

TRUNKS_DIR = "trunks"


def checkpoint_steps(run_dir: str) -> List[int]:
  """Steps of the finished checkpoints in ``run_dir/checkpoints`` (orbax
  writes into a temporary name and renames when complete)."""
  d = os.path.join(run_dir, "checkpoints")
  if not os.path.isdir(d):
    return []
  return sorted(int(n) for n in os.listdir(d) if n.isdigit())


class Independent:
  """Every task at once."""

  def __init__(self, tasks: Sequence[RunTask]):
    self._tasks = list(tasks)

  def initial(self) -> List[RunTask]:
    return list(self._tasks)

  def trunk_finished(self, task: RunTask) -> List[RunTask]:
    raise AssertionError(f"no trunks in this sweep ({task.run_id})")

  def waiting_on(self, trunk_id: str) -> list:
    return []


class Trunks:
  """Trunk segments and branches of a wsd_trunk plan (module docstring)."""

  def __init__(self, plan, workdir: str, todo: Sequence, run_task: Callable,
               trunk_task: Callable):
    self.trunks = {t.trunk_id: t for t in plan.trunks}
    self.workdir = workdir
    self._run_task, self._trunk_task = run_task, trunk_task
    self._waiting: Dict[str, list] = {tid: [] for tid in self.trunks}
    for run in sorted(todo, key=lambda r: r.branch_step):
      self._waiting[run.trunk_id].append(run)

  def trunk_dir(self, trunk_id: str) -> str:
    return os.path.abspath(safe_io.confined(self.workdir, TRUNKS_DIR, trunk_id,
                                            what="trunk directory"))

  def waiting_on(self, trunk_id: str) -> list:
    """Branches not yet submitted because their checkpoint does not exist."""
    return list(self._waiting[trunk_id])

  def initial(self) -> List[RunTask]:
    tasks: List[RunTask] = []
    for tid in sorted(self.trunks, key=lambda t: self.trunks[t].N):
      tasks += self._advance(tid)
    return tasks

  def trunk_finished(self, task: RunTask) -> List[RunTask]:
    """The tasks a finished trunk segment unlocks."""
    return self._advance(task.run_id)

  def _advance(self, tid: str) -> List[RunTask]:
    """Ready branches of ``tid``, then its next segment if any branch waits."""
    have = checkpoint_steps(self.trunk_dir(tid))
    ready = [r for r in self._waiting[tid]
             if r.branch_step in have or checkpoint_steps(self._run_dir(r))]
    self._waiting[tid] = [r for r in self._waiting[tid] if r not in ready]
    tasks = [self._run_task(r, (self.trunk_dir(tid), r.branch_step))
             for r in ready]
    if self._waiting[tid]:
      need = self._waiting[tid][0]
      at = max(have, default=0)
      if at > need.branch_step:
        raise ConfigError(
            f"trunk {tid} is at step {at} but has no checkpoint at step "
            f"{need.branch_step}, where branch {need.run_id} starts (it has "
            f"{have}); delete {self.trunk_dir(tid)} to train the trunk again")
      tasks.append(self._trunk_task(self.trunks[tid], need.branch_step))
    return tasks

  def _run_dir(self, run) -> str:
    return os.path.join(self.workdir, "runs", run.run_id)

  def drop(self, trunk_id: str) -> list:
    """The branches still waiting on a trunk that cannot continue."""
    out, self._waiting[trunk_id] = self._waiting[trunk_id], []
    return out
