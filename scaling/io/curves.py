"""Per-run training curves (cumulative FLOPs vs loss) for Approach 1.

Two sources:
  * Li et al. 2025 "(Mis)Fitting Scaling Laws" checkpoints
    (``scaling/datasets/li2025_scaling_results.csv``, built-in name
    ``misfitting_curves``). A curve is one (model, peak_lr, sweep, total_steps)
    run. C is the file's ``C_6ND`` column, i.e. 6·N·D with N counting embedding
    parameters (the file's ``C`` column differs from it by < 2e-10 relative).
    Loss is the ``loss`` column (C4 eval loss, identical to ``C4 Eval Loss``).
    Cleaning, each recorded in ``provenance['exclusions']``: (i) a few runs are
    stored more than once under different ``total_epochs`` (number of
    checkpoints); the copy with the most distinct steps is kept (ties: larger
    ``total_epochs``), since the short copies repeat or mislabel checkpoints of
    the long one (e.g. a step-128 loss equal to the long copy's step-640
    loss); (ii) checkpoints past ``total_steps`` are
    dropped; (iii) duplicate steps keep the last row; (iv) curves with fewer
    than 2 checkpoints are dropped.
  * A ``sweep.scheme='wsd_trunk'`` ledger (``branch_curves``): one curve per
    trunk, its points the end-of-cooldown eval losses of its branches.
  * An experiments working directory ``<workdir>/runs/<run_id>/`` holding
    ``metrics.jsonl`` (one JSON object per report step with ``step``,
    ``tokens``, ``flops`` (cumulative), ``loss`` (train) and sometimes
    ``eval_loss``; other keys are ignored) and ``run.json`` (``params`` dict with
    ``total`` / ``non_embedding``, and ``flop_convention``).
"""
from __future__ import annotations

import collections
import csv
import dataclasses
import glob
import hashlib
import json
import os
import warnings
from typing import Any, Dict, Iterator, List, Optional, Sequence

import numpy as np

from scaling.io.loaders import DATASETS_DIR, Runs, ScalingDataError, complete_6nd

LI2025_FILE = "li2025_scaling_results.csv"
BUILTIN_CURVES = {
    "misfitting_curves": (
        "Li et al. 2025 intermediate checkpoints (4,852 rows), one curve per "
        "(model, peak_lr, sweep, total_steps), C = 6ND with embeddings."),
}


@dataclasses.dataclass(frozen=True)
class Curve:
  """One training run: loss against cumulative compute.

  Attributes:
    run_id: identifier.
    N: parameter count used for the scaling analysis.
    C: cumulative training FLOPs at each record (increasing).
    D: cumulative training tokens at each record.
    loss: loss at each record (nats/token).
    meta: free-form metadata (learning rate, schedule length, ...).
  """
  run_id: str
  N: float
  C: np.ndarray
  D: np.ndarray
  loss: np.ndarray
  meta: Dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Curves:
  """A set of training curves with a provenance record like ``Runs``."""
  curves: tuple
  provenance: Dict[str, Any]

  def __len__(self) -> int:
    return len(self.curves)

  def __iter__(self) -> Iterator[Curve]:
    return iter(self.curves)

  def __getitem__(self, i) -> Curve:
    return self.curves[i]


def _make_curve(run_id: str, N: float, C, D, loss, meta=None) -> Curve:
  C, D, loss = (np.asarray(v, dtype=np.float64) for v in (C, D, loss))
  order = np.argsort(C, kind="stable")
  return Curve(run_id=str(run_id), N=float(N), C=C[order], D=D[order],
               loss=loss[order], meta=dict(meta or {}))


def _check(curves: List[Curve], source: str) -> None:
  if not curves:
    raise ScalingDataError(f"{source}: no training curve with >= 2 records.")
  for c in curves:
    for name, v in (("N", np.asarray([c.N])), ("C", c.C), ("D", c.D),
                    ("loss", c.loss)):
      if not np.all(np.isfinite(v) & (v > 0)):
        raise ScalingDataError(
            f"{source}: run {c.run_id!r} has a non-positive or non-finite "
            f"{name}; fix or remove it.")


