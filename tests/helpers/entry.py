"""Runs an entry point in this process exactly as ``python -m MODULE ARGS``.

``runpy`` executes the module as ``__main__`` (its flag definitions and its
``if __name__ == "__main__"`` block included) with ``sys.argv`` set. Flags
defined by a run (the module's own, and lm.config.flags' ``--config.*``
override flags) are removed before and after it, so the next entry point,
which may define flags of the same names, starts clean. Returns (exit code,
stdout, stderr); pass pytest's ``capfd`` to capture at the fd level.
"""
import runpy
import sys
import warnings

from absl import flags

from lm import cli  # noqa: F401  (defines --verbose once, for every run)

ENTRY_POINTS = ("lm.train", "lm.sample", "experiments.isoflop",
                "experiments.analyze", "scaling.fit")


def _drop_run_flags() -> None:
  """Deletes the flags the entry points defined (absl files them under
  sys.argv[0], here the module name, or '__main__') and lm.config.flags'
  ``--<config flag>.*`` override flags. Flags of libraries imported meanwhile
  (grain, tfds, ...) stay: their modules stay imported."""
  fv = flags.FLAGS
  by_module = fv.flags_by_module_dict()
  names = {"config"}
  for key in ("__main__",) + ENTRY_POINTS:
    names |= {f.name for f in by_module.get(key, [])}
  for name in list(fv):
    if name in names or name.split(".")[0] in names and "." in name:
      if name in fv:
        delattr(fv, name)
  fv.unparse_flags()


def run_entry(capfd, module: str, *args: str):
  """(exit code, stdout, stderr) of ``python -m module *args``, in-process."""
  capfd.readouterr()  # drop anything printed before
  _drop_run_flags()
  old_argv, old_show = sys.argv, warnings.showwarning
  sys.argv = [module, *map(str, args)]
  # As in a fresh process: the module is not imported before it runs (runpy
  # warns otherwise). Other modules keep the copy they imported.
  sys.modules.pop(module, None)
  code = 0
  try:
    with warnings.catch_warnings():
      # Python's default filters, minus "once per location" (tests repeat).
      warnings.simplefilter("always")
      for category in (DeprecationWarning, PendingDeprecationWarning,
                       ImportWarning, ResourceWarning):
        warnings.simplefilter("ignore", category)
      try:
        runpy.run_module(module, run_name="__main__", alter_sys=False)
      except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None
                                                       else 1)
  finally:
    sys.argv = old_argv
    warnings.showwarning = old_show
    _drop_run_flags()
  out, err = capfd.readouterr()
  return code, out, err
