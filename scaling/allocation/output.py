"""The answer on the terminal, as JSON (atomic) and as a plot."""
from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Dict, List

import numpy as np

from scaling.allocation import chinchilla
from scaling.allocation import data_constrained
from scaling.report import fit_schema
from scaling.allocation.errors import AllocationError

_LABELS = {
    "N": "N (parameters)", "D": "D (training tokens)", "L": "L (loss, nats)",
    "epochs": "epochs (D / U)", "tokens_per_param": "D / N", "C": "C (FLOPs)",
    "N_unlimited": "N* with unlimited data", "D_unlimited": "D* with unlimited data",
    "L_unlimited": "L* with unlimited data",
    "loss_given_up": "loss given up (L - L*)",
    "C_train": "training FLOPs 6 N D", "C_inference": "inference FLOPs 2 N D_inf",
    "C_total": "total FLOPs", "N_chinchilla": "Chinchilla N at this loss",
    "D_chinchilla": "Chinchilla D at this loss",
    "C_total_chinchilla": "total FLOPs of the Chinchilla choice",
    "saving": "saving vs the Chinchilla choice",
}
_TITLES = {
    "chinchilla": "compute-optimal allocation (Hoffmann et al. 2022, Eq. 4)",
    "data_constrained": "data-constrained optimum (Muennighoff et al. 2023)",
    "inference": "inference-aware optimum (Sardana et al. 2023)",
    "loss": "loss of the law",
}


def _fmt(x) -> str:
  if x is None:
    return "-"
  x = float(x)
  if not np.isfinite(x):
    return "nan"
  return f"{x:.5g}" if 1e-3 <= abs(x) < 1e5 or x == 0 else f"{x:.4e}"


