"""The hparams fit family: optimal learning-rate and batch laws from tuned runs.

* ``inputs``   -- runs with (N, D, lr, batch_tokens, loss) from a CSV or a ledger
* ``estimate`` -- Step Law's procedure: band per (N, D) cell, least squares on
                  logs, bootstrap over runs (eta*(N, D), B*(D), eta*(C), B*(C))
* ``laws``     -- published laws by name (steplaw2025, deepseek2024) and fitted
                  laws read back from a fit.json
* ``options``  -- the options dataclass (CLI flags generated from it)
* ``method``   -- the registry entry (fit.json key ``hparams``)
* ``plot``, ``summary`` -- loss vs lr per cell; the printed summary lines

Docs: docs/hparams.md.
"""
