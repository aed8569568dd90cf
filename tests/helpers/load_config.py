"""Loads a config file the way ``--config=path`` does (lm.config.flags)."""
import os

from lm.config.flags import load_config_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load(path):
  return load_config_file(os.path.join(ROOT, path))
