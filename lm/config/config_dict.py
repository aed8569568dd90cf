"""ConfigDict: the nested, attribute-access config that config files return.

The project's own small replacement for ``ml_collections.ConfigDict`` (which
bare GPU/TPU images lack). Config files build one in ``get_config()``;
``lm.config.flags`` applies ``--config.a.b=value`` overrides to it; ``lm.config``
converts it once into frozen dataclasses.

- ``c.a`` and ``c["a"]`` both work; dict values become ConfigDicts.
- Assigning to an existing field keeps its type: an int may widen to a float
  field and a list becomes a tuple for a tuple field; a field holding None
  (and the value None) takes anything; any other change of type raises
  ``TypeError``.
- ``lock()`` (recursive) forbids new keys, so a typo raises
  ``UnknownKeyError`` naming the valid keys; existing fields stay writable.
"""
from __future__ import annotations

import json
from typing import Any, Iterator, Mapping, Optional


class UnknownKeyError(KeyError, AttributeError):
  """A key that is not in the config (both ``KeyError`` and ``AttributeError``,
  so ``c.get``, ``getattr(c, k, default)`` and ``hasattr`` behave)."""

  def __str__(self) -> str:
    return str(self.args[0]) if self.args else "unknown config key"


def coerce(old: Any, new: Any, key: str = "value") -> Any:
  """``new`` as it may replace ``old`` in a config field; TypeError if it may not."""
  if isinstance(new, Mapping) and not isinstance(new, ConfigDict):
    new = ConfigDict(new)
  if old is None or new is None:
    return new
  if isinstance(old, bool) or isinstance(new, bool):
    ok = isinstance(old, bool) and isinstance(new, bool)
  elif isinstance(old, float) and isinstance(new, int):
    return float(new)
  elif isinstance(old, tuple) and isinstance(new, list):
    return tuple(new)
  else:
    ok = isinstance(new, type(old))
  if not ok:
    raise TypeError(f"{key} holds a {type(old).__name__} ({old!r}); got "
                    f"{type(new).__name__} {new!r}")
  return new


class ConfigDict:
  """A nested mapping with attribute access, typed assignment and locking."""

  def __init__(self, initial: Optional[Mapping[str, Any]] = None):
    object.__setattr__(self, "_fields", {})
    object.__setattr__(self, "_locked", False)
    for key, value in dict(initial or {}).items():
      self[key] = value

  # -- access ----------------------------------------------------------------
  def _unknown(self, key: str) -> UnknownKeyError:
    valid = ", ".join(sorted(self._fields)) or "none"
    return UnknownKeyError(f"unknown config key {key!r} (valid: {valid})")

  def __getitem__(self, key: str) -> Any:
    try:
      return self._fields[key]
    except KeyError:
      raise self._unknown(key) from None

  def __getattr__(self, name: str) -> Any:
    if name.startswith("__"):  # copy/pickle protocol probes
      raise AttributeError(name)
    return self[name]

  def __setitem__(self, key: str, value: Any) -> None:
    if not isinstance(key, str):
      raise TypeError(f"config keys are strings, got {key!r}")
    if key in self._fields:
      value = coerce(self._fields[key], value, key)
    elif self._locked:
      raise self._unknown(key)
    elif isinstance(value, Mapping) and not isinstance(value, ConfigDict):
      value = ConfigDict(value)
    if isinstance(value, ConfigDict) and self._locked:
      value.lock()
    self._fields[key] = value

  def __setattr__(self, name: str, value: Any) -> None:
    self[name] = value

  def __delitem__(self, key: str) -> None:
    if self._locked:
      raise TypeError(f"cannot delete {key!r} from a locked config")
    del self._fields[key]

  def get(self, key: str, default: Any = None) -> Any:
    return self._fields.get(key, default)

  def __contains__(self, key: object) -> bool:
    return key in self._fields

  def __iter__(self) -> Iterator[str]:
    return iter(self._fields)

  def __len__(self) -> int:
    return len(self._fields)

  def keys(self):
    return self._fields.keys()

  def values(self):
    return self._fields.values()

  def items(self):
    return self._fields.items()

  # -- locking -----------------------------------------------------------------
  def lock(self) -> "ConfigDict":
    object.__setattr__(self, "_locked", True)
    for value in self._fields.values():
      if isinstance(value, ConfigDict):
        value.lock()
    return self

  def unlock(self) -> "ConfigDict":
    object.__setattr__(self, "_locked", False)
    for value in self._fields.values():
      if isinstance(value, ConfigDict):
        value.unlock()
    return self

  @property
  def is_locked(self) -> bool:
    return self._locked

  # -- conversion ----------------------------------------------------------------
  def to_dict(self) -> dict:
    """Plain nested dicts (a fresh copy; tuples stay tuples)."""
    return {k: v.to_dict() if isinstance(v, ConfigDict) else v
            for k, v in self._fields.items()}

  def to_json_best_effort(self, **kwargs) -> str:
    """JSON of ``to_dict()``; tuples become lists, unknown objects ``str``."""
    kwargs.setdefault("sort_keys", True)
    return json.dumps(self.to_dict(), default=str, **kwargs)

  def __eq__(self, other: object) -> bool:
    if isinstance(other, ConfigDict):
      return self.to_dict() == other.to_dict()
    return isinstance(other, Mapping) and self.to_dict() == dict(other)

  def __repr__(self) -> str:
    return f"ConfigDict({self.to_dict()!r})"

  def __reduce__(self):  # pickles as its content and lock state
    return (_rebuild, (self.to_dict(), self._locked))


def _rebuild(values: dict, locked: bool) -> ConfigDict:
  c = ConfigDict(values)
  return c.lock() if locked else c
