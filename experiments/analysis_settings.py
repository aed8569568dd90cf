"""Analysis settings of a sweep: ``c.analysis`` (ConfigDict) -> a frozen dataclass, once.

``ANALYSIS_FIELDS`` documents every field (docs/configuration.md lists them);
``AnalysisSettings.from_config`` validates a config's ``analysis`` section
(unknown keys and bad values are one-line ``ConfigError``s) and
``with_overrides`` applies command-line flags. Analysis settings are not part
of the sweep's config hash: refit freely.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, Optional, Tuple

from lm.config import ConfigError
from scaling.approach2 import estimators as isoflop_estimators

# name -> (default, documentation).
ANALYSIS_FIELDS: Dict[str, Tuple[Any, str]] = {
    "bootstrap": (1000, "bootstrap replicates for every interval (0 = none)"),
    "isoflop_estimator": (isoflop_estimators.DEFAULT_ESTIMATOR,
                          "Approach-2 per-budget estimator ("
                          + ", ".join(isoflop_estimators.ESTIMATORS)
                          + ") or 'all' (every one; the default is primary)"),
    # One field per estimator option (generated: isoflop_estimators.OPTIONS).
    **{o.setting: (o.default, o.help) for o in isoflop_estimators.OPTIONS},
    "isoflop_scheme": ("runs", "Approach-2 intervals: 'runs' (resample runs "
                               "within budgets) or 'seed_noise' (Porian et al. "
                               "2024 perturbation by the run-to-run sigma)"),
    "isoflop_weighted": (None, "weighted power-law fit, 1/sigma_b^2 (None: "
                               "on for seed_noise, off for runs)"),
    "isoflop_on_edge": ("drop", "Approach 2: 'drop' or 'keep' budgets whose "
                                "minimum is at the edge of the sampled sizes"),
    "seed_noise_std": (None, "stated run-to-run loss std for seed_noise "
                             "(None: measured from seed repeats, else "
                             "residual-based)"),
    "curve_loss": ("eval_loss", "Approach-1 curves: 'eval_loss' at the steps "
                                "it was measured, or 'loss' (train, averaged "
                                "over each log window)"),
    "seed": (0, "bootstrap seed"),
}


class _AnalysisSettings:
  """Methods of AnalysisSettings (its fields: ANALYSIS_FIELDS, below)."""
  bootstrap: int = ANALYSIS_FIELDS["bootstrap"][0]
  isoflop_estimator: str = ANALYSIS_FIELDS["isoflop_estimator"][0]
  isoflop_scheme: str = ANALYSIS_FIELDS["isoflop_scheme"][0]
  isoflop_weighted: Optional[bool] = None
  isoflop_on_edge: str = ANALYSIS_FIELDS["isoflop_on_edge"][0]
  seed_noise_std: Optional[float] = None
  curve_loss: str = ANALYSIS_FIELDS["curve_loss"][0]
  seed: int = 0

  def __post_init__(self):
    def check(ok, name, what):
      if not ok:
        raise ConfigError(f"analysis.{name} must be {what}, got "
                          f"{getattr(self, name)!r}")
    is_int = lambda v: isinstance(v, int) and not isinstance(v, bool)
    check(is_int(self.bootstrap) and self.bootstrap >= 0 and self.bootstrap != 1,
          "bootstrap", "an integer >= 0 (0 = no intervals; 1 is too few)")
    est = tuple(isoflop_estimators.ESTIMATORS) + ("all",)
    check(self.isoflop_estimator in est, "isoflop_estimator",
          f"one of {', '.join(est)}")
    for o in isoflop_estimators.OPTIONS:
      check(o.valid(getattr(self, o.setting)), o.setting, o.what)
    check(self.isoflop_scheme in ("runs", "seed_noise"), "isoflop_scheme",
          "'runs' or 'seed_noise'")
    check(self.isoflop_weighted in (None, True, False), "isoflop_weighted",
          "true, false or None")
    check(self.isoflop_on_edge in ("drop", "keep"), "isoflop_on_edge",
          "'drop' or 'keep'")
    check(self.seed_noise_std is None or (
        isinstance(self.seed_noise_std, (int, float))
        and self.seed_noise_std > 0), "seed_noise_std",
          "a positive number or None")
    check(self.curve_loss in ("eval_loss", "loss"), "curve_loss",
          "'eval_loss' or 'loss'")
    check(is_int(self.seed) and self.seed >= 0, "seed", "an integer >= 0")

  @classmethod
  def from_config(cls, analysis) -> "AnalysisSettings":
    """From ``c.analysis`` (ConfigDict, dict or None)."""
    if analysis is None:
      return cls()
    d = analysis.to_dict() if hasattr(analysis, "to_dict") else dict(analysis)
    unknown = sorted(set(d) - set(ANALYSIS_FIELDS))
    if unknown:
      raise ConfigError(f"unknown analysis field {unknown[0]!r} (valid: "
                        f"{', '.join(ANALYSIS_FIELDS)})")
    return cls(**d)

  def with_overrides(self, **kw) -> "AnalysisSettings":
    """A copy with every non-None keyword applied (command-line flags)."""
    return dataclasses.replace(self, **{k: v for k, v in kw.items()
                                        if v is not None})

  def isoflop_options(self) -> Dict[str, Any]:
    """scaling.report.analysis options for Approach 2."""
    return {"scheme": self.isoflop_scheme, "weighted": self.isoflop_weighted,
            "on_edge": self.isoflop_on_edge,
            "seed_noise_std": self.seed_noise_std,
            "estimator_options": isoflop_estimators.estimator_options(
                {o.setting: getattr(self, o.setting)
                 for o in isoflop_estimators.OPTIONS})}


def _settings_class():
  """AnalysisSettings: the fields of _AnalysisSettings with one field per
  estimator option inserted after isoflop_estimator (frozen dataclass)."""
  base = [(n, t, dataclasses.field(default=getattr(_AnalysisSettings, n)))
          for n, t in _AnalysisSettings.__annotations__.items()]
  opts = [(o.setting, Optional[o.kind], dataclasses.field(default=o.default))
          for o in isoflop_estimators.OPTIONS]
  i = [n for n, _, _ in base].index("isoflop_estimator") + 1
  namespace = {k: v for k, v in vars(_AnalysisSettings).items()
               if k not in _AnalysisSettings.__annotations__
               and k not in ("__dict__", "__weakref__", "__annotations__")}
  namespace["__doc__"] = ("Analysis settings (c.analysis), frozen; fields "
                          "and their docs: ANALYSIS_FIELDS.")
  return dataclasses.make_dataclass("AnalysisSettings", base[:i] + opts + base[i:],
                                    namespace=namespace, frozen=True)


AnalysisSettings = _settings_class()
AnalysisSettings.__module__ = __name__
