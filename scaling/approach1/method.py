"""Approach 1 (training-curve envelope) entry, labelled by its horizons.

Hoffmann et al. 2022's Approach 1 trains every size to several horizons
(four cosine cycle lengths), so the envelope at each C is made of losses at
the *end* of a schedule. With one horizon per size (an IsoFLOP sweep) the
envelope's intermediate points are mid-schedule losses: the result is then
labelled "single-horizon envelope (not Hoffmann's multi-horizon Approach
1)". The loss is whatever the curves hold (``provenance['loss']``: eval
loss at the steps it was measured, or train loss).
"""
from __future__ import annotations

import collections
import dataclasses
import os
from typing import Any, Dict, List

from scaling.io import curves as curves_lib
from scaling.approach1 import envelope as envelope_lib
from scaling.numerics.intervals import format_interval, procedure_note
from scaling.report import registry as methods
from scaling.report import plots as plots_lib

BOOTSTRAP_CAP = 1000  # Approach 1 replicates are capped (cost).
SINGLE_HORIZON = "single-horizon envelope (not Hoffmann's multi-horizon Approach 1)"


def horizons(curves) -> str:
  """'multi-horizon' when every size has >= 2 distinct final token counts
  (or every point is the end of a schedule: WSD cooldown branches)."""
  if curves.provenance.get("kind") == curves_lib.WSD_BRANCHES:
    return "multi-horizon"
  by_N = collections.defaultdict(set)
  for c in curves:
    by_N[c.N].add(round(float(c.D[-1]), 6))
  return ("multi-horizon" if by_N and all(len(v) >= 2 for v in by_N.values())
          else "single-horizon")


@dataclasses.dataclass(frozen=True)
class Approach1Result(methods.PowerLawResult):
  method: methods.FitMethod
  fit: envelope_lib.EnvelopeFit
  horizons: str
  loss: str
  n_requested: int

  @property
  def label(self) -> str:
    kind = (SINGLE_HORIZON if self.horizons == "single-horizon"
            else "multi-horizon envelope (Hoffmann's Approach 1)")
    return f"Approach 1, {kind}, {self.loss}"

  @property
  def interval_procedure(self):
    n = int(self.fit.samples["a"].size)
    if not n:
      return None
    lv = self.fit.settings["ci_level"]
    return (f"distinct-run subsample (runs resampled with replacement), "
            f"n={n}, percentile {50 * (1 - lv):g}-{50 * (1 + lv):g}%")

  def to_dict(self) -> Dict[str, Any]:
    d = self.fit.to_dict()
    d.update(self.counts(self.n_requested), bootstrap_cap=BOOTSTRAP_CAP,
             horizons=self.horizons, curve_loss=self.loss)
    return d

  def plot(self, ctx) -> list:
    path = os.path.join(ctx.out_dir, "envelope.png")
    plots_lib.plot_envelope(self.fit, ctx.curves, path, title=self.label)
    return [os.path.basename(path)]


def _fit(inputs: methods.FitInputs, options: Dict[str, Any]):
  n_boot = min(inputs.bootstrap, BOOTSTRAP_CAP)
  if inputs.curves.provenance.get("kind") == curves_lib.WSD_BRANCHES:
    # Every point ends a schedule: nothing to smooth, no warm-up transient.
    options = dict(options, smooth_window=1, min_token_fraction=0.0)
  fit = envelope_lib.fit_envelope(inputs.curves, bootstrap=n_boot,
                                  seed=inputs.seed, **options)
  loss = str(inputs.curves.provenance.get("loss", "loss"))
  return Approach1Result(methods.METHODS["approach1.envelope"], fit,
                         horizons(inputs.curves), loss, n_boot)


methods.register(methods.FitMethod(
    key="approach1.envelope", family="approach1",
    label="Approach 1 (training-curve envelope)",
    citation="Hoffmann et al. 2022, Sec. 3.1", needs="curves", fit=_fit,
    default=True))


def summary_lines(fit: Dict[str, Any]) -> List[str]:
  a1 = fit["approach1"]
  ci = a1.get("ci", {})
  return [f"{a1['label']}: a = "
          f"{format_interval(a1['a'], ci.get('a'))}, b = "
          f"{format_interval(a1['b'], ci.get('b'))}{procedure_note(a1)}"]


methods.register_summary(methods.Summary("approach1", 40, summary_lines))
