"""Trainers that fail on purpose (``RunTask.trainer``), for the retry tests.

Same signature as ``lm.trainer.train``. Importable by Ray workers (they run
with the repository root on PYTHONPATH in the tests).
"""
import os
import signal

FAIL_RUN_ENV = "SCALINGLM_TEST_FAIL_RUN"  # run_id that fail_one_run fails


def fail_one_run(config, workdir, verbose=False, provenance=None):
  """Raises for the run named by $SCALINGLM_TEST_FAIL_RUN; trains the others."""
  if os.path.basename(os.path.normpath(workdir)) == os.environ.get(FAIL_RUN_ENV):
    raise RuntimeError("injected failure (tests.helpers.faulty_trainer)")
  from lm.trainer import train
  return train(config, workdir, verbose=verbose, provenance=provenance)


def crash_worker(config, workdir, verbose=False, provenance=None):
  """SIGKILLs its own process, as a worker lost with its node would end."""
  del config, workdir, verbose, provenance
  os.kill(os.getpid(), signal.SIGKILL)
