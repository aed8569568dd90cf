"""The results ledger: ``DIR/results.jsonl``, one JSON object per run outcome.

The line schema (fields, validation, encoding) is ``scaling.io.ledger_schema``,
re-exported here, so the writer (``experiments.executor``) and the readers
(``experiments.analyze``, ``scaling.io.loaders`` for ``scaling.fit``) share it;
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
* A record for a run whose outcome is final (``ok``, ``diverged``) is
  refused; a ``failed`` run may be appended again (its retry's outcome).

Lines are in the order runs finished (a parallel runner finishes them out of
plan order); nothing may depend on that order. A run's outcome is its last
line (``scaling.io.ledger_schema.latest``); ``read()`` returns one record per
run, its outcome, and ``lines()`` every line.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List

from scaling.io.ledger_schema import (FIELDS, FINAL, REQUIRED,  # noqa: F401
                                   SCHEMA_VERSION, STATUSES, LedgerError,
                                   encode, latest, parse, parse_lines,
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
    """One record per run: its outcome (last line), in the order of those lines."""
    return list(self.latest().values())

  def latest(self) -> Dict[str, Dict[str, Any]]:
    """run_id -> the run's outcome (its last line); validates every line."""
    return latest(self._parse())

  def finished_ids(self) -> set:
    """Runs with a final outcome (ok or diverged): never to be run again."""
    return {k for k, r in self.latest().items() if r["status"] in FINAL}

  def lines(self) -> List[Dict[str, Any]]:
    """Every line, validated, in file order (superseded failed lines too)."""
    return [rec for _, rec in self._parse()]

  def _parse(self):
    if not os.path.exists(self.path):
      return []
    with open(self.path, "rb") as f:
      return parse_lines(f.read(), self.path)

  def append(self, record: Dict[str, Any]) -> None:
    line = encode(record)
    if record["run_id"] in self.finished_ids():
      raise LedgerError(f"{self.path}: run {record['run_id']} already has a "
                        "final outcome in the ledger; not appending another")
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
