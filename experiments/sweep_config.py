"""Sweep config schema: fields and defaults, validation, and the config hash.

``SWEEP_FIELDS`` documents every field of ``c.sweep``; config files start
from ``default_sweep(**overrides)``. ``config_hash`` identifies a sweep so
the executor can refuse a changed config on an existing workdir.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from typing import Any, Dict, List, Tuple

from experiments import hparam_rules  # lr_rule/batch_rule 'law'
from experiments import b2_grid, lr_grid
from experiments import branches as branches_lib
from experiments import schemes as schemes_lib
from experiments.plan_records import PlanError
from experiments.runners import resources as resources_lib
from lm import flops as flops_lib
from lm.accel.targets import get_target
from lm import params as params_lib
from lm.config import RESUME_MUTABLE
from lm.config.config_dict import ConfigDict
from experiments.analysis_settings import AnalysisSettings
from lm.config import ConfigError

# name -> (default, documentation): every field of ``c.sweep``.
SWEEP_FIELDS: Dict[str, Tuple[Any, str]] = {
    "budgets": ((1e11, 3e11, 1e12), "training FLOPs C, counted under "
                                    "flop_convention"),
    "flop_convention": ("6N", "lm.flops.CONVENTIONS key; also "
                              "train.flop_convention"),
    "param_convention": ("total", "lm.params.PARAM_CONVENTIONS key of N"),
    "n_sizes": (5, "size targets per budget (>= 3; 5-9 typical)"),
    "size_range": (16.0, "largest / smallest size target in a budget (> 1)"),
    "center": ("prior", "'prior' or a fit.json path (approach3, else "
                        "approach2 N_opt(C))"),
    "prior_k": (0.3, "prior N*(C) = prior_k * (C / prior_c0)**prior_a"),
    "prior_a": (0.5, "Hoffmann et al. 2022, Table 2: a ~ 0.5"),
    "prior_c0": (120.0, "C = 6ND, D = 20N -> N = sqrt(C/120) (Hoffmann "
                        "et al. 2022, Table 3)"),
    "seq_len": (64, "T; sets data.seq_len and model.max_seq_len"),
    "batch_rule": ("fixed", "'fixed' (batch_size) or 'marin' (see "
                            "choose_batch)"),
    "batch_size": (8, "sequences per step, batch_rule='fixed'"),
    "target_steps": (4096, "batch_rule='marin': steps the batch is solved for"),
    "min_batch_size": (8, "batch_rule='marin': smallest batch (Marin: 8)"),
    "max_batch_size": (1024, "batch_rule='marin': largest batch"),
    "lr_rule": ("marin", "'marin': lr_constant sqrt(B) / d_model; 'fixed': "
                         "lr_constant"),
    "lr_constant": (0.33, "Marin recipe: 0.33"),
    "lr_max": (1e-2, "lr clamp (Marin: 0.01)"),
    "lr_multipliers": ((1.0,), "factors of the rule's lr, each run trained at "
                               "every one (experiments.lr_grid; e.g. (0.5, "
                               "1, 2)); the analysis takes the loss at the "
                               "lr optimum (experiments.lr_tuning)"),
    "b2_values": ((), "AdamW beta2 values, each (shape, budget, lr "
                      "multiplier) trained at every one (experiments."
                      "b2_grid; e.g. (0.95, 0.99)); () : train.b2 only; the "
                      "analysis takes the best b2 per (N, C)"),
    "warmup_fraction": (0.05, "warmup = max(min_warmup_steps, fraction x "
                              "steps), < steps"),
    "min_warmup_steps": (10, "see warmup_fraction"),
    "tolerance": (0.01, "allowed |counted FLOPs / C - 1|"),
    "min_steps": (50, "fewer steps: skipped"),
    "min_tokens_per_param": (0.0, "D/N below: skipped (0: no bound)"),
    "max_tokens_per_param": (0.0, "D/N above: skipped (0: no bound)"),
    "head_dim": (64, "shape rule, lm.params.head_dim_for"),
    "ff_multiple": (64, "shape rule, lm.params.ffn_dim"),
    "est_flops_per_s": (0.0, "plan-table time estimate only (0: 2-core CPU "
                             "model); not hashed"),
    "scheme": ("independent", "how runs train (experiments.schemes): "
                              "'independent' (each from scratch) or "
                              "'wsd_trunk' (a constant-lr trunk per shape, a "
                              "cooldown branch per budget; needs "
                              "lm.train.schedule='wsd')"),
    "branches": (branches_lib.DEFAULT, branches_lib.DOC),
    "size_grid": ("auto", "'per_budget' (sizes centred on each budget), "
                          "'shared' (one grid of shapes across budgets; batch, "
                          "lr and warmup per shape) or 'auto' (the scheme's: "
                          "shared for wsd_trunk)"),
    "seed_repeats": (0, "extra seeds of each budget's central size (same "
                        "shape, tokens and lr): run-to-run sigma for the "
                        "seed-noise bootstrap (Porian et al. 2024)"),
    "max_epochs": (1.0, "refuse a plan whose runs would see their unique "
                        "training tokens more than this many times "
                        "(Muennighoff et al. 2023); 0 = no limit; not hashed"),
    # Runner settings: where and how often a run is tried, never its result.
    "resources_per_run": ("auto", "--executor=ray: Ray resources of one run, "
                                  "dict or 'GPU=1,CPU=2' ('auto': one GPU if "
                                  "the cluster has GPUs, else one CPU); not "
                                  "hashed"),
    # Memory-aware planning (experiments.memory_plan).
    "target": ("", "accelerator the sweep is planned for (lm.accel.targets: "
                   "v5e-8, v5p-8, v5e:2x4, 8xh100, ...): each run gets the "
                   "cheapest micro-batch x grad_accum and remat that fits; "
                   "'' = no memory planning"),
    "memory_fraction": (0.9, "with target: a run's memory per device must "
                             "be <= this fraction of the target's"),
    "compile_workers": (1, "with a TPU target: processes compiling side by "
                           "side; not hashed"),
    "max_retries": (2, "a run that fails (error, crashed worker, lost node) "
                       "is retried this many times, then recorded 'failed'; "
                       "not hashed"),
    # lr_rule / batch_rule 'law' (experiments.hparam_rules, docs/hparams.md).
    "lr_law": ("", "lr_rule='law': a published law (steplaw2025, "
                   "deepseek2024) or a fit.json with an hparams entry"),
    "batch_law": ("", "batch_rule='law': as lr_law; B* tokens / seq_len "
                      "sequences, clamped to [min_batch_size, max_batch_size]"),
    "law_form": ("auto", "'law' rules: 'N_D' (Step Law: lr(N, D), B(D)), 'C' "
                         "(DeepSeek: lr(C), B(C)) or 'auto' (N_D if the law "
                         "has it)"),
}

# lm config keys that do not change a run's result; left out of config_hash
# so a sweep can be resumed with e.g. --config.lm.train.progress=False (keys
# lm.trainer lets change on resume, plus data locations). Not steps_per_call:
# the planner aligns steps to it (aligned_steps).
HASH_EXCLUDED = RESUME_MUTABLE
SWEEP_HASH_EXCLUDED = ("est_flops_per_s", "max_epochs", "resources_per_run",
                       "max_retries", "compile_workers")

def default_sweep(**overrides: Any):
  """``c.sweep`` with every field of ``SWEEP_FIELDS``, overrides applied."""
  unknown = sorted(set(overrides) - set(SWEEP_FIELDS))
  if unknown:
    raise PlanError(f"unknown sweep field {unknown[0]!r} "
                    f"(valid: {', '.join(SWEEP_FIELDS)})")
  values = {k: v for k, (v, _) in SWEEP_FIELDS.items()}
  values.update(overrides)
  return ConfigDict(values)


# ----------------------------------------------------------------------------
# Validation and centring.

def _positive(name: str, v: Any, integer: bool = False) -> None:
  ok = (not isinstance(v, bool) and isinstance(v, (int, float))
        and math.isfinite(v) and v > 0)
  if integer:
    ok = ok and float(v) == int(v)
  if not ok:
    kind = "a positive integer" if integer else "a positive finite number"
    raise PlanError(f"sweep.{name} must be {kind}, got {v!r}")


_INTS = ("n_sizes", "seq_len", "batch_size", "target_steps", "min_batch_size",
         "max_batch_size", "min_steps", "head_dim", "ff_multiple")
_FLOATS = ("size_range", "prior_k", "prior_a", "prior_c0", "lr_constant",
           "lr_max", "tolerance")
_CHOICES = {"scheme": tuple(schemes_lib.SCHEMES),
            "size_grid": schemes_lib.SIZE_GRIDS,
            "flop_convention": tuple(flops_lib.CONVENTIONS),
            "param_convention": tuple(params_lib.PARAM_CONVENTIONS),
            "batch_rule": ("fixed", "marin", "law"),
            "lr_rule": ("fixed", "marin", "law")}


def _check(ok: bool, msg: str) -> None:
  if not ok:
    raise PlanError(msg)


def validate_sweep(s) -> None:
  """Raises PlanError (one line) for a malformed ``c.sweep``."""
  for k in SWEEP_FIELDS:
    _check(k in s, f"sweep.{k} is missing; start configs from "
                   "experiments.planner.default_sweep()")
  unknown = sorted(set(s.keys()) - set(SWEEP_FIELDS))
  _check(not unknown, f"unknown sweep field {unknown[:1]}")
  budgets = _budgets(s)
  _check(bool(budgets), "sweep.budgets is empty; give FLOP budgets, e.g. "
                        "(1e11, 3e11)")
  for b in budgets:
    _positive("budgets", b)
  _check(len(set(budgets)) == len(budgets),
         f"sweep.budgets has duplicates: {tuple(budgets)}")
  for name, valid in _CHOICES.items():
    _check(s[name] in valid, f"unknown sweep.{name} {s[name]!r} (valid: "
                             f"{', '.join(valid)})")
  for name in _INTS:
    _positive(name, s[name], integer=True)
  for name in _FLOATS:
    _positive(name, s[name])
  _check(s.n_sizes >= 3, f"sweep.n_sizes must be >= 3 to fit a parabola, "
                         f"got {s.n_sizes}")
  _check(s.size_range > 1, f"sweep.size_range must be > 1, got {s.size_range}")
  _check(s.tolerance < 0.5, f"sweep.tolerance must be < 0.5, got {s.tolerance}")
  _check(s.min_batch_size <= s.max_batch_size,
         "sweep.min_batch_size > sweep.max_batch_size")
  _check(0 <= s.warmup_fraction < 1, "sweep.warmup_fraction must be in "
                                     f"[0, 1), got {s.warmup_fraction}")
  _check(isinstance(s.min_warmup_steps, int) and s.min_warmup_steps >= 0,
         "sweep.min_warmup_steps must be a non-negative integer, got "
         f"{s.min_warmup_steps!r}")
  lo, hi = s.min_tokens_per_param, s.max_tokens_per_param
  _check(lo >= 0 and hi >= 0 and not (lo and hi and lo >= hi),
         "sweep.min/max_tokens_per_param must be >= 0 with min < max (0 = no "
         f"bound), got {lo}, {hi}")
  _check(s.est_flops_per_s >= 0, "sweep.est_flops_per_s must be >= 0, got "
                                 f"{s.est_flops_per_s}")
  _check(isinstance(s.seed_repeats, int) and not isinstance(s.seed_repeats, bool)
         and s.seed_repeats >= 0, "sweep.seed_repeats must be a "
         f"non-negative integer, got {s.seed_repeats!r}")
  _check(not isinstance(s.max_epochs, bool)
         and isinstance(s.max_epochs, (int, float))
         and math.isfinite(s.max_epochs) and s.max_epochs >= 0,
         f"sweep.max_epochs must be >= 0 (0 = no limit), got {s.max_epochs!r}")
  _check(isinstance(s.max_retries, int) and not isinstance(s.max_retries, bool)
         and s.max_retries >= 0, "sweep.max_retries must be a non-negative "
                                 f"integer, got {s.max_retries!r}")
  _check_target(s)
  try:
    resources_lib.parse(s.resources_per_run)
  except resources_lib.ResourceSpecError as e:
    raise PlanError(str(e)) from None
  bad_grid = lr_grid.check(s) or b2_grid.check(s)
  if bad_grid:
    raise PlanError(bad_grid)
  _check(isinstance(s.center, str) and bool(s.center),
         "sweep.center must be 'prior' or a fit.json path")
  hparam_rules.validate(s)
  branches_lib.parse(s)


def _check_target(s) -> None:
  _check(isinstance(s.target, str), f"sweep.target must be a string such as "
                                    f"'v5e-8', got {s.target!r}")
  if s.target:
    try:
      get_target(s.target)
    except ConfigError as e:
      raise PlanError(f"sweep.target: {e}") from None
  f = s.memory_fraction
  _check(not isinstance(f, bool) and isinstance(f, (int, float))
         and 0 < f <= 1, f"sweep.memory_fraction must be in (0, 1], got {f!r}")
  _check(isinstance(s.compile_workers, int) and s.compile_workers >= 1,
         f"sweep.compile_workers must be >= 1, got {s.compile_workers!r}")


def _budgets(s) -> List[float]:
  b = s.budgets
  try:
    return [float(x) for x in ((b,) if isinstance(b, (int, float)) else b)]
  except (TypeError, ValueError):
    raise PlanError(f"sweep.budgets must be numbers, got {b!r}") from None


def _canonical(x: Any) -> Any:
  if hasattr(x, "to_dict"):
    x = x.to_dict()
  if isinstance(x, dict):
    return {str(k): _canonical(v) for k, v in sorted(x.items())}
  if isinstance(x, (list, tuple)):
    return [_canonical(v) for v in x]
  if isinstance(x, float) and x.is_integer() and abs(x) < 2**53:
    return int(x)        # 1e11 and 100000000000 hash alike
  return x


def config_hash(cfg) -> str:
  """sha256 of canonical JSON of c.sweep and c.lm (minus HASH_EXCLUDED).

  With a fit.json centre, the file's bytes are hashed too: a refit changes
  the plan even when the path does not.
  """
  lm = _canonical(cfg.lm)
  for section, key in HASH_EXCLUDED:
    lm.get(section, {}).pop(key, None)
  sweep = _canonical(cfg.sweep)
  for key in SWEEP_HASH_EXCLUDED:
    sweep.pop(key, None)
  branches_lib.add_hash_material(sweep)  # 'all': hashes as before
  if lr_grid.is_default(sweep.get("lr_multipliers", (1.0,))):
    sweep.pop("lr_multipliers", None)  # configs from before the field
  if b2_grid.is_default(sweep.get("b2_values", ())):
    sweep.pop("b2_values", None)
  if not sweep.get("target"):  # no memory planning: hashes as before it existed
    for key in ("target", "memory_fraction"):
      sweep.pop(key, None)
  material = {"sweep": sweep, "lm": lm}
  hparam_rules.add_hash_material(material, cfg.sweep)
  center = cfg.sweep.get("center", "prior")
  if center != "prior":
    try:
      with open(os.path.expanduser(center), "rb") as f:
        material["center_sha256"] = hashlib.sha256(f.read()).hexdigest()
    except OSError:
      material["center_sha256"] = None
  blob = json.dumps(material, sort_keys=True, separators=(",", ":"),
                    default=str)
  return hashlib.sha256(blob.encode()).hexdigest()


def validate_analysis(a) -> None:
  """Raises PlanError (one line) for a malformed ``c.analysis`` (optional).

  The fields and their checks are ``experiments.analysis_settings``'s (one
  schema, also used by experiments.analyze).
  """
  try:
    AnalysisSettings.from_config(a)
  except ConfigError as e:
    raise PlanError(str(e)) from None