def load_li2025_curves(path: Optional[str] = None) -> Curves:
  """Loads Li et al. 2025 checkpoints as curves (see module docstring)."""
  path = path or os.path.join(DATASETS_DIR, LI2025_FILE)
  try:
    with open(path, "rb") as f:
      raw = f.read()
  except OSError as e:
    raise ScalingDataError(f"cannot read {path}: {e.strerror}") from None
  recs = list(csv.DictReader(raw.decode("utf-8").splitlines()))
  need = {"loss", "N", "D", "C_6ND", "model", "peak_lr", "sweep",
          "total_steps", "current_steps", "total_epochs"}
  missing = need - set(recs[0] if recs else ())
  if missing:
    raise ScalingDataError(f"{path}: missing column(s) {sorted(missing)}.")
  groups: Dict[tuple, Dict[str, list]] = collections.defaultdict(
      lambda: collections.defaultdict(list))
  for r in recs:
    key = (r["model"], r["peak_lr"], r["sweep"], r["total_steps"])
    groups[key][r["total_epochs"]].append(r)
  n_copies = n_past = n_dup = n_short = 0
  curves = []
  for key, copies in groups.items():
    best = max(copies.items(), key=lambda kv: (
        len({r["current_steps"] for r in kv[1]}), float(kv[0])))[1]
    n_copies += sum(len(v) for v in copies.values()) - len(best)
    by_step = {}
    for r in best:
      step = int(r["current_steps"])
      if step > int(r["total_steps"]):
        n_past += 1
        continue
      n_dup += step in by_step
      by_step[step] = r
    rows = [by_step[s] for s in sorted(by_step)]
    if len(rows) < 2:
      n_short += 1
      continue
    model, lr, sweep, total = key
    curves.append(_make_curve(
        f"{model}:lr={lr}:steps={total}:{sweep}", float(rows[0]["N"]),
        [float(r["C_6ND"]) for r in rows], [float(r["D"]) for r in rows],
        [float(r["loss"]) for r in rows],
        {"model": model, "peak_lr": float(lr), "total_steps": int(total),
         "sweep": sweep}))
  _check(curves, path)
  exclusions = [
      f"{n_copies} checkpoints in shorter duplicate copies of a run "
      "(same model/lr/sweep/total_steps, other total_epochs; the copy with "
      "the most distinct steps is kept)",
      f"{n_past} checkpoints past total_steps",
      f"{n_dup} duplicate-step checkpoints (last kept)",
      f"{n_short} runs with fewer than 2 checkpoints"]
  return Curves(tuple(curves), {
      "source": "misfitting_curves", "file": os.path.basename(path),
      "sha256": hashlib.sha256(raw).hexdigest(), "n_rows_read": len(recs),
      "n_rows": int(sum(c.C.size for c in curves)), "n_curves": len(curves),
      "exclusions": exclusions, "loss": "C4 eval loss ('loss' column)",
      "flop_convention": "6ND (N with embeddings; column C_6ND)"})


def load_workdir_curves(workdir: str, *, loss_key: str = "loss",
                        params_key: str = "total") -> Curves:
  """Loads ``<workdir>/runs/*/metrics.jsonl`` + ``run.json`` as curves.

  Args:
    workdir: experiments working directory.
    loss_key: metrics key used as loss ('loss' = train loss, recorded at
      every report step; 'eval_loss' uses only the steps where it exists).
    params_key: key of ``run.json['params']`` used as N ('total' or
      'non_embedding').
  """
  run_dirs = sorted(glob.glob(os.path.join(workdir, "runs", "*", "metrics.jsonl")))
  if not run_dirs:
    raise ScalingDataError(
        f"{workdir}: no runs/*/metrics.jsonl found; Approach 1 needs training "
        "curves.")
  digest = hashlib.sha256()
  curves, exclusions, conventions, n_rows = [], [], set(), 0
  completions = []
  for metrics_path in run_dirs:
    run_dir = os.path.dirname(metrics_path)
    run_id = os.path.basename(run_dir)
    try:
      with open(os.path.join(run_dir, "run.json")) as f:
        info = json.load(f)
      N = float(info["params"][params_key])
    except (OSError, ValueError, KeyError, TypeError) as e:
      raise ScalingDataError(
          f"{run_dir}/run.json: cannot read params[{params_key!r}] "
          f"({type(e).__name__}: {e}).") from None
    conventions.add(str(info.get("flop_convention", "unknown")))
    C, D, L = [], [], []
    with open(metrics_path, "rb") as f:
      raw = f.read()
    digest.update(raw)
    for i, line in enumerate(raw.decode("utf-8").splitlines()):
      if not line.strip():
        continue
      try:
        rec = json.loads(line)
      except ValueError:
        raise ScalingDataError(
            f"{metrics_path}:{i + 1}: not valid JSON.") from None
      n_rows += 1
      if rec.get(loss_key) is None or rec.get("flops") is None:
        continue
      C.append(float(rec["flops"]))
      D.append(float(rec["tokens"]) if rec.get("tokens") is not None else np.nan)
      L.append(float(rec[loss_key]))
    if len(C) < 2:
      exclusions.append(f"run {run_id}: fewer than 2 records with {loss_key!r}")
      continue
    D, _, filled, _ = complete_6nd(np.full(len(C), N), D, C)
    if filled.any():
      note = (f"run {run_id}: {int(filled.sum())}/{filled.size} records have "
              "no tokens; D = C/(6N) filled for those records only")
      completions.append(note)
    budget = info.get("budget", info.get("flop_budget"))
    curves.append(_make_curve(run_id, N, C, D, L, {
        "flop_convention": info.get("flop_convention"),
        "budget": float(budget) if budget is not None else float("nan")}))
  _check(curves, workdir)
  if completions:
    warnings.warn(f"{workdir}: {len(completions)} run(s) have records without "
                  "tokens; D = C/(6N) filled for those records only (see "
                  "provenance 'completions_6nd').")
  return Curves(tuple(curves), {
      "source": os.path.abspath(workdir), "sha256": digest.hexdigest(),
      "n_rows_read": n_rows, "n_rows": int(sum(c.C.size for c in curves)),
      "n_curves": len(curves), "exclusions": exclusions,
      "loss": loss_key, "N": f"params[{params_key!r}]",
      "flop_convention": ",".join(sorted(conventions)),
      "completions_6nd": completions})


