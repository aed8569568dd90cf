"""The one summary renderer: a fit.json -> printed lines.

Each family registers its own lines (``registry.Summary``, in its
``method.py``) and each check its own (``registry.Check.summary``); this
module only orders them and appends the warnings. ``experiments.analyze``
prints them under its sweep line; fit.md / fit.tex / the scaling.fit table
are ``scaling.report.tables``.
"""
from __future__ import annotations

from typing import Any, Dict, List

from scaling.report import families as _families  # noqa: F401 (registers every family's summary)
from scaling.report import registry


def fit_summary_lines(fit: Dict[str, Any]) -> List[str]:
  """Every fitted family's lines (registry order), the checks', the warnings."""
  lines: List[str] = []
  for s in sorted(registry.SUMMARIES.values(), key=lambda s: s.order):
    if fit.get(s.family):
      lines += s.lines(fit)
  for check in registry.CHECKS.values():
    if check.summary is not None:
      lines += check.summary(fit.get(check.key) or None)
  for w in fit.get("warnings", []):
    lines.append(f"warning: {w}")
  return lines
