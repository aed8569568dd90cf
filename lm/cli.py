"""Shared entry-point plumbing: absl flag parsing and one-line errors.

Bad input (unknown config key, invalid value, missing file, diverged run)
prints a single ``error: ...`` line on stderr and exits non-zero; tracebacks
are for bugs, not for users.
"""
from __future__ import annotations

import sys
from typing import Callable, Sequence

from absl import app, flags

EXIT_USAGE = 2       # bad flags / config / input
EXIT_DIVERGED = 3    # NaN/Inf loss


def _one_line(e: BaseException) -> str:
  text = str(e).strip() or type(e).__name__
  first = text.splitlines()[0]
  return first if len(first) < 400 else first[:397] + "..."


def _parse_flags(argv: Sequence[str]):
  from lm import config_flags
  try:
    return config_flags.parse(argv)  # absl flags + --config.<key>=value
  except (flags.Error, ValueError, AttributeError, TypeError,
          FileNotFoundError, OSError) as e:
    print(f"error: {_one_line(e)}", file=sys.stderr)
    sys.exit(EXIT_USAGE)


def user_errors() -> tuple:
  """Exception types that mean bad input or environment, not a bug.

  Anything else keeps its traceback (internal errors must stay debuggable).
  """
  from lm.checkpoint import CheckpointError
  from lm.config import ConfigError
  errors = [ConfigError, CheckpointError, FileNotFoundError, PermissionError,
            ImportError]  # ImportError: a missing optional extra, named
  for mod, name in (("experiments.sweep_config", "PlanError"),
                    ("experiments.executor", "SweepConfigChanged"),
                    ("experiments.ledger", "LedgerError"),
                    ("scaling.data", "ScalingDataError"),
                    ("scaling.parametric", "ParametricFitError")):
    try:
      errors.append(getattr(__import__(mod, fromlist=[name]), name))
    except (ImportError, AttributeError):
      pass
  return tuple(errors)


def run(main: Callable[[Sequence[str]], None]) -> None:
  """``app.run`` with one-line errors for user-facing exceptions."""

  def wrapped(argv):
    from absl import logging as absl_logging
    absl_logging.set_verbosity(absl_logging.WARNING)
    from lm.trainer import TrainingDiverged
    expected = user_errors()
    try:
      main(argv)
    except TrainingDiverged as e:
      print(f"error: training diverged: {_one_line(e)}", file=sys.stderr)
      sys.exit(EXIT_DIVERGED)
    except expected as e:
      print(f"error: {_one_line(e)}", file=sys.stderr)
      sys.exit(EXIT_USAGE)
    except KeyboardInterrupt:
      print("interrupted: run the same command again to resume",
            file=sys.stderr)
      sys.exit(130)

  app.run(wrapped, flags_parser=_parse_flags)
