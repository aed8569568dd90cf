"""One grid of shapes across budgets, and WSD trunks with cooldown branches.

``sweep.size_grid='shared'`` plans every budget on one log-spaced grid of
sizes, N_j = N_0 r^j with r = size_range^(1/(n_sizes-1)): budget C takes the
``n_sizes`` consecutive grid points centred nearest its N*(C) prior, so a
shape serves several budgets. Batch size, learning rate and warmup are fixed
per shape (the batch rule and the warmup fraction are applied at the shape's
smallest budget), the steps per budget: S = round(C / (F B T)).

``sweep.scheme='wsd_trunk'`` (Hägele et al. 2024, Sec. 4: one constant-lr
run per size, cooled down from its checkpoints) then trains, per shape and
seed, one *trunk*: the WSD run of the shape's largest budget, stopped at its
cooldown start P_max = S_max - round(f S_max), checkpointed (and kept) at
every branch point P = S - round(f S) of the budgets it serves. Each (shape,
budget) result is a *branch*: the WSD run of S steps restored from the trunk
at P (``lm.init_from`` proves the trunk is that run's first P steps), cooled
down over its last f S steps, evaluated and recorded as an ordinary ledger
line whose C is the compute the run represents, F B T S; what the branch
itself cost is ``compute_spent`` = F B T (S - P). The sweep spends
sum over trunks of F B T P_max + sum of the cooldowns, against sum of C for
independent runs (``Plan.spent_flops`` / ``Plan.independent_flops``).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Dict, List, Optional, Tuple

from lm import flops as flops_lib
from lm import params as params_lib
from lm import schedules
from lm.config import ConfigError
from experiments import b2_grid, lr_grid
from experiments.plan_records import PlannedRun, SkippedCandidate
from experiments.shape_search import (SHAPE_KEYS, choose_batch,
                                      format_run_id, marin_lr, seed_repeats,
                                      shape_for_target, skip_reason)
from lm.config.config_dict import ConfigDict



@dataclasses.dataclass(frozen=True)
class PlannedTrunk:
  """The constant-lr trunk of one (shape, seed): the WSD run of ``steps``
  (its largest budget), trained only to its last branch point."""
  trunk_id: str
  N: int
  shape: Dict[str, int]
  steps: int                     # the largest branch's S (train.steps)
  branch_steps: Tuple[int, ...]  # sorted branch points P (kept checkpoints)
  batch_size: int
  seq_len: int
  lr: float
  warmup_steps: int
  flops_per_step: float          # F B T under flop_convention
  flop_convention: str
  param_convention: str
  steps_per_call: int
  seed: int = 0
  max_epochs: float = 0.0
  lr_multiplier: float = 1.0     # experiments.lr_grid
  grad_accum: int = 0            # as PlannedRun (experiments.memory_plan)
  remat: Optional[bool] = None
  b2: Optional[float] = None     # experiments.b2_grid (None: base config's)

  @property
  def flops(self) -> float:
    """Compute the trunk spends: F B T P_max."""
    return self.flops_per_step * max(self.branch_steps)

  @property
  def D(self) -> int:
    """Tokens the trunk trains: P_max B T."""
    return max(self.branch_steps) * self.batch_size * self.seq_len

  def lm_config(self, base):
    """A copy of the sweep's ``c.lm`` for this trunk."""
    c = ConfigDict(base.to_dict())
    for k, v in self.shape.items():
      c.model[k] = int(v)
    c.model.max_seq_len = c.data.seq_len = self.seq_len
    t = c.train
    t.batch_size, t.steps, t.lr = self.batch_size, self.steps, self.lr
    t.warmup_steps, t.flop_convention = self.warmup_steps, self.flop_convention
    t.steps_per_call, t.seed = self.steps_per_call, self.seed
    t.max_epochs, t.schedule = float(self.max_epochs), "wsd"
    t.keep_steps = tuple(int(p) for p in self.branch_steps)
    if self.grad_accum:
      t.grad_accum = int(self.grad_accum)
    if self.remat is not None:
      c.model.remat = bool(self.remat)
    if self.b2 is not None:
      c.train.b2 = float(self.b2)
    return c

  def to_dict(self) -> Dict[str, Any]:
    d = dataclasses.asdict(self)
    d["shape"], d["branch_steps"] = dict(self.shape), list(self.branch_steps)
    d["flops"] = self.flops
    return d


