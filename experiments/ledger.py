"""The results ledger: ``DIR/results.jsonl``, one JSON object per finished run.

The line schema (fields, validation, encoding) is ``scaling.ledger_schema``,
re-exported here, so the writer (``experiments.executor``) and the readers
(``experiments.analyze``, ``scaling.data`` for ``scaling.fit``) share it;
field documentation: docs/ledger.md.

Plain, versioned and append-only:

* Each record is appended with one ``write`` on an ``O_APPEND`` descriptor
  and fsync'd (the directory too when the file is new), so a crash leaves
  either the whole line or, at worst, a torn last line that readers name.
* An append never merges with the line before it: when the file does not end
  in a newline (an editor that deleted the last line's newline), the record
  is written as ``"\\n" + line``. This repairs by appending only; the bytes
  already there are never rewritten. It is a repair and not a refusal
  because a missing final newline after a complete record is harmless and
  common, and every append follows a full validating read of the file, so a
  torn fragment is refused before anything is appended.
* A failed append (disk full mid-write) truncates the file back to its
  length before the append: only the bytes this append wrote are removed.
* A second record for a run id already in the ledger is refused.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List

from scaling.ledger_schema import (FIELDS, REQUIRED, SCHEMA_VERSION,  # noqa: F401
                                   STATUSES, LedgerError, encode, parse,
                                   validate)


def _fsync_dir(path: str) -> None:
  fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
  try:
    os.fsync(fd)
  finally:
    os.close(fd)


class Ledger:

  def __init__(self, path: str):
    self.path = path

  def read(self) -> List[Dict[str, Any]]:
    if not os.path.exists(self.path):
      return []
    with open(self.path, "rb") as f:
      return parse(f.read(), self.path)

  def run_ids(self) -> set:
    return {r["run_id"] for r in self.read()}

  def append(self, record: Dict[str, Any]) -> None:
    line = encode(record)
    if record["run_id"] in self.run_ids():
      raise LedgerError(f"{self.path}: run {record['run_id']} is already in "
                        "the ledger; not appending a second record")
    os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
    created = not os.path.exists(self.path)
    fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
      size = os.fstat(fd).st_size
      if size and os.pread(fd, 1, size - 1) != b"\n":
        line = b"\n" + line  # never glue onto an unterminated last line
      try:
        view = memoryview(line)
        while view:
          view = view[os.write(fd, view):]
        os.fsync(fd)
      except BaseException:
        os.ftruncate(fd, size)  # drop only what this append wrote
        raise
    finally:
      os.close(fd)
    if created:
      _fsync_dir(self.path)
