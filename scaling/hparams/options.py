"""Options of the hparams family: one frozen dataclass; the CLI flags come from its fields.

``define_flags`` makes ``--hparams_<field>`` for every field (type and
default from the field, help from its metadata); ``from_flags`` reads them
back into ``HparamsOptions``.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict

from scaling.io.types import ScalingDataError


@dataclasses.dataclass(frozen=True)
class HparamsOptions:
  band: float = dataclasses.field(default=0.0025, metadata={"help": (
      "relative loss band: runs within band x their (N, D) cell's best loss "
      "are near-optimal and fitted (0.0025 = 0.25%, DeepSeek LLM Sec. 3.1)")})
  level: float = dataclasses.field(default=0.95, metadata={"help": (
      "central level of the bootstrap percentile intervals")})

  @classmethod
  def from_dict(cls, d: Dict[str, Any]) -> "HparamsOptions":
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
      raise ScalingDataError(f"unknown hparams option {unknown[0]!r} (valid: "
                             f"{', '.join(sorted(names))})")
    return cls(**d)


_HOLDERS: Dict[str, Any] = {}   # defined once per process (scaling.fit reloads)


def define_flags(flags_module) -> Dict[str, Any]:
  """Defines --hparams_<field> flags once; returns {field: flag holder}."""
  if _HOLDERS:
    return dict(_HOLDERS)
  out = _HOLDERS
  for f in dataclasses.fields(HparamsOptions):
    define = {float: flags_module.DEFINE_float, int: flags_module.DEFINE_integer,
              bool: flags_module.DEFINE_boolean, str: flags_module.DEFINE_string
              }[type(f.default)]
    out[f.name] = define(f"hparams_{f.name}", f.default,
                         "--approach=hparams: " + f.metadata["help"])
  return dict(out)


def from_flags(holders: Dict[str, Any]) -> Dict[str, Any]:
  """The options dict (run_fit's options['hparams']) of the parsed flags."""
  return {name: h.value for name, h in holders.items()}
