"""Field checks: every setting against its meaning, named in the error.

Used by the ``validate()`` methods of the config sections
(``lm.config.sections``, ``lm.config.mesh``) and by the entry points' flag
checks; each failure is one ``ConfigError`` line such as ``train.b1 must be a finite number in [0, 1) (Adam first-moment
decay), got 2.0``. ``ConfigError`` is defined here, below every config module,
and re-exported as ``lm.config.ConfigError``.
"""
from __future__ import annotations

import math
from typing import Any, Optional


class ConfigError(ValueError):
  """A user-facing configuration error; its message is one actionable line."""


def _is_int(v: Any) -> bool:
  return isinstance(v, int) and not isinstance(v, bool)


def check_int(name: str, v: Any, lo: Optional[int] = None,
              hi: Optional[int] = None, meaning: str = "") -> None:
  """``lo <= v <= hi`` for an integer ``v`` (bools and floats refused)."""
  if _is_int(v) and (lo is None or v >= lo) and (hi is None or v <= hi):
    return
  rng = (f" >= {lo}" if hi is None else f" in [{lo}, {hi}]") if lo is not None \
      else (f" <= {hi}" if hi is not None else "")
  raise ConfigError(f"{name} must be an integer{rng}"
                    f"{f' ({meaning})' if meaning else ''}, got {v!r}")


def check_real(name: str, v: Any, lo: Optional[float] = None,
               hi: Optional[float] = None, *, lo_open: bool = False,
               hi_open: bool = False, meaning: str = "") -> None:
  """A finite number in the interval [lo, hi] (ends open as asked)."""
  ok = (isinstance(v, (int, float)) and not isinstance(v, bool)
        and math.isfinite(v)
        and (lo is None or (v > lo if lo_open else v >= lo))
        and (hi is None or (v < hi if hi_open else v <= hi)))
  if ok:
    return
  if lo is not None and hi is not None:
    rng = f" in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
  elif lo is not None:
    rng = f" {'>' if lo_open else '>='} {lo:g}"
  elif hi is not None:
    rng = f" {'<' if hi_open else '<='} {hi:g}"
  else:
    rng = ""
  raise ConfigError(f"{name} must be a finite number{rng}"
                    f"{f' ({meaning})' if meaning else ''}, got {v!r}")


def check_type(name: str, v: Any, kind: type) -> None:
  if not isinstance(v, kind) or (kind is not bool and isinstance(v, bool)):
    raise ConfigError(f"{name} must be a {kind.__name__}, got {v!r}")
