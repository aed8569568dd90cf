"""Run outputs: metrics.jsonl, TensorBoard events, run.json and a progress bar.

Only process 0 writes. ``metrics.jsonl`` holds one JSON object per report
step; on resume, lines past the restored checkpoint are dropped so a
restarted run never logs a step twice.
"""
from __future__ import annotations

import json
import os
import sys
import warnings
from typing import Any, Dict, Optional

from lm import safe_io


def write_json_atomic(path: str, obj: Any) -> None:
  """Atomic, link-safe (``lm.safe_io``): a failed write keeps the old file."""
  safe_io.atomic_write_json(path, obj, sort_keys=True)


RUN_JSON_HINT = ("delete it and run the same command again to rebuild it "
                 "(the checkpoints hold the run's config; its earlier eval "
                 "history and wall time are not recovered)")


def read_json(path: str, hint: str = "") -> Optional[dict]:
  """The file's JSON, None if absent; a damaged file is one error line
  (``safe_io.CorruptFileError``) naming it and ``hint``."""
  return safe_io.read_json(path, hint=hint)


def last_record(path: str) -> Optional[dict]:
  """The last complete record of a metrics.jsonl file, or None."""
  if not os.path.exists(path):
    return None
  rec = None
  with open(path) as f:
    for line in f:
      try:
        rec = json.loads(line)
      except json.JSONDecodeError:
        pass
  return rec


def truncate_metrics(path: str, max_step: int) -> None:
  """Keeps only records with step <= max_step (and drops a torn last line)."""
  if not os.path.exists(path):
    return
  keep = []
  with open(path) as f:
    for line in f:
      try:
        rec = json.loads(line)
      except json.JSONDecodeError:
        continue  # torn write from a killed process
      if rec.get("step", 0) <= max_step:
        keep.append(json.dumps(rec, sort_keys=True))
  safe_io.atomic_write(path, "".join(k + "\n" for k in keep))


class MetricsLogger:
  """jsonl + TensorBoard + tqdm bar; all no-ops on processes other than 0."""

  def __init__(self, workdir: str, *, total_steps: int, start_step: int,
               enabled: bool, tensorboard: bool, progress: bool,
               desc: str = "train"):
    self.enabled = enabled
    self.path = os.path.join(workdir, "metrics.jsonl")
    self._tb = None
    self._bar = None
    if not enabled:
      return
    os.makedirs(workdir, exist_ok=True)
    truncate_metrics(self.path, start_step)
    self._f = os.fdopen(safe_io.open_append(self.path), "a")
    if tensorboard:
      try:
        from tensorboardX import SummaryWriter
        self._tb = SummaryWriter(os.path.join(workdir, "tb"))
      except ImportError:
        warnings.warn("TensorBoard logging skipped: pip install "
                      "'scalinglm[tensorboard]' (tensorboardX) to enable it")
    if progress and sys.stderr.isatty():
      from tqdm.auto import tqdm
      self._bar = tqdm(total=total_steps, initial=start_step, desc=desc,
                       unit="step", dynamic_ncols=True, leave=False)

  def write(self, record: Dict[str, Any]) -> None:
    if not self.enabled:
      return
    self._f.write(json.dumps(record, sort_keys=True) + "\n")
    self._f.flush()
    if self._tb is not None:
      for k, v in record.items():
        if k != "step" and isinstance(v, (int, float)):
          self._tb.add_scalar(k, v, record["step"])

  def advance(self, n: int, postfix: Dict[str, str]) -> None:
    if self._bar is not None:
      self._bar.update(n)
      self._bar.set_postfix(postfix, refresh=False)

  def close(self) -> None:
    if not self.enabled:
      return
    self._f.close()
    if self._tb is not None:
      self._tb.close()
    if self._bar is not None:
      self._bar.close()
