"""Plan table and wall-time estimates for IsoFLOP plans."""
from __future__ import annotations

import math
from typing import Callable, Optional

from experiments import branches as branches_lib
from experiments.sweep_config import _positive

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


def estimate_seconds(run, flops_per_s: float,
                     overhead_s: float = 0.0) -> float:
  """Wall time = counted FLOPs / effective FLOP/s + a fixed per-run overhead.

  ``flops_per_s`` is the achieved rate in the run's FLOP convention, e.g.
  peak (lm.hardware.device_peak_flops) x MFU, or measured tokens/s x FLOPs
  per token (what ``format_plan`` does).
  """
  _positive("flops_per_s", flops_per_s)
  return run.flops / flops_per_s + overhead_s


def _seconds(run, tokens_per_s, flops_per_s: float) -> float:
  """Estimated wall time of what ``run`` trains itself: all of it, or for a
  branch its cooldown (``planned_spend``); a PlannedTrunk counts as a run of
  its ``D`` tokens (experiments.trunks)."""
  share = getattr(run, "planned_spend", run.flops) / run.flops
  if tokens_per_s:
    rate = tokens_per_s(run) * run.flops / run.D
    return share * estimate_seconds(run, rate)
  if flops_per_s:
    return share * estimate_seconds(run, flops_per_s)
  rate = cpu_tokens_per_s(run.N) * run.flops / run.D
  return share * estimate_seconds(run, rate) + CPU_RUN_OVERHEAD_S


def _hms(sec: float) -> str:
  sec = int(round(sec))
  return f"{sec // 3600}:{sec // 60 % 60:02d}:{sec % 60:02d}"


def format_plan(plan, *, tokens_per_s: Optional[Callable] = None) -> str:
  """The plan as a text table with estimated wall times.

  ``tokens_per_s(run)`` is the training throughput; default: the config's
  ``sweep.est_flops_per_s`` if set, else the 2-core CPU model
  ``cpu_tokens_per_s`` + ``CPU_RUN_OVERHEAD_S`` per run.
  """
  head = (f"{'budget':>8} {'N':>11} {'d':>5} {'L':>3} {'H':>3} {'d_ff':>5} "
          f"{'D':>13} {'D/N':>7} {'epochs':>6} {'steps':>7} {'batch':>5} "
          f"{'lr':>8} {'FLOPs err':>9} {'est. time':>9}")
  lines = [head, "-" * len(head)]
  total = 0.0
  for r in plan.runs:
    sec = _seconds(r, tokens_per_s, plan.est_flops_per_s)
    total += sec
    sh = r.shape
    ep = plan.epochs(r)
    lines.append(
        f"{r.budget:8.3g} {r.N:11,d} {sh['d_model']:5d} {sh['n_layers']:3d} "
        f"{sh['n_heads']:3d} {sh['d_ff']:5d} {r.D:13,d} {r.D / r.N:7.1f} "
        f"{'?' if ep is None else format(ep, '.3f'):>6} "
        f"{r.steps:7,d} {r.batch_size:5d} {r.lr:8.2e} "
        f"{100 * r.flops_error:+8.3f}% {_hms(sec):>9}")
  trunk_lines = []
  for t in getattr(plan, "trunks", ()):
    sec = _seconds(t, tokens_per_s, plan.est_flops_per_s)
    total += sec
    trunk_lines.append(
        f"trunk {t.trunk_id}: batch {t.batch_size}, lr {t.lr:.2e}, warmup "
        f"{t.warmup_steps}, constant lr to step {max(t.branch_steps):,} "
        f"(branch points {', '.join(f'{p:,}' for p in t.branch_steps)}), "
        f"{t.flops:.3g} FLOPs, est. {_hms(sec)}")
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
  if trunk_lines:
    lines.append(
        f"scheme {plan.scheme}: {len(trunk_lines)} trunks + {len(plan.runs)} "
        f"cooldown branches spend {plan.spent_flops():.3g} FLOPs = "
        f"{plan.spent_flops() / plan.independent_flops():.0%} of the "
        f"{plan.independent_flops():.3g} independent runs would "
        "(time column: each branch's cooldown)")
    if getattr(plan, "predicted", ()):
      lines.append(branches_lib.points_line(plan))
      lines += [f"predicted (not trained) C={r.budget:.3g} {r.run_id} "
                f"(trunk {r.trunk_id})" for r in plan.predicted]
    lines += trunk_lines
  if plan.unique_train_tokens:
    lines.append(f"epochs = D / {plan.unique_train_tokens:,} unique training "
                 f"tokens (limit sweep.max_epochs={plan.max_epochs:g})")
  else:
    lines.append("epochs: unique training tokens not counted before "
                 "tokenization (tfds / SentencePiece without a token cache); "
                 "each run checks train.max_epochs when it starts")
  for r in plan.runs:
    if r.repeat_of:
      lines.append(f"seed repeat {r.run_id}: {r.repeat_of} with train.seed="
                   f"{r.seed}")
  for sk in plan.skipped:
    lines.append(f"skipped C={sk.budget:.3g} N_target={sk.N_target:,.0f}: "
                 f"{sk.reason}")
  return "\n".join(lines)
