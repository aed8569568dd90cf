"""orbax checkpoints: train state, data position and an integrity record.

Saves go through ``ocp.CheckpointManager`` (atomic: written to a temporary
directory, renamed when complete), so a run killed mid-save leaves the
previous checkpoint intact. Each checkpoint holds three items:

* ``state``: params, optimizer state and step;
* ``data``: the data iterator's position;
* ``integrity``: per-array digests of ``state``, the sha256 of ``data``,
  the run's config (``lm.integrity``) and a sha256 of the record itself,
  written at save time and checked on restore: every item is covered.

Restore takes the newest checkpoint that reads, matches its digests and holds
only finite numbers. A checkpoint that fails is reported in ONE warning line
and the previous one is tried; a writer (``lm.trainer``) moves the bad one
aside (``<step>.unreadable-<time>``, kept, never deleted) so training can save
that step again, a reader (``read_only=True``: sampling, analysis) only skips
it in memory and never changes the directory. A checkpoint of a different
config is not "bad": the caller's ``check`` raises and nothing is moved.
Checkpoints written before the integrity item existed restore unverified.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
import warnings
from typing import Any, Callable, Dict, Optional, Sequence, Set

import orbax.checkpoint as ocp

from lm import integrity

INTEGRITY_FORMAT = 1


@contextlib.contextmanager
def _quiet_orbax():
  """orbax logs every save at INFO, and every failed read as a multi-line
  ERROR from its worker threads, through absl; the exception it raises says
  the same in one line. SCALINGLM_VERBOSE=1 keeps orbax's logs."""
  logger = logging.getLogger("absl")
  level = logger.level
  verbose = os.environ.get("SCALINGLM_VERBOSE", "") not in ("", "0")
  logger.setLevel(max(level, logging.WARNING if verbose else logging.CRITICAL))
  try:
    yield
  finally:
    logger.setLevel(level)


class CheckpointError(RuntimeError):
  """Checkpoints exist but none can be restored."""


@dataclasses.dataclass
class Restored:
  step: int
  state: Any
  data_state: dict
  record: Dict[str, Any]   # the integrity item ({} for old checkpoints)


def _writer_options(keep: int, keep_steps: Sequence[int] = ()
                    ) -> "ocp.CheckpointManagerOptions":
  """Keeps the newest ``keep`` checkpoints with ``preservation_policy=
  LatestN(keep)`` (``max_to_keep`` is deprecated in orbax 0.12.x), and every
  checkpoint at a step of ``keep_steps`` (``AnyPreservationPolicy`` of
  ``LatestN`` and ``CustomSteps``). Where the policy API is absent it falls
  back to ``max_to_keep=keep``, or to keeping everything when ``keep_steps``
  must survive."""
  common = dict(create=True, enable_async_checkpointing=False)
  try:
    from orbax.checkpoint import checkpoint_managers as cm
    policy = cm.LatestN(n=keep)
    if keep_steps:
      policy = cm.AnyPreservationPolicy(
          policies=[policy, cm.CustomSteps(steps=sorted(keep_steps))])
    return ocp.CheckpointManagerOptions(preservation_policy=policy, **common)
  except (ImportError, AttributeError, TypeError):
    return ocp.CheckpointManagerOptions(
        max_to_keep=None if keep_steps else keep, **common)


def _short(e: BaseException) -> str:
  text = " ".join(str(e).split()) or type(e).__name__
  # TensorStore appends a bound-method repr ("See full TensorStore details").
  text = text.split(" See full TensorStore details")[0]
  return f"{type(e).__name__}: {text[:160]}"


