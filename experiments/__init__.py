"""IsoFLOP sweeps: plan, run (resumable ledger), analyze.

  python -m experiments.isoflop --config=experiments/configs/quickstart.py --workdir=DIR
  python -m experiments.analyze DIR
"""
from lm.lazy_exports import lazy_exports

# Public name -> the module defining it.
_EXPORTS = {
    "AnalysisSettings": "experiments.analysis_settings",
    "make_plan": "experiments.planner",
    "run_sweep": "experiments.executor",
    "Ledger": "experiments.ledger",
}
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