def grid_ratio(s) -> float:
  """r = size_range^(1/(n_sizes-1)): the spacing of the size grid."""
  return float(s.size_range) ** (1.0 / (int(s.n_sizes) - 1))


def grid_indices(centers: Dict[float, float], s) -> Dict[float, List[int]]:
  """Budget -> the n_sizes consecutive grid indices centred nearest its
  centre; index 0 is the smallest size of the smallest budget."""
  r, n = grid_ratio(s), int(s.n_sizes)
  N0 = min(centers.values()) * r ** (-(n - 1) / 2)
  out = {}
  for C, c in centers.items():
    lo = int(round(math.log(c / N0) / math.log(r) - (n - 1) / 2))
    out[C] = list(range(lo, lo + n))
  return out


@dataclasses.dataclass
class _Shape:
  """One shape of the grid and the budgets it serves."""
  model: Any
  N: int
  budgets: List[float]
  N_target: float


def grid_shapes(centers: Dict[float, float], s, vocab: int, kwargs,
                skipped: list) -> List[_Shape]:
  """The distinct shapes of the shared grid (smallest first)."""
  r = grid_ratio(s)
  N0 = min(centers.values()) * r ** (-(int(s.n_sizes) - 1) / 2)
  by_key: Dict[Tuple[int, ...], _Shape] = {}
  for C, idx in sorted(grid_indices(centers, s).items()):
    for j in idx:
      N_t = N0 * r ** j
      try:
        m = shape_for_target(N_t, s, vocab, kwargs)
      except ConfigError as e:
        skipped.append(SkippedCandidate(C, float(N_t), f"no shape: {e}"))
        continue
      key = tuple(int(getattr(m, k)) for k in SHAPE_KEYS)
      entry = by_key.setdefault(key, _Shape(
          m, params_lib.n_params(m, s.param_convention), [], N_t))
      if C not in entry.budgets:
        entry.budgets.append(C)
  return sorted(by_key.values(), key=lambda e: e.N)


def _steps(C: float, fpt: float, B: int, s, N: int) -> Tuple[int, Optional[str]]:
  """(S, None) or (S, why the candidate is skipped)."""
  T = int(s.seq_len)
  exact = C / (fpt * B * T)   # C = F x D (Kaplan et al. 2020, Sec. 2.1)
  S = max(1, int(round(exact)))
  err = fpt * B * T * S / C - 1.0
  return S, skip_reason(exact, S, B, err, S * B * T / N, s)


def _trunk_id(N: int, shape: Dict[str, int], seed: int, base_seed: int,
              lr_multiplier: float = 1.0, b2_suffix: str = "") -> str:
  tail = f"_s{seed}" if seed != base_seed else ""
  return (f"trunk_N{N:.3g}_d{shape['d_model']}_L{shape['n_layers']}"
          f"{lr_grid.suffix(lr_multiplier)}{b2_suffix}{tail}")


