"""The one error path of every entry point (lm.train, lm.sample,
experiments.isoflop, experiments.analyze, scaling.fit).

Bad input and environment errors (unknown config key, invalid value, a
missing or broken ``--config`` file, a full or read-only disk, a workdir
under a file, a busy workdir, orbax/TensorStore I/O errors) print ONE
``error: ...`` line on stderr that says what to do, and exit 2; a diverged
run exits 3. ``--verbose`` (or ``SCALINGLM_VERBOSE=1``) adds the traceback.
Anything else is a bug and keeps its traceback. Warnings print as one
``warning: ...`` line each.

This module imports only absl, so ``scaling`` can use it without ``lm``'s
heavy dependencies.
"""
from __future__ import annotations

import errno
import os
import re
import sys
import traceback
import warnings
from typing import Callable, Optional, Sequence

from absl import app, flags
from lm.config import flags as config_flags

EXIT_USAGE = 2       # bad flags / config / input / environment
EXIT_DIVERGED = 3    # NaN/Inf loss
VERBOSE_ENV = "SCALINGLM_VERBOSE"

_VERBOSE = flags.DEFINE_bool(
    "verbose", False, f"Print the traceback of an error (or set {VERBOSE_ENV}=1).")

# Exception classes that mean bad input, by (module, class). Looked up in
# sys.modules only: a class whose module was never imported was never raised.
USER_ERRORS = (
    ("lm.validation", "ConfigError"), ("lm.checkpoint", "CheckpointError"),
    ("lm.workdir", "WorkdirBusy"), ("experiments.sweep_config", "PlanError"),
    ("experiments.executor", "SweepConfigChanged"),
    ("experiments.executor", "EvalSetMismatch"),
    ("experiments.provenance", "ProvenanceError"),
    ("scaling.io.ledger_schema", "LedgerError"),
    ("scaling.io.loaders", "ScalingDataError"),
    ("scaling.approach3.parametric", "ParametricFitError"),
)

# errno -> what to do about it.
_OS_HINTS = {
    errno.ENOSPC: "the disk is full: free space (or use a --workdir on another "
                  "disk), then run the same command again to resume",
    errno.EDQUOT: "the disk quota is exceeded: free space, then run the same "
                  "command again to resume",
    errno.EFBIG: "a file size limit was hit (ulimit -f): raise it or use "
                 "another disk, then run the same command again to resume",
    errno.EROFS: "the filesystem is read-only: use a writable --workdir",
    errno.EACCES: "permission denied: use a path you can write, or fix its "
                  "permissions",
    errno.EPERM: "operation not permitted: use a path you own",
    errno.ENOTDIR: "a component of the path is a file, not a directory: choose "
                   "another path",
    errno.ENOENT: "no such file or directory: check the path",
    errno.EISDIR: "a directory was given where a file is expected",
    errno.ENAMETOOLONG: "the path is too long: choose a shorter one",
}
# TensorStore raises ValueError("<STATUS>: ... [os_error_code='28']").
_TS_STATUS = re.compile(r"^(OUT_OF_RANGE|RESOURCE_EXHAUSTED|PERMISSION_DENIED|"
                        r"NOT_FOUND|FAILED_PRECONDITION|UNAVAILABLE|DATA_LOSS|"
                        r"ABORTED|UNKNOWN|ALREADY_EXISTS|DEADLINE_EXCEEDED): ")
_TS_ERRNO = re.compile(r"os_error_code='?(\d+)")


def _one_line(e: BaseException) -> str:
  text = " ".join(str(e).split()) or type(e).__name__
  return text if len(text) < 400 else text[:397] + "..."


def verbose_requested(argv: Sequence[str] = ()) -> bool:
  if os.environ.get(VERBOSE_ENV, "") not in ("", "0"):
    return True
  if any(a in ("--verbose", "--verbose=true", "--verbose=True") for a in argv):
    return True
  try:
    return bool(_VERBOSE.value)
  except flags.UnparsedFlagAccessError:
    return False


def _os_line(e: OSError) -> str:
  if e.errno is None:  # raised by our code with its own message
    return _one_line(e)
  where = " ".join(str(p) for p in (e.filename, e.filename2) if p)
  what = e.strerror or _one_line(e)
  hint = _OS_HINTS.get(e.errno, "check the path and the disk")
  return f"{what}{f': {where}' if where else ''} ({hint})"


