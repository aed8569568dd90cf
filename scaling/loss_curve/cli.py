r"""``python -m scaling.fit --approach=loss_curve``: its flags and inputs
(its printed lines: ``method.summary_lines``, a registered Summary).

  python -m scaling.fit --approach=loss_curve --input=luo2025_25M --out=/tmp/lc
  python -m scaling.fit --approach=loss_curve --input=dir_or_a.csv,b.csv \
      [--loss_curve_law=multipower|tissue|all] [--loss_curve_fit=a,b] \
      [--loss_curve_bootstrap_unit=curves|points] [--bootstrap=100] \
      [--loss_curve_predict=cosine:steps=2000:lr=1e-3:warmup=100]

``--input`` is a built-in (``luo2025_25M``, ``luo2025_100M``: Luo et al.'s
protocol, fit on three curves, predict six) or CSV files (``step, lr,
loss``, every step; see ``scaling.loss_curve.data``). Curves not in
``--loss_curve_fit`` are predicted and scored (PredE / WorstE).
``--loss_curve_predict`` predicts the curve of project schedules
(``lm.schedules``: name:steps=..:lr=..:warmup=..[:min_lr_ratio=..]
[:cooldown_fraction=..][:cooldown_shape=..]), ';'-separated, at 200 steps.
"""
from __future__ import annotations

from typing import Any, Dict

import numpy as np
from absl import flags

from scaling.io.types import ScalingDataError
from scaling.loss_curve import sources
from scaling.loss_curve.data import LossCurve, schedule_lr

_LAW = flags.DEFINE_string("loss_curve_law", None, "--approach=loss_curve: "
                           "multipower (default), tissue or all.")
_FIT = flags.DEFINE_list("loss_curve_fit", None, "--approach=loss_curve: "
                         "names of the curves to fit (default: the data "
                         "set's fit split, else all); the rest are predicted.")
_UNIT = flags.DEFINE_enum("loss_curve_bootstrap_unit", "curves",
                          ["curves", "points"], "--approach=loss_curve: "
                          "bootstrap resamples curves or logged points.")
_MAXB = flags.DEFINE_integer("loss_curve_max_bootstrap", 100,
                             "--approach=loss_curve: cap on bootstrap "
                             "replicates (each is a refit).", lower_bound=0)
_PRED = flags.DEFINE_string("loss_curve_predict", None,
                            "--approach=loss_curve: project schedules to "
                            "predict, ';'-separated name:key=value:...")

_KEYS = {"steps": int, "lr": float, "warmup": int, "min_lr_ratio": float,
         "cooldown_fraction": float, "cooldown_shape": str}


def parse_schedule(spec: str, n_points: int = 200):
  """A LossCurve (dummy loss) of a project schedule spec."""
  parts = spec.split(":")
  kv: Dict[str, Any] = {}
  for p in parts[1:]:
    k, _, v = p.partition("=")
    if k not in _KEYS:
      raise ScalingDataError(f"--loss_curve_predict: unknown key {k!r} in "
                             f"{spec!r} (valid: {', '.join(_KEYS)})")
    try:
      kv[k] = _KEYS[k](v)
    except ValueError:
      raise ScalingDataError(f"--loss_curve_predict: bad value {p!r}") from None
  missing = [k for k in ("steps", "lr", "warmup") if k not in kv]
  if missing:
    raise ScalingDataError(f"--loss_curve_predict {spec!r} needs "
                           f"{', '.join(missing)}")
  lr = schedule_lr(parts[0], kv.pop("steps"), kv.pop("lr"),
                   kv.pop("warmup"), **kv)
  step = np.unique(np.linspace(1, lr.size - 1, n_points).round().astype(int))
  return LossCurve(spec, lr, step, np.ones(step.size), {"schedule": spec})


def fit_args(source: str, kw: Dict[str, Any]):
  """run_fit keyword arguments for --approach=loss_curve."""
  curves = sources.load(source)
  extra = ([parse_schedule(s) for s in _PRED.value.split(";") if s.strip()]
           if _PRED.value else [])
  kw.update(approaches=("loss_curve",), table=(curves, dict(curves.provenance)),
            options={"loss_curve": {
                "fit_curves": _FIT.value, "bootstrap_unit": _UNIT.value,
                "max_bootstrap": _MAXB.value, "predict": extra}})
  kw["choices"] = dict(kw.get("choices", {}), loss_curve=_LAW.value)
  return None, kw
