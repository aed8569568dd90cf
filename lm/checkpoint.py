"""orbax checkpoints: train state (params, optimizer state, step) + data position.

Saves go through ``ocp.CheckpointManager`` (atomic: written to a temporary
directory, renamed when complete), so a run killed mid-save leaves the
previous checkpoint intact. If the latest finalised checkpoint cannot be
restored (corrupted files), the manager falls back to the one before it with a
warning.
"""
from __future__ import annotations

import contextlib
import logging
import os
import time
import warnings
from typing import Any, Optional, Tuple

import orbax.checkpoint as ocp


@contextlib.contextmanager
def _quiet_orbax():
  """orbax logs every save at INFO through absl; keep run output readable."""
  logger = logging.getLogger("absl")
  level = logger.level
  logger.setLevel(max(level, logging.WARNING))
  try:
    yield
  finally:
    logger.setLevel(level)


class CheckpointError(RuntimeError):
  """Checkpoints exist but none can be restored."""


class Checkpointer:

  def __init__(self, directory: str, *, keep: int = 2):
    self.directory = os.path.abspath(directory)
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep, create=True, enable_async_checkpointing=False)
    with _quiet_orbax():
      self.manager = ocp.CheckpointManager(self.directory, options=options)

  def all_steps(self):
    return sorted(self.manager.all_steps())

  def save(self, step: int, state: Any, data_state: dict) -> None:
    with _quiet_orbax():
      self.manager.save(
          int(step),
          args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                  data=ocp.args.JsonSave(data_state)),
          force=True)
      self.manager.wait_until_finished()

  def restore_latest(self, abstract_state: Any
                     ) -> Optional[Tuple[int, Any, dict]]:
    """(step, state, data_state) of the newest readable checkpoint.

    None when there is no checkpoint at all; ``CheckpointError`` when there
    are checkpoints but none can be read (never a silent restart from 0).
    """
    steps = self.all_steps()
    for step in reversed(steps):
      try:
        with _quiet_orbax():
          restored = self.manager.restore(
              step,
              args=ocp.args.Composite(
                  state=ocp.args.StandardRestore(abstract_state),
                  data=ocp.args.JsonRestore()))
        return step, restored["state"], dict(restored["data"])
      except Exception as e:  # corrupted / partial checkpoint
        aside = self._move_aside(step)
        msg = (f"checkpoint at step {step} in {self.directory} is unreadable "
               f"({type(e).__name__}: {(str(e).splitlines() or [''])[0][:200]}"
               f"); moved to {aside}; falling back to the previous one")
        warnings.warn(msg)
        logging.warning(msg)
    if steps:
      raise CheckpointError(
          f"none of the checkpoints {steps} in {self.directory} can be read "
          "(moved aside as *.unreadable-*); inspect them or use a new workdir")
    return None

  def _move_aside(self, step: int) -> str:
    """Renames a bad checkpoint out of the manager's view (kept, not deleted).

    Process 0 renames; every process waits for it before reloading.
    """
    import jax
    src = os.path.join(self.directory, str(step))
    dst = f"{src}.unreadable"
    if jax.process_index() == 0:
      dst = f"{src}.unreadable-{int(time.time())}"
      os.replace(src, dst)
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils
      multihost_utils.sync_global_devices(f"checkpoint-move-aside-{step}")
    with _quiet_orbax():
      self.manager.reload()
    return dst

  def close(self) -> None:
    with _quiet_orbax():
      self.manager.close()
