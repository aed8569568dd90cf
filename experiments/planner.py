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
import math
import warnings
from typing import Any, Dict, List, Optional, Tuple

from lm import flops as flops_lib
from lm import params as params_lib
from lm.config import ConfigError
from experiments.sweep_config import (  # noqa: F401  (re-exported)
    HASH_EXCLUDED, SWEEP_FIELDS, SWEEP_HASH_EXCLUDED, PlanError, _budgets,
    _positive, config_hash, default_sweep, validate_sweep)
from experiments import schemes as schemes_lib
from experiments.centering import (  # noqa: F401  (re-exported)
    SIX_N_CONVENTIONS, center_N)
from experiments.plan_table import (  # noqa: F401  (re-exported)
    CPU_RUN_OVERHEAD_S, CPU_THROUGHPUT, cpu_tokens_per_s, estimate_seconds,
    format_plan)

_SIZE_KEYS = ("d_model", "n_layers", "n_heads", "d_ff", "max_seq_len")
BYTE_VOCAB = 257  # lm.data.tokenizers.ByteTokenizer: 256 bytes + EOS


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
  seed: int = 0          # train.seed: initialisation and data order
  repeat_of: Optional[str] = None  # run_id of the base run of a seed repeat
  max_epochs: float = 0.0  # sweep.max_epochs -> train.max_epochs (0: none)
  schedule: str = ""       # train.schedule ("": the base config's)
  trunk_id: Optional[str] = None    # wsd_trunk: the trunk this branch cools from
  branch_step: Optional[int] = None  # wsd_trunk: its cooldown start P

  @property
  def planned_spend(self) -> float:
    """FLOPs this run trains itself: C, or its cooldown for a branch."""
    if self.branch_step is None or self.trunk_id is None:
      return self.flops
    return self.flops * (self.steps - self.branch_step) / self.steps

  def lm_config(self, base):
    """A copy of ``base`` (the sweep's ``c.lm``) with this run's fields."""
    from lm.config_dict import ConfigDict
    c = ConfigDict(base.to_dict())
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
    c.train.seed = self.seed
    c.train.max_epochs = float(self.max_epochs)
    if self.schedule:
      c.train.schedule = self.schedule
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
  unique_train_tokens: Optional[int] = None  # None: not counted (see
  #                                            count_unique_tokens)
  max_epochs: float = 0.0        # sweep.max_epochs
  scheme: str = "independent"    # sweep.scheme (experiments.schemes)
  trunks: Tuple[Any, ...] = ()   # wsd_trunk: experiments.trunks.PlannedTrunk

  def spent_flops(self) -> float:
    """Training FLOPs this plan spends: every trunk, every run's own part."""
    return (sum(t.flops for t in self.trunks)
            + sum(r.planned_spend for r in self.runs))

  def independent_flops(self) -> float:
    """What the same runs cost trained independently: the sum of their C."""
    return sum(r.flops for r in self.runs)

  def epochs(self, run: PlannedRun) -> Optional[float]:
    """D / unique training tokens of ``run`` (None when not counted)."""
    if not self.unique_train_tokens:
      return None
    return run.D / self.unique_train_tokens

  def budgets(self) -> List[float]:
    return sorted({r.budget for r in self.runs})


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


def seed_repeats(runs: List[PlannedRun], center: float, k: int
                 ) -> List[PlannedRun]:
  """k extra seeds of the run nearest (in log N) to ``center``: same shape,
  tokens and lr, seeds base+1..base+k; they measure run-to-run noise
  (Porian et al. 2024, Sec. 3: seed noise of the final loss)."""
  if not k or not runs:
    return []
  base = min(runs, key=lambda r: (abs(math.log(r.N / center)), r.N))
  return [dataclasses.replace(base, run_id=f"{base.run_id}_s{base.seed + j}",
                              seed=base.seed + j, repeat_of=base.run_id)
          for j in range(1, k + 1)]


def _plan_candidate(budget, cfg_model, s, n_params, steps_per_call, seed):
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
      param_convention=s.param_convention, steps_per_call=spc, seed=seed,
      max_epochs=float(s.max_epochs)), None


def count_unique_tokens(cfg) -> Optional[int]:
  """Unique training tokens of the sweep's data at ``sweep.seq_len``, or None
  when they cannot be counted without tokenizing (tfds or SentencePiece
  without a token cache, or a tfds dataset not prepared here; the trainer
  then checks ``train.max_epochs`` itself).
  Touches data (builds a byte-level token cache), unlike ``make_plan``."""
  from lm.data import DataError, count_train_tokens  # pylint: disable=g-import-not-at-top
  data = dict(cfg.lm.data.to_dict() if hasattr(cfg.lm.data, "to_dict")
              else cfg.lm.data)
  data["seq_len"] = int(cfg.sweep.seq_len)
  try:
    return count_train_tokens(data)
  except DataError:
    if data.get("source") != "tfds":
      raise
    return None  # not prepared on this machine (--plan_only on a laptop)