class Checkpointer:

  def __init__(self, directory: str, *, keep: int = 2,
               keep_steps: Sequence[int] = (), read_only: bool = False):
    self.directory = os.path.abspath(directory)
    self.read_only = read_only
    self._skipped: Set[int] = set()
    with _quiet_orbax():  # options log their read-only adjustments
      if read_only:
        options = ocp.CheckpointManagerOptions(read_only=True, create=False)
      else:
        options = _writer_options(keep, keep_steps)
      self.manager = ocp.CheckpointManager(self.directory, options=options)

  def all_steps(self):
    return sorted(s for s in self.manager.all_steps() if s not in self._skipped)

  def save(self, step: int, state: Any, data_state: dict,
           record: Optional[Dict[str, Any]] = None) -> None:
    """Saves ``state`` with its digests; ``record`` (config, provenance) is
    stored beside them in the integrity item."""
    if self.read_only:
      raise CheckpointError(f"{self.directory} was opened read-only")
    rec = dict(record or {}, format=INTEGRITY_FORMAT, step=int(step),
               fingerprint_algo=integrity.FINGERPRINT_ALGO,
               fingerprint=integrity.fingerprint(state),
               data_sha256=integrity.config_sha256(data_state))
    rec.pop("record_sha256", None)  # a restored record passed back in
    rec["record_sha256"] = integrity.config_sha256(rec)  # the record itself
    with _quiet_orbax():
      self.manager.save(
          int(step),
          args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                  data=ocp.args.JsonSave(data_state),
                                  integrity=ocp.args.JsonSave(rec)),
          force=True)
      self.manager.wait_until_finished()

  def record(self, step: int) -> Dict[str, Any]:
    """The integrity item of ``step``; {} for checkpoints without one."""
    if not os.path.isdir(os.path.join(self.directory, str(step), "integrity")):
      return {}
    with _quiet_orbax():
      out = self.manager.restore(
          step, args=ocp.args.Composite(integrity=ocp.args.JsonRestore()))
    return dict(out["integrity"])

  def restore_step(self, step: int, abstract_state: Any,
                   record: Dict[str, Any]) -> Restored:
    """Reads checkpoint ``step`` (unverified: see ``verify``)."""
    with _quiet_orbax():
      out = self.manager.restore(
          step, args=ocp.args.Composite(
              state=ocp.args.StandardRestore(abstract_state),
              data=ocp.args.JsonRestore()))
    return Restored(step, out["state"], dict(out["data"]), record)

  @staticmethod
  def verify(restored: Restored) -> Optional[str]:
    """Why ``restored`` must not be used, or None when it is sound."""
    rec = restored.record
    if rec.get("fingerprint"):
      if rec.get("fingerprint_algo") != integrity.FINGERPRINT_ALGO:
        return (f"unknown digest algorithm {rec.get('fingerprint_algo')!r} "
                "(written by a newer version?)")
      bad = integrity.mismatches(rec["fingerprint"],
                                 integrity.fingerprint(restored.state))
      if bad:
        more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
        return f"array digest mismatch in {bad[0]}{more} (corrupted bytes)"
    if rec.get("record_sha256") and integrity.config_sha256(
        {k: v for k, v in rec.items() if k != "record_sha256"}
    ) != rec["record_sha256"]:
      return "its integrity record was changed after it was written"
    if rec.get("step") is not None and int(rec["step"]) != restored.step:
      return (f"its integrity record belongs to step {rec['step']} (a "
              "checkpoint directory renamed or mixed)")
    if rec.get("data_sha256") and integrity.config_sha256(
        restored.data_state) != rec["data_sha256"]:
      return ("data-iterator position differs from the one saved "
              f"({str(restored.data_state)[:80]}; edited or corrupted)")
    if not integrity.all_finite(restored.state):
      return "it holds NaN/Inf values"
    return None

  def restore_latest(self, abstract_state: Any, *,
                     check: Optional[Callable[[int, Dict[str, Any]], None]] = None
                     ) -> Optional[Restored]:
    """The newest sound checkpoint, or None when there is none at all.

    ``check(step, record)`` sees each candidate's integrity record before its
    arrays are read and raises to refuse it (a different config): that error
    propagates and nothing is moved. ``CheckpointError`` when checkpoints
    exist but none is sound (never a silent restart from 0).
    """
    steps = self.all_steps()
    for step in reversed(steps):
      try:
        record = self.record(step)
      except Exception as e:  # pylint: disable=broad-except
        self.reject(step, f"its integrity record is unreadable ({_short(e)})")
        continue
      if check is not None:
        check(step, record)
      try:
        restored = self.restore_step(step, abstract_state, record)
      except Exception as e:  # pylint: disable=broad-except
        self.reject(step, f"it is unreadable ({_short(e)})")
        continue
      reason = self.verify(restored)
      if reason is None:
        return restored
      self.reject(step, reason)
    if steps:
      kept = ("skipped; the directory is unchanged" if self.read_only else
              "moved aside as <step>.unreadable-*")
      raise CheckpointError(
          f"none of the checkpoints {steps} in {self.directory} can be used "
          f"({kept}); inspect them or use a new workdir")
    return None

  def reject(self, step: int, reason: str) -> None:
    """Drops a bad checkpoint from this manager's view, with ONE warning line.

    A writer moves it aside (kept, not deleted) so its step can be saved
    again; a reader only skips it in memory.
    """
    earlier = [s for s in self.all_steps() if s < step]
    then = (f"falling back to step {earlier[-1]}" if earlier
            else "no earlier checkpoint")
    if self.read_only:
      self._skipped.add(step)
      where = "skipped (directory unchanged)"
    else:
      where = f"moved to {os.path.basename(self._move_aside(step))}"
    warnings.warn(f"checkpoint at step {step} in {self.directory} is not "
                  f"usable: {reason}; {where}; {then}", stacklevel=2)

  def _move_aside(self, step: int) -> str:
    """Renames a bad checkpoint out of the manager's view.

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


def read_record(directory: str) -> Optional[Dict[str, Any]]:
  """The integrity record of the newest checkpoint in ``directory`` that has
  a readable one; None when there is none. Read-only: changes nothing."""
  if not os.path.isdir(directory):
    return None
  ckpt = Checkpointer(directory, read_only=True)
  try:
    for step in reversed(ckpt.all_steps()):
      try:
        record = ckpt.record(step)
      except Exception:  # pylint: disable=broad-except
        continue
      if record:
        return record
    return None
  finally:
    ckpt.close()
