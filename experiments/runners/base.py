"""The runner interface: a runner trains planned runs and hands back outcomes.

The executor (``experiments.executor``) plans the sweep, submits one
``RunTask`` per run still to do, and records each ``Outcome`` in the ledger as
it arrives: the driver process is the ledger's only writer, whatever the
runner. A runner decides only where and when a task trains; every runner
calls ``execute`` (here, or in a worker process) to train it, so a run means
the same thing everywhere: ``lm.trainer.train`` on ``DIR/runs/<run_id>``,
which resumes from that directory's newest checkpoint.
"""
from __future__ import annotations

import abc
import dataclasses
import importlib
import os
import socket
import time
from typing import Any, Callable, Dict, Optional, Tuple
from lm import logs
from lm.cli import user_errors
from lm.trainer import TrainingDiverged
from lm.workdir import WorkdirBusy

ERROR_CHARS = 500  # an Outcome's error is one line, at most this long


@dataclasses.dataclass(frozen=True)
class RunTask:
  """One attempt at one planned run (picklable: it travels to workers)."""
  run_id: str
  lm_config: Dict[str, Any]   # the run's complete lm config, plain dict
  run_dir: str                # absolute path DIR/runs/<run_id>
  attempt: int = 1            # 1, then 2, ... after failures
  verbose: bool = False       # per-run progress bar (local runner only)
  trainer: str = "lm.trainer:train"  # "module:function" with train's signature
  # lm.trainer.train(provenance=...): stored in every checkpoint of the run
  # (e.g. the sweep's config hash), so foreign checkpoints are refused.
  provenance: Dict[str, Any] = dataclasses.field(default_factory=dict)
  # wsd_trunk (experiments.trunks): "trunk" tasks train a trunk to
  # ``stop_at`` (its next branch point); branches start from their trunk's
  # checkpoint ``init_from = (trunk_dir, step)``.
  kind: str = "run"                       # "run" | "trunk"
  init_from: Optional[Tuple[str, int]] = None
  stop_at: Optional[int] = None

  def train_kwargs(self) -> Dict[str, Any]:
    """lm.trainer.train's keyword arguments for this task."""
    kw: Dict[str, Any] = {"verbose": self.verbose,
                          "provenance": dict(self.provenance)}
    if self.init_from is not None:
      kw["init_from"] = (self.init_from[0], int(self.init_from[1]))
    if self.stop_at is not None:
      kw["stop_at"] = int(self.stop_at)
    return kw


@dataclasses.dataclass
class Outcome:
  """What came back from one attempt."""
  task: RunTask
  status: str                         # "ok" | "diverged" | "error"
  meta: Dict[str, Any]                # run.json as the trainer left it ({} if none)
  error: str = ""                     # status "error": one line
  fatal: Optional[BaseException] = None  # bad input: stop the sweep, no retry
  wall_s: float = 0.0                 # this attempt, as seen by the worker
  where: str = ""                     # host:pid that ran the attempt


class Runner(abc.ABC):
  """Trains submitted tasks; ``next_outcome`` returns them as they finish.

  Use as a context manager (``__enter__`` starts whatever the runner needs,
  ``__exit__`` releases it and abandons tasks still pending; they resume
  from their checkpoints in a later invocation).
  """
  name = "?"

  def __enter__(self) -> "Runner":
    return self

  def __exit__(self, *exc) -> None:
    self.close()

  def describe(self) -> str:
    """One line for the sweep log: where runs train."""
    return self.name

  @abc.abstractmethod
  def submit(self, task: RunTask) -> None:
    """Queues ``task``; never blocks on training."""

  @abc.abstractmethod
  def pending(self) -> int:
    """Tasks submitted and not yet returned by ``next_outcome``."""

  @abc.abstractmethod
  def next_outcome(self) -> Outcome:
    """Blocks until a pending task finishes (any order); needs pending() > 0."""

  def close(self) -> None:
    pass


def one_line(e: BaseException) -> str:
  text = (str(e).strip().splitlines() or [""])[0]
  line = f"{type(e).__name__}: {text}" if text else type(e).__name__
  return line[:ERROR_CHARS]


def load(path: str) -> Callable[..., Any]:
  """The object named by "module:name" (a trainer, a runner class)."""
  module, _, name = path.partition(":")
  return getattr(importlib.import_module(module), name)


def execute(task: RunTask, *, catch_errors: bool = True) -> Outcome:
  """Trains ``task`` in this process and reports how it ended.

  A diverged run is an outcome, not an error. Bad input or environment
  (``lm.cli.user_errors``: config, checkpoint, missing file or extra) comes
  back as ``fatal``: retrying cannot fix it, except a busy run directory
  (an abandoned task of an earlier driver still finishing: it ends soon).
  Any other exception is an
  ``error`` the executor may retry (``catch_errors=False`` lets it propagate
  instead: multi-host jobs, whose processes must fail together).
  """
  t0 = time.time()
  where = f"{socket.gethostname()}:{os.getpid()}"

  def outcome(status, meta=None, **kw) -> Outcome:
    if meta is None:
      meta = logs.read_json(os.path.join(task.run_dir, "run.json")) or {}
    return Outcome(task, status, dict(meta), wall_s=time.time() - t0,
                   where=where, **kw)

  try:
    train = load(task.trainer)
    meta = train(task.lm_config, task.run_dir, **task.train_kwargs())
    return outcome("ok", meta)
  except TrainingDiverged:
    return outcome("diverged")
  except WorkdirBusy as e:
    return outcome("error", error=one_line(e))
  except user_errors() as e:
    return outcome("error", error=one_line(e), fatal=e)
  except Exception as e:  # pylint: disable=broad-except
    if not catch_errors:
      raise
    return outcome("error", error=one_line(e))
