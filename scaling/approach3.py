"""Approach-3 fit methods as registry entries.

Each entry is a small object with the interface of the report's fit-method
registry: ``fit(runs, **options)``, ``interval(runs, fit, ...)``,
``predict(fit, C)``, ``to_dict(fit, boot)``, ``label`` and ``citation``.
``METHODS`` holds one per ``parametric.METHODS`` name; :func:`get`
resolves aliases (``'huber_grid'`` -> ``'grid_lbfgs'``). docs/approach3.md
compares them.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, Optional, Sequence

import numpy as np

from scaling import bootstrap as bootstrap_lib
from scaling import parametric
from scaling import vpnls


@dataclasses.dataclass(frozen=True)
class Approach3Method:
  """One way to fit L(N, D) = E + A/N^alpha + B/D^beta.

  Attributes:
    name: parametric.METHODS entry; label: human-readable name.
    citation: where the procedure comes from; objective: what it minimises.
  """
  name: str
  label: str
  citation: str
  objective: str

  def fit(self, runs, **options) -> parametric.ParametricFit:
    """Point fit on ``runs`` (scaling.data.Runs); options as fit_parametric."""
    return parametric.fit_parametric(runs.N, runs.D, runs.loss,
                                     method=self.name, **options)

  def interval(self, runs, fit: parametric.ParametricFit, *,
               n_resamples: int, seed: int = 0,
               budgets: Sequence[float] = (), **options
               ) -> bootstrap_lib.BootstrapResult:
    """Bootstrap intervals (options as bootstrap_parametric: scheme, ...)."""
    return bootstrap_lib.bootstrap_parametric(
        runs.N, runs.D, runs.loss, n_resamples=n_resamples, seed=seed,
        budgets=tuple(budgets), method=self.name, point=fit, **options)

  def predict(self, fit: parametric.ParametricFit, C) -> Dict[str, np.ndarray]:
    """N_opt, D_opt, D/N and loss at budgets C (Hoffmann 2022, Eq. 4)."""
    return fit.compute_optimal(C)

  def to_dict(self, fit: parametric.ParametricFit,
              boot: Optional[bootstrap_lib.BootstrapResult] = None
              ) -> Dict[str, Any]:
    """The fit (and intervals) with the method's name, label and citation."""
    d = fit.to_dict()
    d.update(method=self.name, label=self.label, citation=self.citation,
             objective_definition=self.objective)
    if boot is not None:
      d["ci"] = {k: [float(v[0]), float(v[1])] for k, v in boot.ci.items()}
      d.update(ci_interval=boot.interval, ci_scheme=boot.scheme,
               n_bootstrap=int(boot.n_ok), n_bootstrap_failed=boot.n_failed,
               n_not_converged=boot.n_not_converged)
    return d


METHODS: Dict[str, Approach3Method] = {m.name: m for m in (
    Approach3Method(
        "grid_lbfgs", "Approach 3 (grid L-BFGS, sum of Huber)",
        "Hoffmann et al. 2022, Sec. 3.3 and App. D.2",
        parametric.OBJECTIVE_DEFINITION["grid_lbfgs"]),
    Approach3Method(
        "mle", "Approach 3 (Huber maximum likelihood)",
        "Besiroglu et al. 2024, arXiv:2404.10102",
        parametric.OBJECTIVE_DEFINITION["mle"]),
    Approach3Method(
        "vpnls", "Approach 3 (variable projection, sum of Huber)",
        "Golub & Pereyra 1973 (variable projection); Open-Athena "
        "scaling-law-analysis (VPNLS for Chinchilla's law)",
        vpnls.OBJECTIVE_NAME),
)}


def get(name: str) -> Approach3Method:
  """The METHODS entry for ``name`` or an alias of it."""
  return METHODS[parametric.canonical_method(name)]