def text(ans: Dict[str, Any]) -> str:
  """The terminal table."""
  p = ans["provenance"]
  lines = [f"law: {p['label']} [{p['citation']}]", f"  source: {p['source']}",
           f"  N counted as {p['N_convention']}; {p['C_convention']}"]
  inp = {k: v for k, v in ans["inputs"].items() if v is not None}
  lines.append(f"{_TITLES[ans['question']]}: "
               + ", ".join(f"{k}={v:.4g}" for k, v in inp.items()))
  a = ans["answer"]
  if ans["question"] == "loss":
    U = inp.get("unique_tokens")
    args = f"N={inp['N']:.4g}, D={inp['D']:.4g}" + (
        f", U={U:.4g}" if U is not None else "")
    ci = a["L"]["ci"]
    lines.append(f"L({args}) = {a['L']['value']!r}"
                 + (f"  [{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else ""))
  else:
    iv = ans["interval"]
    head = ("interval " + "-".join(f"{q:g}" for q in iv["percentiles"]) + "%"
            if iv.get("procedure") else "interval")
    lines.append(f"  {'quantity':<38} {'value':>12}  {head}")
    for k, v in a.items():
      ci = v["ci"]
      lines.append(f"  {_LABELS.get(k, k):<38} {_fmt(v['value']):>12}  "
                   + (f"[{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else "-"))
  iv = ans["interval"]
  lines.append("intervals: " + (
      f"{iv['procedure']} (n={iv['n_replicates']}, {iv['n_valid']} valid)"
      if iv.get("procedure") else f"none ({iv['reason']})"))
  for n in ans.get("notes", []):
    lines.append(f"note: {n}")
  for row in ans.get("shapes", []):
    lines += shape_lines(row)
  return "\n".join(lines) + "\n"


def shape_lines(row: Dict[str, Any]) -> List[str]:
  if row.get("skipped"):
    sh = row["shape"]
    return [f"model d_model={sh['d_model']} n_layers={sh['n_layers']}: "
            f"skipped by the planner: {row['skipped']}"]
  sh = row["shape"]
  out = [f"model{' (nearest N*)' if row.get('nearest') else ''}: N={row['N']:,} "
         f"({row['param_convention']}), d_model={sh['d_model']} "
         f"n_layers={sh['n_layers']} n_heads={sh['n_heads']} d_ff={sh['d_ff']}; "
         f"batch {row['batch_size']} x seq {row['seq_len']}, lr {row['lr']:.4g}, "
         f"warmup {row['warmup_steps']}, {row['steps']:,} steps, D={row['D']:.4g} "
         f"(D/N={row['tokens_per_param']:.3g}), C={row['flops']:.4g} "
         f"[{row['flop_convention']}], predicted L={row['L_predicted']:.4f}"]
  if "time_s" in row:
    mem = row["memory_per_device"]
    cap = row["device_memory_bytes"]
    fsdp = row["memory_per_device_fsdp"]["total"]
    fits = ("" if cap is None else
            f" of {cap / 1e9:.4g} GB: {'fits' if row['fits'] else 'does NOT fit'}")
    if cap is not None and not row["fits"] and row["n_devices"] > 1:
      fits += (f"; states sharded over {row['n_devices']} (FSDP, mesh "
               f"(1,{row['n_devices']},1)): ~{fsdp / 1e9:.3g} GB, "
               + ("fits" if row["fits_fsdp"] else
                  "does NOT fit either (needs rematerialisation, a smaller "
                  "per-device batch or more devices)"))
    out.append(
        f"  on {row['n_devices']} x {row['target']} at MFU {row['mfu']:g}: "
        f"{_duration(row['time_s'])} ({row['mfu_flops']:.4g} MFU FLOPs; peak: "
        f"{row['peak_source']}); memory/device ~{mem['total'] / 1e9:.3g} GB"
        f"{fits} (states {mem['states'] / 1e9:.3g}, activations "
        f"{mem['activations'] / 1e9:.3g}, logits {mem['logits'] / 1e9:.3g}; "
        "analytic estimate, data parallel, no rematerialisation)")
  for key in ("train_command", "isoflop_command"):
    if key in row:
      out.append(f"  run: {row[key]}")
  return out


def _duration(t: float) -> str:
  for unit, sec in (("days", 86400.0), ("h", 3600.0), ("min", 60.0)):
    if t >= sec:
      return f"{t / sec:.3g} {unit}"
  return f"{t:.3g} s"


def write_json(obj: Dict[str, Any], path: str) -> str:
  """Atomic write (temp file, fsync, rename); never through a symlink."""
  path = os.path.abspath(os.path.expanduser(path))
  if os.path.islink(path):
    raise AllocationError(f"--json={path} is a symbolic link; refusing to "
                          "write through it: give a regular file path")
  if os.path.isdir(path):
    raise AllocationError(f"--json={path} is a directory; give a file path")
  d = os.path.dirname(path)
  os.makedirs(d, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=d, prefix="." + os.path.basename(path),
                             suffix=".tmp")
  try:
    with os.fdopen(fd, "w") as f:
      json.dump(fit_schema.jsonable(obj), f, indent=2, allow_nan=False)
      f.write("\n")
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.unlink(tmp)
    raise
  dfd = os.open(d, os.O_RDONLY)
  try:
    os.fsync(dfd)
  finally:
    os.close(dfd)
  return path


def plot(ans: Dict[str, Any], law, path: str) -> str:
  """Loss vs N at the answer's training compute C, optima marked
  (matplotlib imported here, only when a plot is asked for)."""
  try:
    import matplotlib  # heavy optional dependency (scalinglm[plots]): lazily  # pylint: disable=g-import-not-at-top
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise AllocationError(f"--plot needs matplotlib ({e}); pip install "
                          "'scalinglm[plots]'") from None
  a, q = ans["answer"], ans["question"]
  if q == "loss" or "L" not in a:
    raise AllocationError("--plot applies to the --C, --unique_tokens and "
                          "inference questions of a law with L(N, D)")
  C = a["C_train"]["value"] if q == "inference" else ans["inputs"]["C"]
  P = chinchilla.point(law)
  N_star = a["N"]["value"]
  N = np.exp(np.linspace(np.log(N_star) - 3, np.log(N_star) + 3, 400))
  D = C / (6 * N)
  fig, ax = plt.subplots(figsize=(6.4, 4.4))
  if law.has_dc:   # the law itself with fresh data (U = D)
    L_free = data_constrained._loss(chinchilla.point(law), N, D, D)  # pylint: disable=protected-access
  else:
    L_free = chinchilla.loss(P, N, D)
  ax.plot(N, L_free, label="unlimited data, L(N, C/6N)")
  chin = chinchilla.optimum(P, C)
  ax.plot([chin["N"]], [chin["L"]], "o", label=f"Chinchilla optimum N={float(chin['N']):.3g}")
  U = ans["inputs"].get("unique_tokens")
  if q == "data_constrained":
    Pd = chinchilla.point(law.with_dc_defaults())
    ax.plot(N, data_constrained._loss(Pd, N, D, np.minimum(U, D)),  # pylint: disable=protected-access
            label=f"U={U:.3g} unique tokens")
    ax.plot([N_star], [a["L"]["value"]], "s",
            label=f"data-constrained optimum N={N_star:.3g}, "
                  f"{a['epochs']['value']:.3g} epochs")
  if q == "inference":
    ax.plot([N_star], [a["L"]["value"]], "s",
            label=f"inference-aware N={N_star:.3g} (trained at its own C)")
  ax.set_xscale("log")
  ax.set_xlabel(f"N (parameters, {ans['provenance']['N_convention']})")
  ax.set_ylabel("predicted loss (nats)")
  ax.set_title(f"{ans['provenance']['label']}\nC = {C:.3g} FLOPs (6ND)",
               fontsize=9)
  ax.legend(fontsize=7)
  fig.tight_layout()
  path = os.path.abspath(os.path.expanduser(path))
  if os.path.islink(path):
    raise AllocationError(f"--plot={path} is a symbolic link; refusing to "
                          "write through it")
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = path + ".tmp.png"
  fig.savefig(tmp, dpi=120)
  plt.close(fig)
  with open(tmp, "rb") as f:
    os.fsync(f.fileno())
  os.replace(tmp, path)
  return path
