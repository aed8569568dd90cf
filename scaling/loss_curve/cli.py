r"""``python -m scaling.fit --approach=loss_curve``: flags and the summary.

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

from typing import Any, Dict, List

import numpy as np
from absl import flags

from scaling.data import ScalingDataError

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
  from scaling.loss_curve.data import LossCurve, schedule_lr
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
  from scaling.loss_curve import data  # pylint: disable=g-import-not-at-top
  curves = data.load(source)
  extra = ([parse_schedule(s) for s in _PRED.value.split(";") if s.strip()]
           if _PRED.value else [])
  kw.update(approaches=("loss_curve",), table=(curves, dict(curves.provenance)),
            options={"loss_curve": {
                "fit_curves": _FIT.value, "bootstrap_unit": _UNIT.value,
                "max_bootstrap": _MAXB.value, "predict": extra}})
  kw["choices"] = dict(kw.get("choices", {}), loss_curve=_LAW.value)
  return None, kw


def summary_lines(result: Dict[str, Any]) -> List[str]:
  """Per-curve errors and, for Luo et al.'s data, their numbers beside ours."""
  from scaling import fit_schema
  out = []
  for _, e in fit_schema.entries(result):
    if e.get("family") != "loss_curve":
      continue
    out.append(f"{e['label']}: fit on {', '.join(e['options']['fit_curves'])} "
               f"({e['n_points']} points, {e['n_pairs']} pairs) in "
               f"{e['fit_seconds']:.1f} s ({e['fit_seconds_per_curve']:.1f} s "
               "per curve)")
    for c in e["curves"]:
      out.append(f"  {c['name']:<22} {c['role']:<4}  PredE {c['PredE']:.5f}  "
                 f"WorstE {c['WorstE']:.5f}")
    pub = e.get("published")
    t = e.get("test_summary") or {}
    if t:
      out.append(f"  test average: PredE {t['PredE']:.5f}  WorstE "
                 f"{t['WorstE']:.5f}" + (
                     f"   (published: {pub['PredE']:.5f}, {pub['WorstE']:.5f}; "
                     f"ratio {t['PredE'] / pub['PredE']:.3f}, "
                     f"{t['WorstE'] / pub['WorstE']:.3f})" if pub else ""))
    if pub:
      out.append("  parameter   ours          published")
      for k, v in pub["params"].items():
        out.append(f"  {k:<10} {e['params'][k]:<13.6g} {v:.6g}")
  return out
