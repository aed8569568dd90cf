"""``run``: the whole of ``python -m scaling.allocate`` as one importable call."""
from __future__ import annotations

import math
from typing import Any, Dict, Optional

from lm import params as params_lib
from scaling.allocation import answer as answer_lib
from scaling.allocation import chinchilla
from scaling.allocation import data_constrained
from scaling.allocation import laws as laws_lib
from scaling.allocation import output
from scaling.allocation import shape as shape_lib
from scaling.allocation.errors import AllocationError


def _law_loss(law, U):
  """L(N, D) of the law for the shape table (with U when data-constrained)."""
  if not isinstance(law, laws_lib.Law):
    return lambda N, D: float("nan")
  if U is None and not law.has_dc:
    P = chinchilla.point(law)
    return lambda N, D: float(chinchilla.loss(P, N, D))
  P = chinchilla.point(law.with_dc_defaults())
  return lambda N, D: float(data_constrained._loss(  # pylint: disable=protected-access
      P, N, D, D if U is None else min(U, D)))


def shapes(ans: Dict[str, Any], law, *, sweep_config: str,
           target: Optional[str], n_devices: int, mfu: float,
           workdir: str) -> list:
  """Rows of the concrete models nearest the answer's N (``--shape``)."""
  if ans["question"] == "loss":
    raise AllocationError("--shape needs an allocation (--C or "
                          "--target_loss), not a loss query")
  if not (0 < mfu <= 1):
    raise AllocationError(f"--mfu must be in (0, 1], got {mfu}")
  if n_devices < 1:
    raise AllocationError(f"--n_devices must be >= 1, got {n_devices}")
  a = ans["answer"]
  N = a["N"]["value"]
  C = (a["C_train"]["value"] if ans["question"] == "inference"
       else ans["inputs"]["C"])
  epochs = a["epochs"]["value"] if "epochs" in a else None
  cfg = shape_lib.load_sweep_config(sweep_config)
  law_loss = _law_loss(law, ans["inputs"].get("unique_tokens"))
  rows = []
  planned = shape_lib.plan_runs(N, C, cfg, epochs=epochs)
  nearest = min(planned, key=lambda t: abs(math.log(_n(t[0], cfg) / N)))[0]
  for m, run, reason in planned:
    if run is None:
      rows.append({"shape": {"d_model": m.d_model, "n_layers": m.n_layers},
                   "skipped": reason, "nearest": m is nearest})
      continue
    row = shape_lib.describe(run, cfg, law_loss, target=target,
                             n_devices=n_devices, mfu=mfu)
    row["nearest"] = m is nearest
    if row["nearest"]:
      row["train_command"] = shape_lib.train_command(
          run, cfg, workdir, row.get("mesh_shape"))
      row["isoflop_command"] = shape_lib.isoflop_command(
          N, C, sweep_config, workdir + "_isoflop")
    rows.append(row)
  if cfg.sweep.flop_convention != "6N":
    ans["notes"].append(
        f"the sweep config counts C as {cfg.sweep.flop_convention}: its "
        f"runs spend C={C:.4g} under that convention, the law's C is 6ND, "
        "so their D is somewhat below the law's D*")
  if cfg.sweep.param_convention != ans["provenance"]["N_convention"]:
    ans["notes"].append(
        f"the sweep config counts N as {cfg.sweep.param_convention}, the law "
        f"as {ans['provenance']['N_convention']}")
  return rows


def _n(m, cfg):
  return params_lib.n_params(m, cfg.sweep.param_convention)


def run(*, law: Optional[str] = None, fit: Optional[str] = None,
        family: Optional[str] = None, C=None, unique_tokens=None,
        target_loss=None, inference_tokens=None, N=None, D=None,
        shape: bool = False,
        sweep_config: str = shape_lib.DEFAULT_SWEEP_CONFIG,
        target: Optional[str] = None, n_devices: int = 1, mfu: float = 0.4,
        workdir: str = "runs/allocated", json_path: Optional[str] = None,
        plot_path: Optional[str] = None,
        command_line: Optional[str] = None) -> Dict[str, Any]:
  """Answers one question (``answer.allocate``), optionally with shapes,
  and writes --json / --plot. Returns the answer dict."""
  question = answer_lib.question_of(C, unique_tokens, target_loss,
                                    inference_tokens, N, D)
  the_law = laws_lib.resolve(law, fit, family,
                             need_loss=question != "chinchilla")
  ans = answer_lib.allocate(the_law, C=C, unique_tokens=unique_tokens,
                            target_loss=target_loss,
                            inference_tokens=inference_tokens, N=N, D=D,
                            command_line=command_line)
  if shape:
    ans["shapes"] = shapes(ans, the_law, sweep_config=sweep_config,
                           target=target, n_devices=n_devices, mfu=mfu,
                           workdir=workdir)
    ans["provenance"]["shape"] = {
        "sweep_config": sweep_config, "shape_rule": "lm.params.enumerate_shapes "
        "(Marin depth rule)", "batch_lr_steps": "experiments.shape_search."
        "plan_candidate (choose_batch, marin_lr, aligned_steps)",
        "memory": "analytic (scaling.allocation.shape.memory_bytes)",
        "device_memory_table": "scaling.allocation.shape.DEVICE_MEMORY_GB "
                               "(temporary, until issue 22's targets)"}
  elif target:
    raise AllocationError("--target applies with --shape")
  if plot_path:
    ans["plot"] = output.plot(ans, the_law, plot_path)
  if json_path:
    ans["json"] = output.write_json(ans, json_path)
  return ans
