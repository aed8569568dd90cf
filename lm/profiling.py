"""``jax.profiler`` traces of chosen optimizer steps (``train.profile_steps``).

``StepTrace((a, b), logdir)`` starts a trace before the first jitted call that
runs step a+1 and stops it once step b has run (after its outputs are ready),
so the trace covers steps a+1..b, widened to whole ``steps_per_call`` chunks.
Files land in ``logdir/plugins/profile/<timestamp>/<host>.xplane.pb`` (and a
``.trace.json.gz``), which TensorBoard's profile plugin, XProf and Perfetto
read. Tracing only observes: a profiled run's results equal an unprofiled one's
(``lm.config.RESUME_MUTABLE``).
"""
from __future__ import annotations

import contextlib
import glob
import os
from typing import Any, Iterator, List, Sequence


def trace_files(logdir: str) -> List[str]:
  """The trace files under ``logdir`` (newest run last)."""
  return sorted(glob.glob(os.path.join(logdir, "plugins", "profile", "*",
                                       "*.xplane.pb")))


@contextlib.contextmanager
def trace(logdir: str) -> Iterator[None]:
  """Traces everything run inside the block into ``logdir``."""
  import jax
  jax.profiler.start_trace(logdir)
  try:
    yield
  finally:
    jax.profiler.stop_trace()


class StepTrace:
  """Starts/stops one trace around steps ``(a, b]`` of a training loop.

  Call ``before(step)`` with the number of completed steps ahead of each
  jitted call, ``after(step, outputs)`` after it, and ``stop()`` in a
  ``finally``. ``steps=()`` (or ``enabled=False``, e.g. on processes other
  than 0) makes every call a no-op.
  """

  def __init__(self, steps: Sequence[int], logdir: str, enabled: bool = True):
    self.steps = tuple(steps)
    self.logdir = logdir
    self._ctx = None
    self._pending = bool(enabled and self.steps)

  def before(self, step: int) -> None:
    if self._pending and self.steps[0] <= step < self.steps[1]:
      self._pending = False
      self._ctx = trace(self.logdir)
      self._ctx.__enter__()

  def after(self, step: int, outputs: Any) -> None:
    if self._ctx is not None and step >= self.steps[1]:
      import jax
      jax.block_until_ready(outputs)
      self.stop()

  def stop(self) -> None:
    if self._ctx is not None:
      ctx, self._ctx = self._ctx, None
      ctx.__exit__(None, None, None)
