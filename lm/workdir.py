"""One driver per directory: an exclusive OS lock on ``DIR/.lock``.

A sweep (``experiments.executor``) holds the lock on its sweep directory and
``lm.trainer`` holds one on each run directory, for as long as they run. The
lock is ``fcntl.flock`` on an open file: the kernel releases it when the
process exits for any reason (SIGKILL included), so a crash never leaves a
stale lock behind, and the file itself is never deleted (deleting a lock file
races with a second driver opening it). After locking, the holder writes its
pid, host and start time into the file so a refused driver can name it.

Only process 0 of a multi-host job locks (``enabled=False`` elsewhere): the
other processes write nothing, and their directory may be on another host.
"""
from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import os
import socket
import sys
from typing import Iterator

LOCK_NAME = ".lock"


class WorkdirBusy(RuntimeError):
  """Another live process holds the directory's lock; one actionable line."""


def _holder(fd: int) -> str:
  try:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 4096).decode("utf-8", "replace").split()
  except OSError:
    text = []
  if len(text) >= 2:
    pid, host = text[0], text[1]
    since = f", since {text[2]}" if len(text) >= 3 else ""
    return f"pid {pid} on host {host}{since}"
  return "a process that has not written its pid yet"


@contextlib.contextmanager
def locked(directory: str, *, what: str = "this directory",
           enabled: bool = True) -> Iterator[None]:
  """Holds an exclusive lock on ``directory/.lock`` (created if needed).

  Raises:
    WorkdirBusy: another process holds the lock (it is named).
    OSError: the directory cannot be created or the lock file opened (a path
      under a file, a read-only filesystem, ...).
  """
  if not enabled:
    yield
    return
  os.makedirs(directory, exist_ok=True)
  path = os.path.join(directory, LOCK_NAME)
  fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0),
               0o644)  # a planted link is refused (ELOOP), never written through
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
      if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
        raise
      raise WorkdirBusy(
          f"{directory} is in use by another {what} ({_holder(fd)}); wait for "
          "it to finish (or stop it), or use another --workdir") from None
    now = datetime.datetime.now(datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    info = (f"{os.getpid()} {socket.gethostname()} {now} "
            f"{os.path.basename(sys.argv[0]) if sys.argv else ''}\n")
    try:  # best effort: the lock itself is what protects the directory
      os.ftruncate(fd, 0)
      os.pwrite(fd, info.encode("utf-8"), 0)
    except OSError:
      pass
    try:
      yield
    finally:
      fcntl.flock(fd, fcntl.LOCK_UN)
  finally:
    os.close(fd)
