r"""Command line: what should I train? (docs/allocation.md)

  python -m scaling.allocate --law=chinchilla --C=5.76e23 [--shape]
  python -m scaling.allocate --fit=runs/quickstart/report/fit.json --C=1e12 --shape
  python -m scaling.allocate --law=muennighoff2023 --C=9.3e21 --unique_tokens=25e9
  python -m scaling.allocate --law=chinchilla --C=5.76e23 --inference_tokens=1e13
  python -m scaling.allocate --law=chinchilla --target_loss=2.0 --inference_tokens=1e13
  python -m scaling.allocate --law=muennighoff2023 --N=6.34e9 --D=242e9 --unique_tokens=25e9

``--law`` is a published law (chinchilla, chinchilla_tex, epoch,
muennighoff2023) or a law .json of ``scaling.allocation.fit_data_constrained``;
``--fit`` a fit.json (Approach 3; Approaches 1/2 for ``--C`` alone). The
logic is :func:`scaling.allocation.api.run` (Colab and tests call it). Bad
input: one ``error:`` line, exit 2 (``lm.cli``).
"""
from __future__ import annotations

import sys

from absl import flags

from lm import cli
from scaling.allocation import output
from scaling.allocation.api import run  # noqa: F401 (the importable entry)
from scaling.allocation.errors import AllocationError

_LAW = flags.DEFINE_string("law", None, "published law (chinchilla, "
                           "chinchilla_tex, epoch, muennighoff2023) or a law "
                           ".json")
_FIT = flags.DEFINE_string("fit", None, "fit.json of scaling.fit / "
                           "experiments.analyze")
_FAMILY = flags.DEFINE_string("family", None, "with --fit: approach3 "
                              "(default), approach2 or approach1 (N*(C) only)")
_C = flags.DEFINE_float("C", None, "training compute, FLOPs (C = 6ND)")
_U = flags.DEFINE_float("unique_tokens", None, "unique training tokens U")
_TARGET_LOSS = flags.DEFINE_float("target_loss", None, "loss to reach "
                                  "(inference-aware question)")
_INF = flags.DEFINE_float("inference_tokens", None, "tokens the model will "
                          "serve (inference-aware question)")
_N = flags.DEFINE_float("N", None, "parameters (loss query)")
_D = flags.DEFINE_float("D", None, "training tokens (loss query)")
_SHAPE = flags.DEFINE_bool("shape", False, "concrete model(s) nearest N* "
                           "with batch, lr, steps and the command to run")
_SWEEP_CONFIG = flags.DEFINE_string(
    "sweep_config", "experiments/configs/quickstart.py", "--shape: sweep "
    "config whose base model, data and planner rules are used")
_TARGET = flags.DEFINE_string("target", None, "--shape: device (an "
                              "lm.hardware.PEAK_TABLE key, e.g. h100_sxm) for "
                              "memory and time")
_N_DEVICES = flags.DEFINE_integer("n_devices", 1, "--target: devices")
_MFU = flags.DEFINE_float("mfu", 0.4, "--target: model FLOPs utilisation for "
                          "the time estimate")
_WORKDIR = flags.DEFINE_string("workdir", "runs/allocated", "--shape: the "
                               "workdir in the printed commands")
_JSON = flags.DEFINE_string("json", None, "write the answer as JSON here")
_PLOT = flags.DEFINE_string("plot", None, "write loss vs N at C (PNG) here")


def main(argv):
  if len(argv) > 1:
    raise AllocationError(f"unexpected arguments {argv[1:]}")
  ans = run(law=_LAW.value, fit=_FIT.value, family=_FAMILY.value, C=_C.value,
            unique_tokens=_U.value, target_loss=_TARGET_LOSS.value,
            inference_tokens=_INF.value, N=_N.value, D=_D.value,
            shape=_SHAPE.value, sweep_config=_SWEEP_CONFIG.value,
            target=_TARGET.value, n_devices=_N_DEVICES.value, mfu=_MFU.value,
            workdir=_WORKDIR.value, json_path=_JSON.value,
            plot_path=_PLOT.value,
            command_line=" ".join(["python -m scaling.allocate"] + sys.argv[1:]))
  print(output.text(ans), end="")
  for key in ("json", "plot"):
    if ans.get(key):
      print(f"wrote {ans[key]}")
  return 0


if __name__ == "__main__":
  cli.run(main)
