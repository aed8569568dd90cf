"""Helpers of the bad-input tests: byte snapshots, the one-line check, a lock
held by another process."""
import hashlib
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def snapshot(root, lock=True):
  """{relative path: sha256} of every file under ``root``; ``lock=False``
  leaves out ``.lock`` (a driver refused after locking names itself there)."""
  out = {}
  for d, _, files in os.walk(root):
    for f in files:
      if not lock and f == ".lock":
        continue
      p = os.path.join(d, f)
      with open(p, "rb") as fh:
        out[os.path.relpath(p, root)] = hashlib.sha256(fh.read()).hexdigest()
  return out


def one_line(err, prefix="error: "):
  """The single non-empty stderr line, which must start with ``prefix``."""
  lines = [l for l in err.splitlines() if l.strip()]
  assert len(lines) == 1, err
  assert lines[0].startswith(prefix), err
  return lines[0]


def hold_lock(directory, what):
  """A second process holding ``directory``'s lock (lm.workdir), like a
  running driver; kill it to release."""
  code = ("import sys, time\nfrom lm.workdir import locked\n"
          f"with locked(sys.argv[1], what={what!r}):\n"
          "  print('locked', flush=True)\n  time.sleep(600)\n")
  p = subprocess.Popen([sys.executable, "-c", code, str(directory)], cwd=ROOT,
                       stdout=subprocess.PIPE, text=True)
  assert p.stdout.readline().strip() == "locked"
  return p
