"""Cell sources of the colab/ notebooks (see colab/build_notebooks.py)."""
