"""The loss_curve fit family: schedule-aware loss laws fitted to training curves.

Registry entries ``loss_curve.multipower`` (Luo et al. 2025, default) and
``loss_curve.tissue`` (Tissue et al. 2024): fit one or several (step,
learning-rate schedule, loss) curves of one model, predict the curve under
any other schedule, bootstrap over curves or points. Modules: ``data``
(records, CSV / schedule readers), ``luo2025`` (the authors' data, schedules,
split and published fits), ``laws`` (the laws as sums over (logged step,
lr change) pairs), ``fitting`` (Huber fit, bootstrap, metrics), ``method``
(registration, fit.json entry, plot, summary lines), ``sources``
(``load``: a built-in or CSV files), ``cli`` (scaling.fit flags).
"""
