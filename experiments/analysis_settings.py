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
from scaling import isoflop_estimators

# name -> (default, documentation).
ANALYSIS_FIELDS: Dict[str, Tuple[Any, str]] = {
    "bootstrap": (1000, "bootstrap replicates for every interval (0 = none)"),
    "isoflop_estimator": (isoflop_estimators.DEFAULT_ESTIMATOR,
                          "Approach-2 per-budget estimator ("
                          + ", ".join(isoflop_estimators.ESTIMATORS)
                          + ") or 'all' (every one; the default is primary)"),
    "isoflop_k": (isoflop_estimators.LOCAL_K,
                  "local_parabola: sizes nearest the observed minimum"),
    "isoflop_scheme": ("runs", "Approach-2 intervals: 'runs' (resample runs "
                               "within budgets) or 'seed_noise' (Porian et al. "
                               "2024 perturbation by the run-to-run sigma)"),
    "isoflop_weighted": (None, "weighted power-law fit, 1/sigma_b^2 (None: "
                               "on for seed_noise, off for runs)"),
    "seed_noise_std": (None, "stated run-to-run loss std for seed_noise "
                             "(None: measured from seed repeats, else "
                             "residual-based)"),
    "curve_loss": ("eval_loss", "Approach-1 curves: 'eval_loss' at the steps "
                                "it was measured, or 'loss' (train, averaged "
                                "over each log window)"),
    "seed": (0, "bootstrap seed"),
}


@dataclasses.dataclass(frozen=True)
class AnalysisSettings:
  bootstrap: int = ANALYSIS_FIELDS["bootstrap"][0]
  isoflop_estimator: str = ANALYSIS_FIELDS["isoflop_estimator"][0]
  isoflop_k: int = ANALYSIS_FIELDS["isoflop_k"][0]
  isoflop_scheme: str = ANALYSIS_FIELDS["isoflop_scheme"][0]
  isoflop_weighted: Optional[bool] = None
  seed_noise_std: Optional[float] = None
  curve_loss: str = ANALYSIS_FIELDS["curve_loss"][0]
  seed: int = 0

  def __post_init__(self):
    def bad(name, why):
      raise ConfigError(f"analysis.{name}={getattr(self, name)!r}: {why}")
    if not isinstance(self.bootstrap, int) or self.bootstrap < 0 or self.bootstrap == 1:
      bad("bootstrap", "must be 0 or an integer >= 2")
    valid = tuple(isoflop_estimators.ESTIMATORS) + ("all",)
    if self.isoflop_estimator not in valid:
      bad("isoflop_estimator", f"valid: {', '.join(valid)}")
    if not isinstance(self.isoflop_k, int) or self.isoflop_k < 3:
      bad("isoflop_k", "must be an integer >= 3")
    if self.isoflop_scheme not in ("runs", "seed_noise"):
      bad("isoflop_scheme", "valid: runs, seed_noise")
    if self.isoflop_weighted not in (None, True, False):
      bad("isoflop_weighted", "must be true, false or None")
    if self.seed_noise_std is not None and not (
        isinstance(self.seed_noise_std, (int, float)) and self.seed_noise_std > 0):
      bad("seed_noise_std", "must be a positive number or None")
    if self.curve_loss not in ("eval_loss", "loss"):
      bad("curve_loss", "valid: eval_loss, loss")
    if not isinstance(self.seed, int):
      bad("seed", "must be an integer")

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
    """scaling.report options for Approach 2."""
    return {"scheme": self.isoflop_scheme, "weighted": self.isoflop_weighted,
            "seed_noise_std": self.seed_noise_std,
            "estimator_options": {"local_parabola": {"k": self.isoflop_k}}}
