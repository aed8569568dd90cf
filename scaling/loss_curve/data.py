"""Loss curves with their whole learning-rate schedule: records and readers.

A ``LossCurve`` is one training run of one model: the learning rate of
*every* step 0..T-1 (``lr_T``; row s holds the rate of update s, and the loss
logged at step s follows updates 1..s, so S1(s) = sum of lr_T[0..s]; a
schedule warming up from 0 has lr_T[0] = 0) and the loss at the logged steps.

Sources (``load``):
  * CSV files, one curve per file, columns ``step, lr, loss``: one row for
    every integer step from 0 to the last, ``loss`` empty where it was not
    logged. ``--input`` takes one file, a comma-separated list of files or a
    directory (every ``*.csv`` in it, sorted by name).
  * the project's own schedules (``lm.schedules``, evaluated at every step):
    ``schedule_lr``.
  * built-in data sets ``luo2025_25M`` / ``luo2025_100M``
    (``scaling.loss_curve.luo2025``).
"""
from __future__ import annotations

import csv
import dataclasses
import glob
import hashlib
import io
import os
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

import jax.numpy as jnp

from lm import safe_io
from lm import schedules
from scaling.io.types import ScalingDataError


@dataclasses.dataclass(frozen=True)
class LossCurve:
  """One run: its schedule at every step and its loss at the logged steps.

  Attributes:
    name: identifier (file stem, schedule name).
    lr_T: learning rate of every step 0..T-1 (T = len(lr_T)).
    step_M: logged steps, strictly increasing, in [1, T-1].
    loss_M: loss at each logged step (nats/token, > 0).
    meta: free-form (source, schedule recipe, ...).
  """
  name: str
  lr_T: np.ndarray
  step_M: np.ndarray
  loss_M: np.ndarray
  meta: Dict[str, Any] = dataclasses.field(default_factory=dict)

  @property
  def S1_M(self) -> np.ndarray:
    """S1(t) = sum_{tau <= t} eta_tau at the logged steps (Luo et al. 2025)."""
    return np.cumsum(self.lr_T)[self.step_M]


@dataclasses.dataclass(frozen=True)
class LossCurveSet:
  """Curves of one model, with a provenance record."""
  curves: Tuple[LossCurve, ...]
  provenance: Dict[str, Any]

  def __len__(self) -> int:
    return len(self.curves)

  def __iter__(self) -> Iterator[LossCurve]:
    return iter(self.curves)

  def names(self) -> List[str]:
    return [c.name for c in self.curves]

  def select(self, names: Sequence[str]) -> "LossCurveSet":
    by = {c.name: c for c in self.curves}
    unknown = [n for n in names if n not in by]
    if unknown:
      raise ScalingDataError(f"unknown loss curve(s) {', '.join(unknown)} "
                             f"(have: {', '.join(by)})")
    return LossCurveSet(tuple(by[n] for n in names), dict(self.provenance))


def check_curve(c: LossCurve) -> LossCurve:
  """Validates one curve; raises ScalingDataError with one actionable line."""
  lr, step, loss = (np.asarray(c.lr_T, np.float64), np.asarray(c.step_M),
                    np.asarray(c.loss_M, np.float64))
  if lr.ndim != 1 or lr.size < 2 or not np.all(np.isfinite(lr)) or np.any(lr < 0):
    raise ScalingDataError(f"curve {c.name}: the learning rate must be finite "
                           "and >= 0 at every step")
  if step.size < 1 or step.shape != loss.shape:
    raise ScalingDataError(f"curve {c.name}: no logged loss")
  if np.any(np.diff(step) <= 0) or step[0] < 1 or step[-1] >= lr.size:
    raise ScalingDataError(f"curve {c.name}: logged steps must increase within "
                           f"1..{lr.size - 1}")
  if not np.all(np.isfinite(loss)) or np.any(loss <= 0):
    raise ScalingDataError(f"curve {c.name}: losses must be finite and > 0")
  if np.cumsum(lr)[step[0]] <= 0:
    raise ScalingDataError(f"curve {c.name}: zero learning-rate area S1 at the "
                           f"first logged step {int(step[0])}")
  return dataclasses.replace(c, lr_T=lr, step_M=step.astype(np.int64),
                             loss_M=loss)


