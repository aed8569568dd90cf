r"""Writes the colab/*.ipynb notebooks from the cell lists in colab/nbsrc/.

  python colab/build_notebooks.py          # rewrite the three notebooks
  python colab/build_notebooks.py --check  # exit 1 if a notebook is stale

The notebooks are generated so that their code is reviewable as plain Python
(``colab/nbsrc/<notebook>.py``; shared cells in ``nbsrc/common.py``) and
carry no outputs; commit the sources and the .ipynb files together. ``tests/test_notebooks.py``
executes every notebook and checks that the committed files match this script.
"""
from __future__ import annotations

import os
import sys
from typing import List

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from nbsrc.chinchilla_replication import REPLICATION  # noqa: E402
from nbsrc.common import Cell  # noqa: E402
from nbsrc.plan_your_sweep import PLAN  # noqa: E402
from nbsrc.quickstart import QUICKSTART  # noqa: E402

NOTEBOOKS = {
    "quickstart.ipynb": QUICKSTART,
    "chinchilla_replication.ipynb": REPLICATION,
    "plan_your_sweep.ipynb": PLAN,
}


def build(cells: List[Cell]):
  import nbformat
  nb = nbformat.v4.new_notebook()
  nb.metadata = {
      "kernelspec": {"display_name": "Python 3", "language": "python",
                     "name": "python3"},
      "language_info": {"name": "python"},
      "colab": {"provenance": []},
  }
  for kind, src in cells:
    cell = (nbformat.v4.new_markdown_cell(src) if kind == "md"
            else nbformat.v4.new_code_cell(src))
    cell.pop("id", None)
    nb.cells.append(cell)
  nb.nbformat_minor = 4  # no cell ids: stable diffs
  nbformat.validate(nb)
  return nb


def render(cells: List[Cell]) -> str:
  import nbformat
  return nbformat.writes(build(cells)) + "\n"


def main(argv: List[str]) -> int:
  check = "--check" in argv[1:]
  stale = []
  for name, cells in NOTEBOOKS.items():
    path = os.path.join(HERE, name)
    text = render(cells)
    if check:
      try:
        with open(path, encoding="utf-8") as f:
          if f.read() != text:
            stale.append(name)
      except FileNotFoundError:
        stale.append(name)
    else:
      with open(path, "w", encoding="utf-8") as f:
        f.write(text)
      print("wrote", path)
  if stale:
    print(f"stale: {', '.join(stale)}; run python colab/build_notebooks.py",
          file=sys.stderr)
    return 1
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv))
