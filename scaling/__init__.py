"""Compute-optimal scaling laws (Hoffmann et al. 2022): one folder per fit family.

  io/               runs in: loaders (CSV, JSONL, ledgers), built-in data sets,
                    training curves, the ledger schema, input checks,
                    types (ScalingDataError, Runs; imports nothing from scaling)
  numerics/         L-BFGS, Huber, intervals, budgets, token FLOPs (F(N))
  approach1/        Approach 1: envelope of training curves (+ its plots)
  approach2/        Approach 2: IsoFLOP estimators, bootstrap, seed noise,
                    the extrapolation check
  approach3/        Approach 3: the law, grid L-BFGS / MLE, VPNLS, bootstrap
  loss_vs_compute/  L*(C): saturating and power-law fits of the minima
  powerlaw/         y = a x^b (+ c) on any columns
  report/           registry (FitMethod, Check), families (one line per
                    family), analysis (the one pass), fit_schema, tables, plots
  diagnostics/      conditioning, scipy_reference (tests, benchmarks, notebooks)
  fit.py            the command line (python -m scaling.fit)

docs/architecture.md says where a new family, estimator option or FLOP
convention goes.
"""
from lm.lazy_exports import lazy_exports

# Public name -> the module defining it.
_EXPORTS = {
    "Runs": "scaling.io.types",
    "ScalingDataError": "scaling.io.types",
    "load_runs": "scaling.io.loaders",
    "Curves": "scaling.io.curves",
    "load_curves": "scaling.io.curves",
    "load_workdir_curves": "scaling.io.curves",
    "run_fit": "scaling.report.analysis",
    "DEFAULT_BUDGETS": "scaling.report.analysis",
    "FitMethod": "scaling.report.registry",
    "FitInputs": "scaling.report.registry",
    "MethodSkipped": "scaling.report.registry",
    "Check": "scaling.report.registry",
    "register": "scaling.report.registry",
    "register_check": "scaling.report.registry",
    "FAMILIES": "scaling.report.fit_schema",
    "TokenFlops": "scaling.numerics.token_flops",
    "percentile_interval": "scaling.numerics.intervals",
    "format_interval": "scaling.numerics.intervals",
}
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
