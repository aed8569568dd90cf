"""The few ``scaling.fit`` hooks of ``--approach=hparams`` (flags, inputs)."""
from __future__ import annotations

from typing import Any, Dict

from scaling.hparams import inputs
from scaling.hparams import options as options_lib
from scaling.io.types import ScalingDataError


def define_flags(flags_module) -> Dict[str, Any]:
  """--hparams_<field> for every HparamsOptions field."""
  return options_lib.define_flags(flags_module)


def fit_kwargs(source: str, approaches, holders, kw: Dict[str, Any]
               ) -> Dict[str, Any]:
  """run_fit keyword arguments of --approach=hparams --input=SOURCE."""
  if len(approaches) > 1:
    raise ScalingDataError("--approach=hparams runs alone; drop the other "
                           "approaches")
  runs = inputs.load(source)
  kw.update(approaches=approaches, table=(runs.columns(), runs.provenance),
            options={"hparams": options_lib.from_flags(holders)})
  return kw
