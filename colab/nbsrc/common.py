"""Cells shared by every notebook, and the md/code cell constructors."""
from __future__ import annotations

from typing import Tuple

Cell = Tuple[str, str]  # ("md" | "code", source)


def md(text: str) -> Cell:
  return ("md", text.strip("\n"))


def code(text: str) -> Cell:
  return ("code", text.strip("\n"))


INSTALL = code('''
# Setup: install scalinglm the way a Colab user does (skipped when it is
# already importable, e.g. on a re-run or in tests/CI).
import importlib
import os
import subprocess
import sys

REPO_URL = "https://github.com/<your-org>/scalinglm"  # PLACEHOLDER: the repository URL
LOCAL_CHECKOUT = os.environ.get("SCALINGLM_LOCAL_CHECKOUT")  # tests/CI: a checkout, installed -e
SMALL = os.environ.get("SCALINGLM_NOTEBOOK_SMALL") == "1"    # tests/CI: tiny settings


def pip_install(*args):
  subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", *args])


try:
  import lm  # noqa: F401
except ImportError:
  if LOCAL_CHECKOUT:
    pip_install("-e", LOCAL_CHECKOUT)
    sys.path.insert(0, LOCAL_CHECKOUT)  # a running kernel does not re-read .pth files
  elif "<your-org>" in REPO_URL:
    raise RuntimeError("set REPO_URL in this cell to the scalinglm repository URL")
  else:
    pip_install(f"scalinglm[all] @ git+{REPO_URL}")
  importlib.invalidate_caches()

import lm  # noqa: E402,F811
print("scalinglm:", os.path.dirname(os.path.dirname(os.path.abspath(lm.__file__))),
      "| SMALL (test) mode" if SMALL else "")
''')

INSTALL_NOTE = md('''
The first code cell installs the package (`pip install "scalinglm[all] @
git+REPO_URL"`; set `REPO_URL` first). If pip upgrades `jax` on Colab, use
*Runtime → Restart session* once and run the notebook again from the top.
With `SCALINGLM_NOTEBOOK_SMALL=1` (what `tests/test_notebooks.py` sets) every
setting shrinks so that the notebook runs in well under a minute; the numbers
it then prints are smoke-test numbers, not results.
''')

SHOW_PNG = code('''
import io

from IPython.display import Image, display


def show_png(path_or_fig):
  """Displays a PNG file or a matplotlib figure inline (any backend)."""
  if isinstance(path_or_fig, str):
    display(Image(filename=path_or_fig))
    return
  buf = io.BytesIO()
  path_or_fig.savefig(buf, format="png", dpi=100)
  display(Image(data=buf.getvalue()))
''')
