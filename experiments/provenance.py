"""Provenance that survives a deleted ``sweep.json``.

``sweep.json`` records the config that started a sweep directory, and the
executor refuses a different one. Deleting the file must not switch that off:
every run of a sweep stores the sweep's config hash in each of its
checkpoints (``lm.trainer``'s ``provenance``; ``lm.checkpoint``'s integrity
record), the trainer refuses to resume a checkpoint recording another hash,
and, when ``sweep.json`` is missing, ``check_unrecorded`` refuses a ledger
whose finished runs were not all written by this config.
"""
from __future__ import annotations

import os

from experiments.ledger import Ledger
from lm import logs
from lm.checkpoint import read_record

PROVENANCE_KEY = "sweep_config_hash"


class ProvenanceError(ValueError):
  """A sweep directory whose results cannot be shown to come from this config."""


def provenance(config_hash: str) -> dict:
  """What the executor passes to ``lm.trainer.train(provenance=...)``."""
  return {PROVENANCE_KEY: config_hash}


def check_unrecorded(workdir: str, config_hash: str) -> None:
  """With no sweep.json: every ledger run must prove it belongs to this config.

  Reads each finished run's newest checkpoint record (read-only). Raises
  ``ProvenanceError`` naming the first run that does not.
  """
  records = Ledger(os.path.join(workdir, "results.jsonl")).read()
  if not records:
    return
  for rec in records:
    run_dir = os.path.join(workdir, "runs", rec["run_id"])
    record = read_record(os.path.join(run_dir, "checkpoints"))
    if record is None and rec["status"] != "ok":
      # A run that diverged before its first save has no checkpoint; its
      # run.json says who wrote it (it never enters a fit).
      record = logs.read_json(os.path.join(run_dir, "run.json")) or {}
    got = ((record or {}).get("provenance") or {}).get(PROVENANCE_KEY)
    if got != config_hash:
      found = (f"its checkpoints record sweep config {got[:12]}" if got else
               "it has no checkpoint recording its sweep config")
      raise ProvenanceError(
          f"{workdir} has no sweep.json and its ledger holds run "
          f"{rec['run_id']}, but {found}, not this config's "
          f"{config_hash[:12]}; use a new --workdir, or rerun with the config "
          "that started it")