def _shape_runs(sh: _Shape, s, spc: int, seed: int, train) -> Tuple[list, list]:
  """(PlannedRuns, SkippedCandidates) of one grid shape, one per budget."""
  m, T, conv = sh.model, int(s.seq_len), s.flop_convention
  wsd = s.scheme == "wsd_trunk"
  f = float(train.get("cooldown_fraction", 0.2)) if wsd else 0.0
  fpt = flops_lib.flops_per_token(m, T, conv)
  B = choose_batch(min(sh.budgets), fpt, m.d_model, s, m)
  steps, skipped = {}, []
  for C in sorted(sh.budgets):
    S, why = _steps(C, fpt, B, s, sh.N)
    if why:
      skipped.append(SkippedCandidate(C, float(sh.N_target), why))
    else:
      steps[C] = S
  if not steps:
    return [], skipped
  S_min = min(steps.values())
  W = max(int(s.min_warmup_steps), int(round(s.warmup_fraction * S_min)))
  # Warmup ends before every run's first decaying step (the trunk's warmup
  # is every branch's).
  W = min(W, schedules.decay_start(S_min, f) if wsd else S_min - 1)
  shape = {k: int(getattr(m, k)) for k in SHAPE_KEYS}
  lr = marin_lr(B, m.d_model, s, m, max(steps.values()) * B * T)  # per trunk
  runs = []
  for C, S in steps.items():
    D = S * B * T
    flops = flops_lib.training_flops(m, T, D, conv)
    runs.append(PlannedRun(
        run_id=format_run_id(C, sh.N, shape), budget=float(C), N=int(sh.N),
        shape=shape, D=int(D), steps=S, batch_size=B, seq_len=T,
        lr=lr, warmup_steps=W, flops=float(flops),
        flops_error=float(flops / C - 1.0), flop_convention=conv,
        param_convention=s.param_convention, steps_per_call=spc, seed=seed,
        max_epochs=float(s.max_epochs), schedule="wsd" if wsd else "",
        branch_step=schedules.decay_start(S, f) if wsd else None))
  return runs, skipped


def attach_trunks(runs: list, base_seed: int,
                  base_b2: Optional[float] = None) -> Tuple[list, list]:
  """(runs with trunk_id set, their PlannedTrunks): one trunk per (shape,
  seed, lr multiplier, b2), the WSD run of its largest budget, kept at every
  branch point."""
  groups: Dict[Tuple, list] = {}
  for r in runs:
    groups.setdefault((tuple(r.shape[k] for k in SHAPE_KEYS), r.seed,
                       r.lr_multiplier, r.b2), []).append(r)
  trunks, out = [], []
  for (_, seed, m, b2), members in sorted(
      groups.items(), key=lambda kv: (kv[1][0].N, kv[0][1], kv[0][2],
                                      kv[0][3] or 0.0)):
    top = max(members, key=lambda r: r.steps)
    b2_sfx = b2_grid.suffix(b2, b2 if base_b2 is None else base_b2)
    tid = _trunk_id(top.N, top.shape, seed, base_seed, m, b2_sfx)
    trunks.append(PlannedTrunk(
        trunk_id=tid, N=top.N, shape=dict(top.shape), steps=top.steps,
        branch_steps=tuple(sorted({r.branch_step for r in members})),
        batch_size=top.batch_size, seq_len=top.seq_len, lr=top.lr,
        warmup_steps=top.warmup_steps,
        flops_per_step=top.flops / top.steps,
        flop_convention=top.flop_convention,
        param_convention=top.param_convention,
        steps_per_call=top.steps_per_call, seed=seed,
        max_epochs=top.max_epochs, lr_multiplier=m, b2=b2))
    out += [dataclasses.replace(r, trunk_id=tid) for r in members]
  order = {r.run_id: i for i, r in enumerate(runs)}
  return sorted(out, key=lambda r: order[r.run_id]), trunks


def plan_shared(s, centers: Dict[float, float], vocab: int, kwargs,
                spc: int, seed: int, train) -> Tuple[list, list]:
  """(runs, skipped) of the shared grid, seed repeats included: every
  (shape, budget) of ``grid_shapes`` that meets its budget."""
  skipped: list = []
  runs = []
  for sh in grid_shapes(centers, s, vocab, kwargs, skipped):
    more, why = _shape_runs(sh, s, spc, seed, train)
    runs += more
    skipped += why
  out = []
  for C in sorted(centers):
    mine = sorted((r for r in runs if r.budget == C), key=lambda r: r.N)
    out += mine + seed_repeats(mine, centers[C], int(s.seed_repeats))
  return out, skipped
