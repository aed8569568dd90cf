"""IsoFLOP sweep planner: budgets -> model sizes -> runs (no JAX, no data).

For each training-FLOP budget C (counted under ``sweep.flop_convention``):

1. centre N*(C): a prior ``prior_k * (C / prior_c0)**prior_a`` or a previous
   fit.json (``center_N``);
2. ``n_sizes`` targets log-spaced over ``size_range`` (max/min), geometric
   centre N*(C) (Hoffmann et al. 2022, Sec. 3.2: "IsoFLOP profiles", a fixed
   set of sizes per budget);
3. each target -> the nearest shape of ``lm.params.shape_for_params``
   (identical shapes within a budget are deduplicated);
4. batch size (``batch_rule``), then steps = round(C / (F * B * T)) with F the
   convention's training FLOPs per token, so the counted FLOPs F * B * T *
   steps are within ``tolerance`` of C; learning rate (``lr_rule``) and warmup.

Candidates that cannot meet their budget are kept in ``Plan.skipped`` with a
one-line reason. Sweep config fields and defaults: ``SWEEP_FIELDS``; config
files start from ``default_sweep(**overrides)``.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import warnings
from typing import Any, Callable, Dict, List, Optional, Tuple

from lm import flops as flops_lib
from lm import params as params_lib
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
}

# lm config keys that do not change a run's result; left out of config_hash
# so a sweep can be resumed with e.g. --config.lm.train.progress=False (keys
# lm.trainer lets change on resume, plus data locations). Not steps_per_call:
# the planner aligns steps to it (aligned_steps).
HASH_EXCLUDED = (("train", "progress"), ("train", "tensorboard"),
                 ("train", "log_every"), ("train", "eval_every"),
                 ("train", "ckpt_every"), ("train", "keep_checkpoints"),
                 ("data", "cache_dir"), ("data", "tfds_data_dir"))
SWEEP_HASH_EXCLUDED = ("est_flops_per_s",)

_SIZE_KEYS = ("d_model", "n_layers", "n_heads", "d_ff", "max_seq_len")
BYTE_VOCAB = 257  # lm.data.tokenizers.ByteTokenizer: 256 bytes + EOS


class PlanError(ValueError):
  """A sweep config that cannot be planned; the message is one line."""


def default_sweep(**overrides: Any):
  """``c.sweep`` with every field of ``SWEEP_FIELDS``, overrides applied."""
  import ml_collections
  unknown = sorted(set(overrides) - set(SWEEP_FIELDS))
  if unknown:
    raise PlanError(f"unknown sweep field {unknown[0]!r} "
                    f"(valid: {', '.join(SWEEP_FIELDS)})")
  values = {k: v for k, (v, _) in SWEEP_FIELDS.items()}
  values.update(overrides)
  return ml_collections.ConfigDict(values)


@dataclasses.dataclass(frozen=True)
class PlannedRun:
  """One training run of the sweep."""
  run_id: str            # stable, filesystem-safe, unique within the plan
  budget: float          # the budget C this run belongs to
  N: int                 # parameters under param_convention
  shape: Dict[str, int]  # d_model, n_layers, n_heads, d_ff
  D: int                 # training tokens = steps * batch_size * seq_len
  steps: int
  batch_size: int
  seq_len: int
  lr: float
  warmup_steps: int
  flops: float           # counted training FLOPs of exactly these steps
  flops_error: float     # flops / budget - 1
  flop_convention: str
  param_convention: str
  steps_per_call: int    # a divisor of steps (see aligned_steps)

  def lm_config(self, base):
    """A copy of ``base`` (the sweep's ``c.lm``) with this run's fields."""
    import ml_collections
    c = ml_collections.ConfigDict(base.to_dict())
    for k, v in self.shape.items():
      c.model[k] = int(v)
    c.model.max_seq_len = self.seq_len
    c.data.seq_len = self.seq_len
    c.train.batch_size = self.batch_size
    c.train.steps = self.steps
    c.train.lr = self.lr
    c.train.warmup_steps = self.warmup_steps
    c.train.flop_convention = self.flop_convention
    c.train.steps_per_call = self.steps_per_call
    return c

  def to_dict(self) -> Dict[str, Any]:
    d = dataclasses.asdict(self)
    d["shape"] = dict(self.shape)
    return d


@dataclasses.dataclass(frozen=True)
class SkippedCandidate:
  budget: float
  N_target: float
  reason: str


@dataclasses.dataclass(frozen=True)
class Plan:
  runs: Tuple[PlannedRun, ...]
  skipped: Tuple[SkippedCandidate, ...]
  config_hash: str       # sha256 of canonical sweep + lm config (+ fit.json)
  centers: Dict[float, float] = dataclasses.field(default_factory=dict)
  est_flops_per_s: float = 0.0   # sweep.est_flops_per_s (0: CPU model)

  def budgets(self) -> List[float]:
    return sorted({r.budget for r in self.runs})


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
_CHOICES = {"flop_convention": tuple(flops_lib.CONVENTIONS),
            "param_convention": tuple(params_lib.PARAM_CONVENTIONS),
            "batch_rule": ("fixed", "marin"), "lr_rule": ("fixed", "marin")}


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
  _check(isinstance(s.center, str) and bool(s.center),
         "sweep.center must be 'prior' or a fit.json path")


def _budgets(s) -> List[float]:
  b = s.budgets
  try:
    return [float(x) for x in ((b,) if isinstance(b, (int, float)) else b)]
  except (TypeError, ValueError):
    raise PlanError(f"sweep.budgets must be numbers, got {b!r}") from None


def _read_fit(path: str) -> Dict[str, Any]:
  path = os.path.expanduser(path)
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, json.JSONDecodeError) as e:
    raise PlanError(f"sweep.center={path!r}: cannot read fit.json "
                    f"({e})") from None


def _finite(*vals) -> bool:
  return all(isinstance(v, (int, float)) and math.isfinite(v) for v in vals)


def center_N(budget: float, sweep_cfg) -> float:
  """The geometric centre N*(C) of a budget's sizes.

  'prior': prior_k * (C / prior_c0)**prior_a. A fit.json path: Approach 3's
  N_opt = G (C/6)^a (Hoffmann et al. 2022, Eq. 4) if present, else Approach
  2's N_opt = k_N C^a (Hoffmann et al. 2022, Sec. 3.2). The fit's C is used
  as this sweep's C, so fit and sweep should share a FLOP convention.
  """
  _positive("budgets", budget)
  s = sweep_cfg
  if s.center == "prior":
    # Hoffmann et al. 2022, Table 3: N_opt = sqrt(C/120) (k=1, a=0.5, c0=120).
    return float(s.prior_k * (budget / s.prior_c0) ** s.prior_a)
  fit = _read_fit(s.center)
  a3, a2 = fit.get("approach3") or {}, fit.get("approach2") or {}
  if _finite(a3.get("G"), a3.get("a")):
    return float(a3["G"] * (budget / 6.0) ** a3["a"])  # Hoffmann 2022, Eq. 4.
  if _finite(a2.get("k_N"), a2.get("a")):
    return float(a2["k_N"] * budget ** a2["a"])  # Hoffmann 2022, Sec. 3.2.
  raise PlanError(f"sweep.center={s.center!r}: fit.json has neither "
                  "approach3 (G, a) nor approach2 (k_N, a)")


def size_targets(center: float, n_sizes: int, size_range: float) -> List[float]:
  """n_sizes log-spaced targets: max/min = size_range, geometric mean center."""
  return [center * size_range ** (i / (n_sizes - 1) - 0.5)
          for i in range(n_sizes)]


# ----------------------------------------------------------------------------
# Planning.

def vocab_size_of(data) -> int:
  """Vocab from the tokenizer config alone (no data is touched).

  byte: 257. sentencepiece: data.sp_vocab_size (a trained model can have fewer
  pieces on a tiny corpus; the trainer records the real parameter count).
  """
  if data.tokenizer == "byte":
    return BYTE_VOCAB
  if data.tokenizer == "sentencepiece":
    return int(data.sp_vocab_size)
  raise PlanError(f"lm.data.tokenizer must be byte or sentencepiece, got "
                  f"{data.tokenizer!r}")


def marin_lr(batch_size: int, d_model: int, s) -> float:
  """Peak learning rate, clamped to lr_max."""
  if s.lr_rule == "fixed":
    return float(min(s.lr_constant, s.lr_max))
  # Marin recipe.py ScalingRecipe.compute_learning_rate: 0.33 sqrt(B) / d.
  return float(min(s.lr_constant * math.sqrt(batch_size) / d_model, s.lr_max))


def choose_batch(budget: float, fpt: float, d_model: int, s) -> int:
  """Batch size (sequences) under ``s.batch_rule``."""
  if s.batch_rule == "fixed":
    return int(s.batch_size)
  # Marin experiments/isoflop_sweep.py candidate_configs: B = 2^ceil(log2(
  # C / (F T steps))), halved while lr(B) > max lr, rejected below min batch.
  exact = budget / (fpt * s.seq_len * s.target_steps)
  B = 2 ** max(0, math.ceil(math.log2(max(exact, 1.0))))
  if s.lr_rule == "marin":
    while (B > s.min_batch_size
           and s.lr_constant * math.sqrt(B) / d_model > s.lr_max):
      B //= 2
  return int(min(max(B, s.min_batch_size), s.max_batch_size))


def _shape_kwargs(lm_cfg) -> Dict[str, Any]:
  model = lm_cfg.model
  model = dict(model.to_dict() if hasattr(model, "to_dict") else model)
  return {k: v for k, v in model.items() if k not in _SIZE_KEYS}


def _fmt_id(budget: float, N: int, shape: Dict[str, int]) -> str:
  return f"C{budget:.3g}_N{N:.3g}_d{shape['d_model']}_L{shape['n_layers']}"


def aligned_steps(exact: float, steps_per_call: int, window: float
                  ) -> Tuple[int, int]:
  """(steps, steps_per_call for the run): the integer nearest ``exact`` within
  relative ``window`` that has a divisor k in [steps_per_call/2,
  steps_per_call] (or is itself <= steps_per_call), so the trainer's fused
  calls all have one length and no remainder call is compiled; else
  (round(exact), steps_per_call)."""
  base = max(1, int(round(exact)))
  reach = int(window * exact)
  for delta in sorted(range(-reach, reach + 1), key=lambda x: (abs(x), x)):
    n = base + delta
    if n < 1 or abs(n / exact - 1) > window:
      continue
    if n <= steps_per_call:
      return n, n
    for k in range(steps_per_call, (steps_per_call + 1) // 2 - 1, -1):
      if n % k == 0:
        return n, k
  return base, steps_per_call


def _plan_candidate(budget, cfg_model, s, n_params, steps_per_call):
  """(PlannedRun, None) or (None, reason)."""
  T, conv = int(s.seq_len), s.flop_convention
  fpt = flops_lib.flops_per_token(cfg_model, T, conv)
  B = choose_batch(budget, fpt, cfg_model.d_model, s)
  exact = budget / (fpt * B * T)   # C = F x D (Kaplan et al. 2020, Sec. 2.1)
  # Half the tolerance for alignment; the exact check below uses all of it.
  steps, spc = aligned_steps(exact, steps_per_call, s.tolerance / 2)
  if steps < s.min_steps:
    return None, (f"{exact:.1f} steps at batch {B} < min_steps="
                  f"{s.min_steps}: model too large for this budget")
  D = steps * B * T
  flops = flops_lib.training_flops(cfg_model, T, D, conv)
  err = flops / budget - 1.0
  if abs(err) > s.tolerance:
    return None, (f"rounding {exact:.2f} steps to {steps} misses C by "
                  f"{err:+.2%} (> tolerance {s.tolerance:.2%})")
  tpp = D / n_params
  if s.min_tokens_per_param and tpp < s.min_tokens_per_param:
    return None, (f"D/N = {tpp:.3g} < min_tokens_per_param="
                  f"{s.min_tokens_per_param}")
  if s.max_tokens_per_param and tpp > s.max_tokens_per_param:
    return None, (f"D/N = {tpp:.3g} > max_tokens_per_param="
                  f"{s.max_tokens_per_param}")
  warmup = max(int(s.min_warmup_steps), int(round(s.warmup_fraction * steps)))
  shape = {k: int(getattr(cfg_model, k)) for k in _SIZE_KEYS[:4]}
  return PlannedRun(
      run_id=_fmt_id(budget, n_params, shape), budget=float(budget),
      N=int(n_params), shape=shape, D=int(D), steps=steps, batch_size=B,
      seq_len=T, lr=marin_lr(B, cfg_model.d_model, s),
      warmup_steps=min(warmup, steps - 1), flops=float(flops),
      flops_error=float(err), flop_convention=conv,
      param_convention=s.param_convention, steps_per_call=spc), None


def make_plan(cfg) -> Plan:
  """The runs of the sweep config ``cfg`` (``cfg.sweep`` and ``cfg.lm``)."""
  if "sweep" not in cfg or "lm" not in cfg:
    raise PlanError("the sweep config needs both c.sweep and c.lm sections")
  s = cfg.sweep
  validate_sweep(s)
  vocab = vocab_size_of(cfg.lm.data)
  kwargs = _shape_kwargs(cfg.lm)
  spc = int(cfg.lm.train.get("steps_per_call", 1))
  budgets = sorted(_budgets(s))
  runs: List[PlannedRun] = []
  skipped: List[SkippedCandidate] = []
  centers: Dict[float, float] = {}
  counts: Dict[float, int] = {}
  for C in budgets:
    centers[C] = center_N(C, s)
    seen: Dict[Tuple[int, ...], float] = {}
    first_reason = ""
    for N_t in size_targets(centers[C], int(s.n_sizes), float(s.size_range)):
      try:
        m = params_lib.shape_for_params(
            N_t, vocab_size=vocab, seq_len=int(s.seq_len),
            convention=s.param_convention, head_dim=int(s.head_dim),
            ff_multiple=int(s.ff_multiple), **kwargs)
      except ConfigError as e:
        run, reason = None, f"no shape: {e}"
      else:
        key = tuple(int(getattr(m, k)) for k in _SIZE_KEYS[:4])
        if key in seen:
          run, reason = None, (f"same shape as N_target={seen[key]:.4g} "
                               f"(d_model={m.d_model}, n_layers={m.n_layers})")
        else:
          seen[key] = N_t
          run, reason = _plan_candidate(
              C, m, s, params_lib.n_params(m, s.param_convention), spc)
      if run is None:
        skipped.append(SkippedCandidate(C, float(N_t), reason))
        first_reason = first_reason or reason
      else:
        runs.append(run)
    counts[C] = sum(r.budget == C for r in runs)
    if counts[C] == 0:
      raise PlanError(f"budget C={C:.3g} too small for any model: "
                      f"{first_reason}")
    if counts[C] < 3:
      warnings.warn(f"budget C={C:.3g} has only {counts[C]} usable sizes (< 3 "
                    "cannot fit a parabola); see the skipped candidates")
  if max(counts.values()) < 3:
    raise PlanError("budget too small for any model: no budget has >= 3 usable "
                    "sizes; raise sweep.budgets or lower sweep.min_steps")
  ids = [r.run_id for r in runs]
  if len(set(ids)) != len(ids):
    raise PlanError("duplicate run ids; make sweep.budgets more distinct")
  return Plan(runs=tuple(runs), skipped=tuple(skipped),
              config_hash=config_hash(cfg), centers=centers,
              est_flops_per_s=float(s.est_flops_per_s))


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
  material = {"sweep": sweep, "lm": lm}
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


# ----------------------------------------------------------------------------
# Time estimates and the plan table.

# Steady-state lm.trainer throughput measured on 2 shared CPU cores (load ~4
# from other jobs; T=64, B=8, steps_per_call ~100, byte vocab, float32,
# quickstart runs): (N total params, tokens/s). Expect +-50% with load.
CPU_THROUGHPUT = ((7_488, 300_000.0), (30_240, 124_000.0), (52_640, 66_000.0),
                  (69_888, 57_000.0))
# Per-run fixed cost measured alongside: data setup, jit compile, final eval
# and checkpoint, 6-9 s (+~6 s for the first run of a process; +~5 s more if
# steps were not a multiple of steps_per_call, which aligned_steps avoids).
CPU_RUN_OVERHEAD_S = 8.0


def cpu_tokens_per_s(N: float) -> float:
  """Tokens/s from ``CPU_THROUGHPUT``: log-log interpolation; held flat below
  the smallest size (fixed overheads dominate) and ~1/N above the largest
  (matmul-bound)."""
  pts = CPU_THROUGHPUT
  if N <= pts[0][0]:
    return pts[0][1]
  if N >= pts[-1][0]:
    return pts[-1][1] * pts[-1][0] / N
  for (n0, t0), (n1, t1) in zip(pts, pts[1:]):
    if n0 <= N <= n1:
      w = math.log(N / n0) / math.log(n1 / n0)
      return math.exp((1 - w) * math.log(t0) + w * math.log(t1))
  raise AssertionError("unreachable")


def estimate_seconds(run: PlannedRun, flops_per_s: float,
                     overhead_s: float = 0.0) -> float:
  """Wall time = counted FLOPs / effective FLOP/s + a fixed per-run overhead.

  ``flops_per_s`` is the achieved rate in the run's FLOP convention, e.g.
  peak (lm.hardware.device_peak_flops) x MFU, or measured tokens/s x FLOPs
  per token (what ``format_plan`` does).
  """
  _positive("flops_per_s", flops_per_s)
  return run.flops / flops_per_s + overhead_s


def _seconds(run: PlannedRun, tokens_per_s, flops_per_s: float) -> float:
  if tokens_per_s:
    return estimate_seconds(run, tokens_per_s(run) * run.flops / run.D)
  if flops_per_s:
    return estimate_seconds(run, flops_per_s)
  return estimate_seconds(run, cpu_tokens_per_s(run.N) * run.flops / run.D,
                          CPU_RUN_OVERHEAD_S)


def _hms(sec: float) -> str:
  sec = int(round(sec))
  return f"{sec // 3600}:{sec // 60 % 60:02d}:{sec % 60:02d}"


def format_plan(plan: Plan, *,
                tokens_per_s: Optional[Callable[[PlannedRun], float]] = None
                ) -> str:
  """The plan as a text table with estimated wall times.

  ``tokens_per_s(run)`` is the training throughput; default: the config's
  ``sweep.est_flops_per_s`` if set, else the 2-core CPU model
  ``cpu_tokens_per_s`` + ``CPU_RUN_OVERHEAD_S`` per run.
  """
  head = (f"{'budget':>8} {'N':>11} {'d':>5} {'L':>3} {'H':>3} {'d_ff':>5} "
          f"{'D':>13} {'D/N':>7} {'steps':>7} {'batch':>5} {'lr':>8} "
          f"{'FLOPs err':>9} {'est. time':>9}")
  lines = [head, "-" * len(head)]
  total = 0.0
  for r in plan.runs:
    sec = _seconds(r, tokens_per_s, plan.est_flops_per_s)
    total += sec
    sh = r.shape
    lines.append(
        f"{r.budget:8.3g} {r.N:11,d} {sh['d_model']:5d} {sh['n_layers']:3d} "
        f"{sh['n_heads']:3d} {sh['d_ff']:5d} {r.D:13,d} {r.D / r.N:7.1f} "
        f"{r.steps:7,d} {r.batch_size:5d} {r.lr:8.2e} "
        f"{100 * r.flops_error:+8.3f}% {_hms(sec):>9}")
  conv = plan.runs[0] if plan.runs else None
  model = ("given throughput" if tokens_per_s else
           f"at {plan.est_flops_per_s:.3g} FLOP/s" if plan.est_flops_per_s
           else "2-core CPU model")
  lines.append("-" * len(head))
  lines.append(
      f"{len(plan.runs)} runs over {len(plan.budgets())} budgets, "
      f"{sum(r.flops for r in plan.runs):.3g} FLOPs"
      + (f" ({conv.flop_convention}, N {conv.param_convention})"
         if conv else "")
      + f", est. {_hms(total)} ({model}); config {plan.config_hash[:12]}")
  for sk in plan.skipped:
    lines.append(f"skipped C={sk.budget:.3g} N_target={sk.N_target:,.0f}: "
                 f"{sk.reason}")
  return "\n".join(lines)