def check_epochs(plan: Plan) -> None:
  """PlanError naming the first run that would repeat data beyond
  ``max_epochs`` (Muennighoff et al. 2023: repeated tokens are worth less, so
  loss falls differently with D), and how much more text it needs."""
  if not plan.max_epochs or not plan.unique_train_tokens:
    return
  U = plan.unique_train_tokens
  over = [r for r in plan.runs if r.D > plan.max_epochs * U]
  if over:
    r = max(over, key=lambda x: x.D)
    more = math.ceil(r.D / plan.max_epochs) - U
    raise PlanError(
        f"run {r.run_id} would train D={r.D:,} tokens = {r.D / U:.3g} epochs "
        f"of the {U:,} unique training tokens (sweep.max_epochs="
        f"{plan.max_epochs:g}; {len(over)} run(s) over); it needs {more:,} "
        "more unique tokens: raise lm.data.max_corpus_bytes (or use more "
        "data), lower sweep.budgets, or raise sweep.max_epochs")


def _plan_per_budget(s, budgets, centers, vocab, kwargs, spc, seed):
  """(runs, skipped): each budget's n_sizes targets centred on its N*(C)."""
  runs: List[PlannedRun] = []
  skipped: List[SkippedCandidate] = []
  for C in budgets:
    seen: Dict[Tuple[int, ...], float] = {}
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
              C, m, s, params_lib.n_params(m, s.param_convention), spc, seed)
      if run is None:
        skipped.append(SkippedCandidate(C, float(N_t), reason))
      else:
        runs.append(run)
    runs += seed_repeats([r for r in runs if r.budget == C], centers[C],
                         int(s.seed_repeats))
  return runs, skipped


def _check_trunk_settings(cfg, grid: str) -> None:
  """wsd_trunk trains WSD runs on the shared grid: say so when not set."""
  schedule = cfg.lm.train.get("schedule", "cosine")
  if schedule != "wsd":
    raise PlanError(f"sweep.scheme='{cfg.sweep.scheme}' trains warmup-stable-"
                    f"decay runs, but lm.train.schedule={schedule!r}; set "
                    "--config.lm.train.schedule=wsd (its cooldown_fraction "
                    "and cooldown_shape apply)")
  if grid != "shared":
    raise PlanError(f"sweep.scheme='{cfg.sweep.scheme}' needs one grid of "
                    "shapes across budgets: sweep.size_grid='shared' (or "
                    f"'auto'), not {grid!r}")


def make_plan(cfg, *, unique_train_tokens: Optional[int] = None) -> Plan:
  """The runs of the sweep config ``cfg`` (``cfg.sweep`` and ``cfg.lm``).

  With ``unique_train_tokens`` (``count_unique_tokens(cfg)``), a plan whose
  runs exceed ``sweep.max_epochs`` is refused (``check_epochs``).
  """
  if "sweep" not in cfg or "lm" not in cfg:
    raise PlanError("the sweep config needs both c.sweep and c.lm sections")
  s = cfg.sweep
  validate_sweep(s)
  vocab = vocab_size_of(cfg.lm.data)
  kwargs = _shape_kwargs(cfg.lm)
  spc = int(cfg.lm.train.get("steps_per_call", 1))
  seed = int(cfg.lm.train.get("seed", 0))
  budgets = sorted(_budgets(s))
  F = None
  if s.center != "prior" and s.flop_convention not in SIX_N_CONVENTIONS:
    from experiments.sweep_flops import planner_flops_per_token
    F = planner_flops_per_token({"sweep": s.to_dict(), "lm": cfg.lm.to_dict()},
                                10.0 * max(budgets) ** 0.5)
  centers = {C: center_N(C, s, F) for C in budgets}
  grid = schemes_lib.size_grid(s)
  if schemes_lib.SCHEMES[s.scheme].trunks:
    _check_trunk_settings(cfg, grid)
  if grid == "shared":
    from experiments import trunks as trunks_lib
    runs, skipped = trunks_lib.plan_shared(s, centers, vocab, kwargs, spc,
                                           seed, cfg.lm.train)
  else:
    runs, skipped = _plan_per_budget(s, budgets, centers, vocab, kwargs, spc,
                                     seed)
  counts: Dict[float, int] = {}
  for C in budgets:
    counts[C] = sum(r.budget == C and r.repeat_of is None for r in runs)
    if counts[C] == 0:
      first = next((k.reason for k in skipped if k.budget == C), "no shape")
      raise PlanError(f"budget C={C:.3g} too small for any model: {first}")
    if counts[C] < 3:
      warnings.warn(f"budget C={C:.3g} has only {counts[C]} usable sizes (< 3 "
                    "cannot fit a parabola); see the skipped candidates")
  if max(counts.values()) < 3:
    raise PlanError("budget too small for any model: no budget has >= 3 usable "
                    "sizes; raise sweep.budgets or lower sweep.min_steps")
  ids = [r.run_id for r in runs]
  if len(set(ids)) != len(ids):
    raise PlanError("duplicate run ids; make sweep.budgets more distinct")
  trunks = ()
  if schemes_lib.SCHEMES[s.scheme].trunks:
    from experiments import trunks as trunks_lib
    runs, trunks = trunks_lib.attach_trunks(runs, cfg.lm.train, seed)
  plan = Plan(runs=tuple(runs), skipped=tuple(skipped),
              config_hash=config_hash(cfg), centers=centers,
              est_flops_per_s=float(s.est_flops_per_s),
              unique_train_tokens=unique_train_tokens,
              max_epochs=float(s.max_epochs), scheme=s.scheme,
              trunks=tuple(trunks))
  check_epochs(plan)
  return plan
