r"""Sharded == single-device on the devices JAX sees (GPUs, TPU chips, CPU).

Trains the small model of tests/helpers/sharded_losses.py for 6 Adam steps
on one device and on every (data, fsdp, tensor) layout below that the visible
devices allow, and compares the losses; on an accelerator it also compares one
device with the CPU (--cpu_rtol). Matmuls run at "highest" precision so that
only the summation order differs (no TF32 / bf16 passes).

  python benchmarks/sharded_check.py --json=out/sharded.json

Exit 0 when every comparison is within --rtol, 1 otherwise. With a single
device there is nothing to shard; the JSON says so.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Dict, List, Tuple

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from lm import safe_io  # noqa: E402 (needs the line above)
from tests.helpers.sharded_losses import losses_for  # noqa: E402 (needs the line above)


def layouts(n: int) -> List[Tuple[int, int, int]]:
  """(data, fsdp, tensor) meshes over n devices: pure data, pure FSDP,
  tensor parallel (<= 4 ways: the model has 4 heads) and a mixed one."""
  if n < 2:
    return []
  out = [(n, 1, 1), (1, n, 1)]
  if n % 2 == 0 and n >= 4:
    out.append((n // 2, 1, 2) if n % 4 else (n // 4, 2, 2))
  if n in (2, 4):
    out.append((1, 1, n))
  return out


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--rtol", type=float, default=1e-4,
                 help="max relative loss difference (f32; sharding bugs move "
                 "losses by > 1e-2)")
  p.add_argument("--cpu_rtol", type=float, default=1e-3,
                 help="accelerator vs CPU (different exp/rsqrt kernels)")
  p.add_argument("--max_layouts", type=int, default=None,
                 help="compare only the first N layouts (smoke tests)")
  p.add_argument("--json", metavar="PATH")
  args = p.parse_args(argv)
  import jax
  import numpy as np
  jax.config.update("jax_default_matmul_precision", "highest")

  devs = jax.devices()
  res: Dict[str, object] = {
      "backend": jax.default_backend(), "n_devices": len(devs),
      "device_kind": devs[0].device_kind, "jax": jax.__version__,
      "rtol": args.rtol, "matmul_precision": "highest"}
  single = losses_for((1, 1, 1), devs[:1])["losses"]
  runs = {"single": single}
  for shape in layouts(len(devs))[:args.max_layouts]:
    runs["x".join(map(str, shape))] = losses_for(shape, devs)["losses"]
  tol = {k: args.rtol for k in runs if k != "single"}
  if jax.default_backend() != "cpu":  # the accelerator against the CPU
    try:
      runs["cpu_single"] = losses_for((1, 1, 1), jax.devices("cpu")[:1])["losses"]
      tol["cpu_single"] = args.cpu_rtol
    except Exception as e:  # pylint: disable=broad-except  # recorded, not fatal
      res["cpu_error"] = f"{type(e).__name__}: {' '.join(str(e).split())[:300]}"
  ref = np.asarray(single)
  diffs = {k: float(np.max(np.abs(np.asarray(runs[k]) - ref) / np.abs(ref)))
           for k in tol}
  res.update(losses=runs, max_rel_diff=diffs, rtol_by_layout=tol,
             learns=bool(single[-1] < single[0]),
             passed=bool(single[-1] < single[0])
             and all(d <= tol[k] for k, d in diffs.items()))
  if len(devs) < 2:
    res["note"] = "one device visible: no sharded layout to compare"
  for k, d in diffs.items():
    print(f"{k:>10}: max |loss - single| / single = {d:.2e} "
          f"({'ok' if d <= tol[k] else 'FAIL'}, rtol {tol[k]:g})")
  print(f"sharded check on {len(devs)} x {devs[0].device_kind}: "
        f"{'passed' if res['passed'] else 'FAILED'}"
        + (f" ({res['note']})" if "note" in res else ""))
  if args.json:
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    safe_io.atomic_write_json(args.json, res, indent=2)
  return 0 if res["passed"] else 1


if __name__ == "__main__":
  sys.exit(main())