def _tensorstore_line(e: BaseException) -> Optional[str]:
  text = " ".join(str(e).split())
  if not isinstance(e, ValueError) or not (_TS_STATUS.match(text)
                                           or "os_error_code" in text):
    return None
  m = _TS_ERRNO.search(text)
  hint = _OS_HINTS.get(int(m.group(1))) if m else None
  where = re.search(r'local file "([^"]+)"', text)
  reason = text.split(" [")[0].rsplit(": ", 1)[-1]
  if where:  # 'Error writing "x" in OCDBT database at local file "P": ...'
    op = "reading" if "reading" in text.split(where.group(0))[0].lower() \
        else "writing"
    text = f"storage error {op} {where.group(1)}: {reason}"
  else:
    text = text.split(" [source locations")[0][:300]
  return f"{text} ({hint or 'check the path and the disk'})"


def _user_error_types() -> tuple:
  found = []
  for mod, name in USER_ERRORS:
    cls = getattr(sys.modules.get(mod), name, None)
    if isinstance(cls, type):
      found.append(cls)
  return tuple(found)


def user_errors() -> tuple:
  """Exception types that mean bad input or environment, not a bug (the
  ``USER_ERRORS`` classes already imported, missing files and extras)."""
  return _user_error_types() + (FileNotFoundError, PermissionError,
                                ImportError)


def describe(e: BaseException) -> Optional[str]:
  """The one-line message for an input/environment error, None for a bug.

  Follows ``__cause__``/``__context__``: orbax wraps TensorStore's errors;
  the most specific OSError (one with an errno) in the chain wins.
  """
  user = _user_error_types()
  seen, fallback = set(), None
  while e is not None and id(e) not in seen:
    seen.add(id(e))
    if user and isinstance(e, user):
      return _one_line(e)
    if isinstance(e, OSError):
      if e.errno is not None:
        return _os_line(e)
      fallback = fallback or _one_line(e)
    elif isinstance(e, ImportError):  # a missing optional extra, named
      return fallback or _one_line(e)
    else:
      ts = _tensorstore_line(e)
      if ts:
        return ts
    e = e.__cause__ or e.__context__
  return fallback


def _show_warning(message, category, filename, lineno, file=None, line=None):
  del category, filename, lineno, line
  print(f"warning: {_one_line(message)}", file=file or sys.stderr)


def fail(message: str, code: int = EXIT_USAGE, exc: Optional[BaseException] = None,
         argv: Sequence[str] = ()):
  if exc is not None and verbose_requested(argv):
    traceback.print_exception(type(exc), exc, exc.__traceback__)
  print(f"error: {message}", file=sys.stderr)
  sys.exit(code)


def _parse_flags(argv: Sequence[str]):
  try:
    return config_flags.parse(argv)  # absl flags + --config.<key>=value
  except (KeyboardInterrupt, SystemExit):
    raise
  except Exception as e:  # pylint: disable=broad-except
    # Parsing only reads the command line and the --config file, so every
    # failure here is the user's input: absl flag errors (bad overrides and
    # unknown keys included, lm.config.flags), a missing config file, or one
    # that does not import (SyntaxError, NameError, ...).
    if isinstance(e, flags.Error):
      fail(_one_line(e), exc=e, argv=argv)
    if isinstance(e, SyntaxError):
      fail(f"--config file {e.filename}:{e.lineno} is not valid Python "
           f"({e.msg}); fix it", exc=e, argv=argv)
    fail(f"{_one_line(e)} ({type(e).__name__} while reading the command line "
         "and --config file)", exc=e, argv=argv)


def run(main: Callable[[Sequence[str]], Optional[int]],
        argv: Optional[Sequence[str]] = None) -> None:
  """``app.run`` with the one error path (see the module docstring)."""

  def wrapped(argv):
    from absl import logging as absl_logging
    absl_logging.set_verbosity(absl_logging.WARNING)
    warnings.showwarning = _show_warning
    try:
      return main(argv)
    except KeyboardInterrupt:
      print("interrupted: run the same command again to resume",
            file=sys.stderr)
      sys.exit(130)
    except Exception as e:  # pylint: disable=broad-except
      diverged = getattr(sys.modules.get("lm.trainer"), "TrainingDiverged",
                         None)
      if diverged is not None and isinstance(e, diverged):
        fail(f"training diverged: {_one_line(e)}", EXIT_DIVERGED, exc=e,
             argv=argv)
      message = describe(e)
      if message is None:
        raise  # a bug: keep the traceback
      fail(message, exc=e, argv=argv)

  app.run(wrapped, argv=argv, flags_parser=_parse_flags)
