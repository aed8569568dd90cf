r"""``--config=path.py`` and ``--config.a.b=value`` for absl entry points.

``DEFINE_config_file("config")`` registers ``--config``: a Python file whose
``get_config()`` returns a ``ConfigDict`` (locked after loading, so an
override can change fields but never add one). ``parse(argv)`` is the flags
parser the entry points hand to ``absl.app.run`` (via ``lm.cli``): it takes the
``--config.a.b=value`` overrides out of argv, lets absl parse the rest (which
loads the file), then applies the overrides in order, each parsed by the type
of the field it replaces:

  int, float   absl's parsers (``100``, ``0x10``, ``1e-3``; ``2e4`` for an int)
  bool         true/false/1/0; ``--config.a.b`` alone is True, ``--noconfig.a.b`` False
  str          the text as it is
  tuple        a Python literal, e.g. ``"(2,2,1)"``; a single value becomes a 1-tuple
  None         a Python literal, else the text

A bad override (unknown key, wrong type, a section) raises
``flags.IllegalFlagValueError`` with one line naming the key; ``lm.cli`` prints
it as ``error: ...`` and exits 2.
"""
from __future__ import annotations

import ast
import importlib.util
import os
import re
from typing import Any, List, Optional, Sequence, Tuple

from absl import flags

from lm.config.config_dict import ConfigDict, coerce

_CONFIG_FLAGS: List[Tuple[str, flags.FlagValues]] = []  # (name, registry)


def load_config_file(path: str) -> ConfigDict:
  """Runs ``get_config()`` of the Python file at ``path``; ValueError if it cannot."""
  if not path or not os.path.isfile(path):
    raise ValueError(f"config file {path!r} not found")
  name = "_config_" + re.sub(r"\W", "_", os.path.splitext(os.path.basename(path))[0])
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  if not callable(getattr(module, "get_config", None)):
    raise ValueError(f"config file {path} defines no get_config()")
  cfg = module.get_config()
  if isinstance(cfg, dict):
    cfg = ConfigDict(cfg)
  if not isinstance(cfg, ConfigDict):
    raise ValueError(f"{path}: get_config() returned {type(cfg).__name__}, "
                     "not a ConfigDict")
  return cfg


class _ConfigFileParser(flags.ArgumentParser):

  def __init__(self, lock_config: bool):
    self._lock = lock_config

  def parse(self, argument):
    if isinstance(argument, ConfigDict):
      return argument
    cfg = load_config_file(argument)
    return cfg.lock() if self._lock else cfg

  def flag_type(self) -> str:
    return "config file"


def DEFINE_config_file(name: str, default: Optional[str] = None,  # pylint: disable=invalid-name
                       help_string: str = "", *, lock_config: bool = True,
                       flag_values: flags.FlagValues = flags.FLAGS):
  """Registers ``--name=<config .py>``; ``.value`` is its ConfigDict."""
  holder = flags.DEFINE(_ConfigFileParser(lock_config), name, default,
                        help_string, flag_values=flag_values)
  _CONFIG_FLAGS.append((name, flag_values))
  return holder


# ----------------------------------------------------------------------------
# Overrides.

def _split(argv: Sequence[str], names: Sequence[str]):
  """argv without ``--NAME.path[=text]`` args; those as (name, path, text, negated)."""
  pattern = re.compile(r"^--?(no)?(%s)\.([A-Za-z_][\w.]*)(?:=(.*))?$"
                       % "|".join(map(re.escape, names)), re.S)
  rest, overrides = [], []
  for i, arg in enumerate(argv):
    m = pattern.match(arg) if i and names and "--" not in argv[:i] else None
    if m:
      overrides.append((m.group(2), m.group(3), m.group(4), bool(m.group(1))))
    else:
      rest.append(arg)
  return rest, overrides


def _literal(text: str) -> Any:
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text


def parse_value(old: Any, text: Optional[str], negated: bool = False) -> Any:
  """The override ``text`` parsed by the type of the field's current value;
  ValueError (a phrase: "expects an integer", ...) if it does not parse."""
  if isinstance(old, ConfigDict):
    raise ValueError("is a section: override its fields one by one")
  if negated or text is None:
    if not isinstance(old, bool) or (negated and text is not None):
      raise ValueError("needs =value" if not negated else
                       "is not boolean: --no<name> is for boolean fields")
    return not negated
  try:
    if isinstance(old, bool):
      return flags.BooleanParser().parse(text)
    if isinstance(old, int):
      try:
        return flags.IntegerParser().parse(text)
      except ValueError:  # 2e4 is an integer too
        value = float(text)
        if not value.is_integer():
          raise
        return int(value)
    if isinstance(old, float):
      return flags.FloatParser().parse(text)
  except (ValueError, TypeError):
    kind = {bool: "true or false", int: "an integer", float: "a number"}
    raise ValueError(f"expects {kind[type(old)]}, got {text!r}") from None
  if isinstance(old, str):
    return text
  if isinstance(old, tuple):
    value = _literal(text)
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)
  return _literal(text)


def _field(cfg: ConfigDict, path: str, flag: str) -> Tuple[ConfigDict, str]:
  """(section, key) of ``path``; IllegalFlagValueError if there is none."""
  *parents, key = path.split(".")
  node = cfg
  for depth, part in enumerate(parents + [key]):
    where = ".".join(parents[:depth])
    if not isinstance(node, ConfigDict):
      raise flags.IllegalFlagValueError(f"{flag}: {where} is a value, not a "
                                        "section")
    if part not in node:
      valid = ", ".join(sorted(node.keys())) or "none"
      raise flags.IllegalFlagValueError(
          f"unknown config key {path} in {flag} (valid keys"
          f"{' of ' + where if where else ''}: {valid})")
    if depth < len(parents):
      node = node[part]
  return node, key


def apply_override(cfg: ConfigDict, path: str, text: Optional[str],
                   negated: bool = False, prefix: str = "config") -> None:
  """Sets ``cfg.<path>`` from the command-line ``text`` (see module doc)."""
  flag = (f"--{'no' if negated else ''}{prefix}.{path}"
          + ("" if text is None else f"={text}"))
  node, key = _field(cfg, path, flag)
  old = node[key]
  try:
    node[key] = coerce(old, parse_value(old, text, negated), f"{prefix}.{path}")
  except ValueError as e:
    raise flags.IllegalFlagValueError(f"{flag}: {prefix}.{path} {e}") from None
  except TypeError as e:
    raise flags.IllegalFlagValueError(f"{flag}: {e}") from None


def parse(argv: Sequence[str],
          flag_values: flags.FlagValues = flags.FLAGS) -> List[str]:
  """absl's ``FLAGS(argv)`` plus ``--config.a.b=value`` overrides; returns
  the remaining arguments (the flags parser for ``absl.app.run``)."""
  names = [name for name, fv in _CONFIG_FLAGS if fv is flag_values]
  rest, overrides = _split(list(argv), names)
  remaining = flag_values(rest)
  for name, path, text, negated in overrides:
    cfg = flag_values[name].value
    if cfg is None:
      raise flags.IllegalFlagValueError(
          f"--{name}.{path} needs --{name}=<config file>")
    apply_override(cfg, path, text, negated, prefix=name)
  return remaining
