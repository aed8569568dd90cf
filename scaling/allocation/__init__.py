"""Compute-optimal allocation: "for my budget, which model, how many tokens?".

Three questions on one law L(N, D) (``scaling.allocate`` is the CLI,
docs/allocation.md the guide):

* ``--C``: the Chinchilla optimum N*, D*, L* (Hoffmann et al. 2022, Eq. 4);
* ``--C --unique_tokens``: the data-constrained optimum under repeated data
  (Muennighoff et al. 2023), :mod:`scaling.allocation.data_constrained`;
* ``--target_loss``/``--C`` with ``--inference_tokens``: the inference-aware
  optimum (Sardana et al. 2023), :mod:`scaling.allocation.inference`;

and ``--shape`` turns N* into a concrete model of the project's shape rule
(:mod:`scaling.allocation.shape`). Laws come from a fit.json or the
published registry (:mod:`scaling.allocation.laws`).
"""
