"""Loads a config file the way config_flags does (get_config())."""
import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load(path):
  spec = importlib.util.spec_from_file_location("cfg", os.path.join(ROOT, path))
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod.get_config()
