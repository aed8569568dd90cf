"""The few ``scaling.fit`` hooks of ``--approach=hparams`` (flags, inputs, summary)."""
from __future__ import annotations

from typing import Any, Dict

from scaling.data import ScalingDataError
from scaling.hparams import options as options_lib


def define_flags(flags_module) -> Dict[str, Any]:
  """--hparams_<field> for every HparamsOptions field."""
  return options_lib.define_flags(flags_module)


def fit_kwargs(source: str, approaches, holders, kw: Dict[str, Any]
               ) -> Dict[str, Any]:
  """run_fit keyword arguments of --approach=hparams --input=SOURCE."""
  from scaling.hparams import inputs  # pylint: disable=g-import-not-at-top
  if len(approaches) > 1:
    raise ScalingDataError("--approach=hparams runs alone; drop the other "
                           "approaches")
  runs = inputs.load(source)
  kw.update(approaches=approaches, table=(runs.columns(), runs.provenance),
            options={"hparams": options_lib.from_flags(holders)})
  return kw


def print_summary(result: Dict[str, Any]) -> None:
  """The hparams summary lines (laws, then one line per cell), if fitted."""
  if result.get("hparams"):
    from scaling.hparams import summary  # pylint: disable=g-import-not-at-top
    print("\n".join(summary.summary_lines(result["hparams"])))