WSD_BRANCHES = "wsd_branches"


def branch_curves(records: Sequence[Dict[str, Any]], source: str) -> Curves:
  """One curve per WSD trunk from its cooldown branches' ledger lines.

  Every point is the eval loss at the *end* of a schedule (the branch's
  cooldown), at that branch's C and D: the multi-horizon curves Hoffmann et
  al. 2022's Approach 1 asks for (Sec. 3.1: each size trained to several
  horizons), which a WSD trunk provides at the price of its cooldowns
  (Hägele et al. 2024, Sec. 4). Seed repeats (``repeat_of``) are left out:
  a minimum over two seeds of one size would bias the envelope low. A trunk
  with fewer than 2 branches has no curve (recorded in ``exclusions``).
  """
  by_trunk: Dict[str, List[Dict[str, Any]]] = collections.defaultdict(list)
  exclusions = []
  for r in records:
    if r.get("status") != "ok" or not r.get("trunk_id"):
      continue
    if r.get("repeat_of"):
      exclusions.append(f"run {r['run_id']}: seed repeat, not in the envelope")
      continue
    by_trunk[r["trunk_id"]].append(r)
  curves = []
  for trunk_id, rs in sorted(by_trunk.items()):
    if len(rs) < 2:
      exclusions.append(f"trunk {trunk_id}: fewer than 2 branches")
      continue
    curves.append(_make_curve(
        trunk_id, rs[0]["N"], [r["C"] for r in rs], [r["D"] for r in rs],
        [r["eval_loss"] for r in rs],
        {"flop_convention": rs[0].get("flop_convention"),
         "budget": float("nan")}))
  _check(curves, source)
  return Curves(tuple(curves), {
      "source": os.path.abspath(source), "kind": WSD_BRANCHES,
      "n_curves": len(curves), "n_rows": int(sum(c.C.size for c in curves)),
      "exclusions": exclusions,
      "loss": "eval_loss at the end of each WSD cooldown branch",
      "flop_convention": ",".join(sorted({str(c.meta["flop_convention"])
                                          for c in curves}))})


def curves_from_arrays(run_id: Sequence[str], N: Sequence[float],
                       C: Sequence[Sequence[float]], loss: Sequence[Sequence[float]],
                       D: Optional[Sequence[Sequence[float]]] = None,
                       source: str = "arrays") -> Curves:
  """Builds Curves from per-run arrays (D defaults to C / 6N)."""
  out = []
  for i, rid in enumerate(run_id):
    Ci = np.asarray(C[i], np.float64)
    Di, _, _, _ = complete_6nd(np.full(Ci.shape, float(N[i])),
                               None if D is None else D[i], Ci)
    if Ci.size >= 2:
      out.append(_make_curve(rid, N[i], Ci, Di, loss[i]))
  _check(out, source)
  return Curves(tuple(out), {"source": source, "n_curves": len(out),
                             "n_rows": int(sum(c.C.size for c in out)),
                             "exclusions": [], "flop_convention": "as given"})


def is_curve_source(source: str) -> bool:
  """True if ``source`` names curves (built-in name or a run directory)."""
  return source in BUILTIN_CURVES or (
      os.path.isdir(source) and os.path.isdir(os.path.join(source, "runs")))


def load_curves(source: str, **kwargs) -> Curves:
  """Curves from a built-in name (``misfitting_curves``), a li2025-format
  CSV, or an experiments working directory."""
  if source in BUILTIN_CURVES:
    return load_li2025_curves()
  if os.path.isdir(source):
    return load_workdir_curves(source, **kwargs)
  if str(source).lower().endswith(".csv"):
    return load_li2025_curves(source)
  raise ScalingDataError(
      f"{source!r} has no training curves: Approach 1 needs a workdir with "
      f"runs/*/metrics.jsonl or one of {sorted(BUILTIN_CURVES)}.")


def runs_from_curves(curves: Curves) -> Runs:
  """Final record of every curve as a ``Runs`` table (for Approaches 2 and 3).

  The loss is the curve's last recorded value (not smoothed); the budget is
  ``meta['budget']`` when the run recorded one, else NaN.
  """
  budget = np.array([float(c.meta.get("budget", np.nan)) for c in curves])
  prov = dict(curves.provenance)
  prov["exclusions"] = list(prov.get("exclusions", [])) + [
      "final runs derived from curves: last record of each curve"]
  prov["n_rows"] = len(curves)
  return Runs(N=np.array([c.N for c in curves]),
              D=np.array([c.D[-1] for c in curves]),
              C=np.array([c.C[-1] for c in curves]),
              loss=np.array([c.loss[-1] for c in curves]), budget=budget,
              run_id=np.array([c.run_id for c in curves], dtype=object),
              provenance=prov)
