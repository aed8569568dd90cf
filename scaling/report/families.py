"""The fit families: one folder each under ``scaling/``, one line each here.

Importing this module runs every family's ``register`` calls (in its
``method.py``), filling ``scaling.report.registry.METHODS``. The analysis pass
(``scaling.report.analysis``) imports it; the registry itself imports no
family, so a family module may import the registry at its top.

A new family is a new folder ``scaling/<family>/`` with a ``method.py`` that
calls ``registry.register(FitMethod(...))``, its name in
``scaling.report.fit_schema.FAMILIES`` (the fit.json slot and order), and
one import line below. Checks run after the families (``registry.Check``)
are registered the same way.
"""
from scaling.approach1 import method as approach1  # noqa: F401
from scaling.approach2 import method as approach2  # noqa: F401
from scaling.approach3 import method as approach3  # noqa: F401
from scaling.loss_vs_compute import method as loss_vs_compute  # noqa: F401
from scaling.loss_vs_compute import loss_power_law  # noqa: F401
from scaling.powerlaw import method as powerlaw  # noqa: F401
from scaling.hparams import method as hparams  # noqa: F401
from scaling.loss_curve import method as loss_curve  # noqa: F401

# Checks (registry.register_check), run by the pass after the families.
from scaling.approach2 import extrapolation  # noqa: F401