def read_csv(path: str) -> LossCurve:
  """One curve from a ``step, lr, loss`` CSV (every step 0..last present)."""
  name = os.path.splitext(os.path.basename(path))[0]
  try:
    with open(path, newline="") as f:
      rows = list(csv.reader(f))
  except OSError as e:
    raise ScalingDataError(f"cannot read loss curve {path!r} ({e})") from None
  if not rows or [h.strip() for h in rows[0]] != ["step", "lr", "loss"]:
    raise ScalingDataError(f"{path}: header must be 'step,lr,loss' (one row per "
                           "step from 0, loss empty where not logged)")
  body = [r for r in rows[1:] if any(x.strip() for x in r)]
  try:
    step = np.array([int(r[0]) for r in body], np.int64)
    lr = np.array([float(r[1]) for r in body], np.float64)
    loss = np.array([float(r[2]) if len(r) > 2 and r[2].strip() else np.nan
                     for r in body], np.float64)
  except (ValueError, IndexError) as e:
    raise ScalingDataError(f"{path}: unreadable row ({e})") from None
  if not np.array_equal(step, np.arange(step.size)):
    raise ScalingDataError(
        f"{path}: needs one row for every step 0, 1, ..., last (the law sums "
        "the learning rate over all steps); got gaps or an unsorted step column")
  logged = np.isfinite(loss)
  return check_curve(LossCurve(name, lr, step[logged], loss[logged],
                               {"source": os.path.abspath(path)}))


def csv_paths(spec: str) -> List[str]:
  """Files of an --input: a file, a comma-separated list or a directory."""
  out: List[str] = []
  for part in [p.strip() for p in spec.split(",") if p.strip()]:
    part = os.path.expanduser(part)
    if os.path.isdir(part):
      found = sorted(glob.glob(os.path.join(part, "*.csv")))
      if not found:
        raise ScalingDataError(f"no *.csv loss curves in directory {part!r}")
      out += found
    elif os.path.isfile(part):
      out.append(part)
    else:
      raise ScalingDataError(f"loss curve input {part!r} is neither a file nor "
                             "a directory")
  if not out:
    raise ScalingDataError("empty loss curve input")
  return out


def sha256_files(paths: Sequence[str]) -> str:
  """sha256 of the files' bytes, in order."""
  h = hashlib.sha256()
  for p in paths:
    with open(p, "rb") as f:
      h.update(f.read())
  return h.hexdigest()


def write_csv(curve: LossCurve, path: str) -> None:
  """Writes a curve in the CSV format ``read_csv`` reads (lm.safe_io: atomic,
  never through a link)."""
  loss = np.full(curve.lr_T.size, np.nan)
  loss[curve.step_M] = curve.loss_M
  buf = io.StringIO(newline="")
  w = csv.writer(buf)
  w.writerow(["step", "lr", "loss"])
  for s, (lr, l) in enumerate(zip(curve.lr_T, loss)):
    w.writerow([s, repr(float(lr)), "" if np.isnan(l) else repr(float(l))])
  safe_io.atomic_write(path, buf.getvalue())


def schedule_lr(schedule: str, steps: int, lr: float, warmup_steps: int,
                min_lr_ratio: float = 0.1, cooldown_fraction: float = 0.2,
                cooldown_shape: str = "1-sqrt") -> np.ndarray:
  """lr_T of a project schedule (``lm.schedules``) at steps 0..steps.

  Row s is ``learning_rate(s)``, the rate of (1-based) update s, as the
  trainer computes it (float32); row 0 is the warmup's 0.
  """
  if schedule not in schedules.SCHEDULES:
    raise ScalingDataError(f"unknown schedule {schedule!r} (valid: "
                           f"{', '.join(schedules.SCHEDULE_NAMES)})")
  hp = {k: jnp.float32(v) for k, v in dict(
      lr=lr, warmup_steps=warmup_steps, steps=steps, min_lr_ratio=min_lr_ratio,
      **schedules.schedule_hparams(schedule, cooldown_shape, steps,
                                   cooldown_fraction)).items()}
  return np.asarray(schedules.learning_rate(jnp.arange(steps + 1), hp),
                    np.float64)
