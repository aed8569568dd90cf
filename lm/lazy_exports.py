"""Public names of a package resolved on first use (PEP 562).

``lm``, ``scaling`` and ``experiments`` list their public API as
{name: defining module}; importing the package stays cheap, and an entry
point run with ``python -m`` is not imported twice. Stdlib only.
"""
import importlib
import sys
from typing import Callable, Dict, List, Tuple


def lazy_exports(package: str, exports: Dict[str, str]
                 ) -> Tuple[Callable[[str], object], Callable[[], List[str]]]:
  """(``__getattr__``, ``__dir__``) for ``package`` (its ``__name__``):
  a name in ``exports`` is imported from its module when first used."""

  def __getattr__(name):
    if name in exports:
      return getattr(importlib.import_module(exports[name]), name)
    raise AttributeError(f"module {package!r} has no attribute {name!r}")

  def __dir__():
    return sorted(set(vars(sys.modules[package])) | set(exports))

  return __getattr__, __dir__
