"""What a sweep spent on training, against what independent runs would cost.

Spent = the FLOPs each result trained itself (ledger ``compute_spent``: all
of C for an independent run, the cooldown for a wsd_trunk branch) + the
FLOPs its trunks trained (their run.json ``compute_spent``, from
``DIR/trunks/*/``). Independent = the sum of the results' C, what the same
(shape, budget) points cost trained from scratch. Both under the ledger's
``flop_convention``; evaluation FLOPs are in neither (``eval_flops``).
Reading only: nothing is written.
"""
from __future__ import annotations

import glob
import json
import os
import warnings
from typing import Any, Dict, List

from experiments.scheduler import TRUNKS_DIR
from lm import safe_io


def trunk_totals(workdir: str) -> Dict[str, Any]:
  """{'flops', 'wall_time_s', 'unreadable'} summed over the trunks' run.json
  (what the trunks trained and how long, all their segments and attempts).

  A damaged run.json is not skipped silently: it is listed in
  'unreadable' and named in one warning (its compute is missing from the
  totals). A trunk directory that is a link out of the workdir is refused.
  """
  total: Dict[str, Any] = {"flops": 0.0, "wall_time_s": 0.0,
                           "unreadable": []}
  for path in sorted(glob.glob(os.path.join(workdir, TRUNKS_DIR, "*",
                                            "run.json"))):
    name = os.path.basename(os.path.dirname(path))
    path = os.path.join(safe_io.confined(workdir, TRUNKS_DIR, name,
                                         what="trunk directory"), "run.json")
    try:
      meta = safe_io.read_json(path)
      flops = float(meta.get("compute_spent") or 0.0)
      wall = float(meta.get("wall_time_s") or 0.0)
    except (OSError, ValueError, AttributeError, TypeError) as e:
      total["unreadable"].append(path)
      warnings.warn(f"{path} cannot be read ({' '.join(str(e).split())[:160]}"
                    "): that trunk's training compute and wall time are "
                    "missing from the sweep's totals")
      continue
    total["flops"] += flops
    total["wall_time_s"] += wall
  return total


def sweep_compute(workdir: str, records: List[Dict[str, Any]]
                  ) -> Dict[str, Any]:
  """{'spent', 'trunks', 'results', 'independent', 'ratio', 'n_results'}
  over the ledger's results with a measured loss (status ok)."""
  ok = [r for r in records if r.get("status") == "ok"]
  results = sum(float(r.get("compute_spent", r["C"]) or 0.0) for r in ok)
  totals = trunk_totals(workdir)
  trunks = totals["flops"]
  independent = sum(float(r["C"]) for r in ok)
  spent = results + trunks
  pred = predicted_flops(workdir)
  return {"spent": spent, "trunks": trunks, "results": results,
          "n_predicted": len(pred), "predicted_independent": sum(pred),
          "independent": independent, "n_results": len(ok),
          "ratio": spent / independent if independent else float("nan"),
          "unreadable_trunks": totals["unreadable"],
          "scheme": next((r.get("scheme") for r in ok if r.get("scheme")),
                         "independent"),
          "flop_convention": ok[0].get("flop_convention") if ok else None}


def predicted_flops(workdir: str) -> List[float]:
  """C of each point a ``sweep.branches=k`` plan predicts instead of training
  (sweep.json ``predicted``; experiments.branches): no compute spent on them,
  but independent runs would have trained them."""
  path = os.path.join(workdir, "sweep.json")
  try:
    meta = safe_io.read_json(path) if os.path.exists(path) else {}
    return [float(p["flops"]) for p in (meta or {}).get("predicted") or []]
  except (OSError, ValueError, AttributeError, TypeError, KeyError):
    return []


def summary_line(c: Dict[str, Any]) -> str:
  """One line: spent against the independent scheme."""
  if c["trunks"]:
    how = (f"trunks {c['trunks']:.3g} + branches' cooldowns "
           f"{c['results']:.3g}")
  else:
    how = "every run from scratch"
  missing = (f"; {len(c['unreadable_trunks'])} trunk run.json unreadable, "
             "their compute NOT counted" if c.get("unreadable_trunks") else "")
  return (f"compute: {c['spent']:.3g} FLOPs spent ({how}) for "
          f"{c['n_results']} results = {c['ratio']:.0%} of the "
          f"{c['independent']:.3g} FLOPs independent runs would spend "
          f"(scheme {c['scheme']}, C counted as {c['flop_convention']})"
          f"{missing}{_predicted_note(c)}")


def _predicted_note(c: Dict[str, Any]) -> str:
  """sweep.branches=k: the spend against independent runs of every point."""
  if not c.get("n_predicted"):
    return ""
  every = c["independent"] + c["predicted_independent"]
  return (f"; with its {c['n_predicted']} predicted (untrained) points the "
          f"sweep covers {c['n_results'] + c['n_predicted']} points for "
          f"{c['spent'] / every:.0%} of the {every:.3g} FLOPs their "
          "independent runs would spend")
