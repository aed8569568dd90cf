"""Printed summary of a fit.json ``hparams`` entry: the laws, then one line per cell."""
from __future__ import annotations

from typing import Any, Dict, List

_NAMES = {"eta_ND": "lr*(N, D)", "B_D": "B*(D)", "eta_C": "lr*(C)",
          "B_C": "B*(C)"}


def _term(law: Dict[str, Any], x: str, e: str) -> str:
  ci = (law.get("ci") or {}).get(e)
  s = f"{x}^{law[e]:.4g}"
  return s + (f" [{ci[0]:.3g}, {ci[1]:.3g}]" if ci else "")


def summary_lines(entry: Dict[str, Any]) -> List[str]:
  """The laws with their intervals, what was not fitted, one line per cell."""
  out = [f"hparams: {entry['n_kept']} of {entry['n_runs']} runs within "
         f"{100 * entry['band']:g}% of their (N, D) cell's best loss, "
         f"{len(entry['cells'])} cells [intervals: "
         f"{entry.get('interval_procedure') or 'none'}]"]
  for name, law in entry["laws"].items():
    xs = law["x"]
    exps = {"eta_ND": ("alpha", "beta"), "B_D": ("gamma",)}.get(name, ("e",))
    terms = " ".join(_term(law, x, e) for x, e in zip(xs, exps))
    unit = " tokens" if law["y"] == "batch_tokens" else ""
    out.append(f"  {_NAMES[name]} = {law['k']:.4g} {terms}{unit}   "
               f"({law['n_points']} runs; {law['citation']})")
  for name, why in (entry.get("not_fitted") or {}).items():
    out.append(f"  {_NAMES[name]} not fitted: {why}")
  out.append("  cell                   lrs  best lr   kept lr range        "
             "fitted lr*  edge")
  eta = entry["laws"].get("eta_ND")
  for c in entry["cells"]:
    fitted = (eta["k"] * c["N"]**eta["alpha"] * c["D"]**eta["beta"]
              if eta else float("nan"))
    lo, hi = c["kept_lr_range"]
    out.append(f"  N={c['N']:<8.3g} D={c['D']:<8.3g} {len(c['lrs']):>3}  "
               f"{c['best_lr']:<8.3g}  [{lo:.3g}, {hi:.3g}]".ljust(62)
               + f" {fitted:<10.3g}  {c['on_edge'] or '-'}")
  return out
