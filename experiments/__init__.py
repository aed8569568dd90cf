"""IsoFLOP sweeps: plan, run (resumable ledger), analyze.

  python -m experiments.isoflop --config=experiments/configs/quickstart.py --workdir=DIR
  python -m experiments.analyze DIR
"""
import importlib

# Public name -> the module defining it.
_EXPORTS = {
    "AnalysisSettings": "experiments.analysis_settings",
    "make_plan": "experiments.planner",
    "run_sweep": "experiments.executor",
    "Ledger": "experiments.ledger",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
  """Resolves a public name from _EXPORTS when first used (PEP 562), so that
  ``import experiments`` stays cheap and entry points run with ``python -m`` are
  not imported twice."""
  if name in _EXPORTS:
    return getattr(importlib.import_module(_EXPORTS[name]), name)
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
  return sorted(set(globals()) | set(__all__))
