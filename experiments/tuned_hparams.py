"""Which hyper-parameters a sweep tuned, and the values of those it fixed.

Read from the ledger's lines (the lr multipliers and beta2 values present,
``experiments.lr_grid`` / ``experiments.b2_grid``) and the sweep config in
sweep.json; every lr-tuning report names them (``experiments.lr_tuning``).
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Tuple

from experiments import b2_grid
from experiments.lr_grid import describe
from lm.config.config_dict import ConfigDict


def multipliers_of(records: Sequence[Dict[str, Any]]) -> Tuple[float, ...]:
  """Distinct lr multipliers of the ledger (1 for lines without the field)."""
  return tuple(sorted({float(r.get("lr_multiplier") or 1.0) for r in records
                       if r["status"] == "ok"}))


def b2_values_of(records: Sequence[Dict[str, Any]]) -> Tuple[float, ...]:
  """Distinct AdamW beta2 values of the ledger's ok runs (lines without
  the field: one unnamed value, not counted)."""
  return tuple(sorted({float(r["b2"]) for r in records
                       if r["status"] == "ok" and r.get("b2") is not None}))


def b2_of(r) -> Optional[float]:
  """A ledger line's beta2 (None: a line without the field)."""
  return None if r.get("b2") is None else float(r["b2"])


def hyperparameters(meta: Dict[str, Any], records) -> Dict[str, Any]:
  """{'tuned': {name: grid description}, 'fixed': {name: value}} from the
  sweep config (sweep.json) and the ledger."""
  cfg = meta.get("config") or {}
  s, train = cfg.get("sweep") or {}, (cfg.get("lm") or {}).get("train") or {}
  grid = multipliers_of(records)
  rule = ""
  if s:
    try:
      rule = describe(ConfigDict(dict(s)), with_grid=len(grid) < 2)
    except (KeyError, AttributeError):
      rule = ""
  b2s = b2_values_of(records)
  lrs = sorted({float(r["lr"]) for r in records if r.get("lr")})
  lr_range = (f"{lrs[0]:.3g}..{lrs[-1]:.3g}" if len(lrs) > 1
              else f"{lrs[0]:.3g}" if lrs else "?")
  tuned, fixed = {}, {}
  if len(grid) > 1:
    tuned["lr"] = (f"multipliers {{{', '.join(f'{m:g}' for m in grid)}}} of "
                   f"the rule ({rule or 'sweep.lr_rule'}); lrs {lr_range}")
  else:
    fixed["lr"] = f"{rule or 'sweep.lr_rule'}; lrs {lr_range}"
  bs = sorted({int(r["batch_size"]) * int(r.get("seq_len") or 1)
               for r in records if r.get("batch_size")})
  if bs:
    fixed["batch_tokens"] = ((f"{bs[0]}" if len(bs) == 1 else
                              f"{bs[0]}..{bs[-1]}") + " (sweep.batch_rule="
                             f"{s.get('batch_rule', '?')}; not a grid axis)")
  if len(b2s) > 1:
    tuned["b2"] = (b2_grid.describe(b2s, None) + ", best per (C, N) of the "
                   "lr-tuned losses")
  elif b2s:
    fixed["b2"] = f"{b2s[0]:g}"
  for k in ("b1", "b2", "eps", "weight_decay", "grad_clip", "min_lr_ratio",
            "schedule", "cooldown_fraction", "cooldown_shape"):
    if k in train and k not in tuned and k not in fixed:
      fixed[k] = train[k]
  if s:
    fixed["warmup"] = (f"max({s.get('min_warmup_steps')} steps, "
                       f"{s.get('warmup_fraction')} x steps)")
  return {"tuned": tuned, "fixed": fixed}
