"""Checks that fit input is complete, consistent and this sweep's own.

One layer for every loader of ``scaling.data`` (so for ``scaling.fit`` and
``experiments.analyze`` alike); see ``scaling.validation.inputs``.
"""
