"""Text, Markdown and LaTeX tables of a fit.json dict (scaling.report.fit_schema).

Every method gets its own block headed by its label and the procedure of its
intervals, so no header claims one procedure for all of them. With more than
one Approach-2 estimator, a side-by-side table of a and b comes first.
"""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

from scaling.numerics.intervals import format_interval
from scaling.report import fit_schema

_OPT = (("N_opt", "N*"), ("D_opt", "D*"), ("tokens_per_param", "D*/N*"),
        ("loss", "L*"))


def _fmt(v, ci=None, sig=4) -> str:
  return format_interval(v, ci, sig, ci_sig=sig - 1)


def interval_text(entry: Dict[str, Any]) -> str:
  return entry.get("interval_procedure") or "no interval"


def block_rows(entry: Dict[str, Any]) -> List[Tuple[str, str]]:
  """(quantity, value [interval]) rows of one fit.json entry."""
  ci = entry.get("ci", {})
  rows = [(n, _fmt(entry.get(n), ci.get(n))) for n in entry.get("quantities", ())]
  for C, r in (entry.get("compute_optimal") or {}).items():
    for k, lab in _OPT:
      if k in r:
        rows.append((f"{lab} @ C={C}", _fmt(r[k], r.get(f"{k}_ci"), 3)))
  return rows


def estimator_rows(result: Dict[str, Any]) -> List[List[str]]:
  """Side-by-side Approach-2 estimators (empty unless more than one)."""
  est = [(k, e) for k, e in fit_schema.entries(result)
         if e.get("family") == "approach2"]
  if len(est) < 2:
    return []
  rows = [["estimator", "a", "b", "budgets used", "interval"]]
  for _, e in est:
    ci = e.get("ci", {})
    name = e.get("estimator", e["method"]) + (" (default)" if e.get("default")
                                               else "")
    rows.append([name, _fmt(e.get("a"), ci.get("a")),
                 _fmt(e.get("b"), ci.get("b")),
                 f"{len(e.get('minima', []))} ({len(e.get('dropped', {}))} "
                 "dropped)", interval_text(e)])
  return rows


def _aligned(rows: List[List[str]]) -> List[str]:
  w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
  lines = ["  ".join(c.ljust(w[i]) for i, c in enumerate(r)).rstrip()
           for r in rows]
  lines.insert(1, "  ".join("-" * x for x in w))
  return lines


def _conventions_line(result) -> str:
  c = fit_schema.conventions(result)
  out = (f"C counted as {c.get('flop_convention')}, N as "
         f"{c.get('param_convention') or 'given'}")
  F = (c.get("flops_per_token") or {}).get("label")
  return out + (f"; F(N*) D* = C with {F}" if F else "")


def text_table(result: Dict[str, Any]) -> str:
  out = []
  side = estimator_rows(result)
  if side:
    out += ["Approach 2, every estimator:"] + _aligned(side) + [""]
  for _, e in fit_schema.entries(result):
    out.append(f"{e['label']}  [intervals: {interval_text(e)}]")
    out += _aligned([["quantity", "value [interval]"]] +
                    [list(r) for r in block_rows(e)])
    out.append("")
  out.append(_conventions_line(result))
  return "\n".join(out) + "\n"


def markdown_table(result: Dict[str, Any]) -> str:
  src = result.get("provenance", {}).get("input", {}).get("source", "?")
  out = [f"# Compute-optimal scaling fit ({src})", "",
         _conventions_line(result), ""]
  side = estimator_rows(result)
  if side:
    out += ["## Approach 2, every estimator", "",
            "| " + " | ".join(side[0]) + " |", "|" + "---|" * len(side[0])]
    out += ["| " + " | ".join(r) + " |" for r in side[1:]] + [""]
  for _, e in fit_schema.entries(result):
    out += [f"## {e['label']}", "", f"Intervals: {interval_text(e)}.", "",
            "| quantity | value [interval] |", "|---|---|"]
    out += [f"| {q} | {v} |" for q, v in block_rows(e)]
    if e.get("dropped"):
      out += ["", "Dropped budgets:", ""] + [
          f"- C={k}: {v}" for k, v in e["dropped"].items()]
    out.append("")
  other = [m for m in result.get("warnings", [])
           if not m.startswith("IsoFLOP: dropping budget")]
  if other:
    out += ["Warnings:", ""] + [f"- {m}" for m in other]
  return "\n".join(out) + "\n"


def _tex(s: str) -> str:
  s = s.replace("alpha", r"$\alpha$").replace("beta", r"$\beta$")
  s = s.replace("D*/N*", r"$D^*/N^*$").replace("N*", r"$N^*$")
  s = s.replace("D*", r"$D^*$").replace("L*", r"$L^*$")
  return s.replace("_", r"\_")


def _tex_text(s: str) -> str:
  return (s.replace("\\", r"\textbackslash{}").replace("%", r"\%")
          .replace("_", r"\_").replace("&", r"\&").replace("σ", r"$\sigma$")
          .replace("²", r"$^2$"))


def latex_table(result: Dict[str, Any]) -> str:
  out = [r"\begin{table}[t]", r"\centering", r"\begin{tabular}{lr}",
         r"\toprule", r"Quantity & Value [interval] \\"]
  for _, e in fit_schema.entries(result):
    out += [r"\midrule",
            r"\multicolumn{2}{l}{\textbf{" + _tex_text(e["label"]) + r"}} \\",
            r"\multicolumn{2}{l}{\footnotesize intervals: "
            + _tex_text(interval_text(e)) + r"} \\"]
    out += [f"{_tex(q)} & {v} \\\\" for q, v in block_rows(e)]
  out += [r"\bottomrule", r"\end{tabular}",
          r"\caption{Compute-optimal scaling fits; each block names the "
          r"procedure of its intervals. " + _tex_text(_conventions_line(result))
          + ".}", r"\end{table}"]
  return "\n".join(out) + "\n"
