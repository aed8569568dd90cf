"""The planner tests' synthetic sweep config and fit.json writer."""
import json

from experiments import planner
from lm.config import default_config_dict
from lm.config.config_dict import ConfigDict


def sweep_cfg(name="t", steps_per_call=100, **sweep):
  """Two budgets (1e11, 3e11) x 5 sizes of a byte-level model, T = 64;
  ``sweep`` overrides any sweep field."""
  c = ConfigDict()
  c.name = name
  c.lm = default_config_dict(
      model=dict(mlp="swiglu", tie_embeddings=True),
      data=dict(source="default", tokenizer="byte", seq_len=64),
      train=dict(steps_per_call=steps_per_call))
  base = dict(budgets=(1e11, 3e11), n_sizes=5, size_range=8.0, prior_k=0.5,
              min_steps=50)
  base.update(sweep)
  c.sweep = planner.default_sweep(**base)
  return c


def fit_json(path, conventions=("6N", "total"), **entries):
  """Writes a schema-2 fit.json with the given (FLOP, param) conventions and
  entries (approach2=..., approach3=...); returns its path."""
  c, p = conventions
  path.write_text(json.dumps({
      "schema_version": 2, "conventions": {"flop_convention": c,
                                           "param_convention": p},
      **entries}))
  return str(path)
