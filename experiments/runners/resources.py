"""``sweep.resources_per_run``: what one run asks of a cluster (Ray resources).

Given in a config file as a dict (``{"GPU": 1}``, ``{"CPU": 2}``,
``{"GPU": 1, "CPU": 4, "accelerator_type:H100": 0.001}``) or on the command
line as a string (``--config.sweep.resources_per_run=GPU=1,CPU=4``).
``"auto"`` (the default) is one GPU per run on a cluster with GPUs, else one
CPU. A resource the spec leaves out is not requested, except CPU, which is 1
unless given (Ray's default for a task; ``CPU=0`` opts out).
"""
from __future__ import annotations

import math
from typing import Any, Dict, Mapping, Optional

AUTO = "auto"
ACCELERATORS = ("GPU", "TPU")  # runs asking for none of these train on CPU


class ResourceSpecError(ValueError):
  """A malformed resources_per_run; the message is one line."""


def parse(spec: Any) -> Optional[Dict[str, float]]:
  """{resource: amount} from a dict or "K=V,K=V" string; None for "auto"."""
  if spec is None or (isinstance(spec, str) and spec.strip().lower()
                      in ("", AUTO)):
    return None
  if hasattr(spec, "to_dict"):
    spec = spec.to_dict()
  if isinstance(spec, str):
    items = {}
    for part in spec.split(","):
      key, sep, value = part.partition("=")
      if not sep or not key.strip():
        raise ResourceSpecError(
            f"sweep.resources_per_run {spec!r}: expected 'auto' or "
            "NAME=AMOUNT[,NAME=AMOUNT...], e.g. GPU=1 or CPU=2")
      items[key.strip()] = value.strip()
    spec = items
  if not isinstance(spec, Mapping) or not spec:
    raise ResourceSpecError(f"sweep.resources_per_run must be 'auto', a dict "
                            f"or NAME=AMOUNT,..., got {spec!r}")
  out = {}
  for key, value in spec.items():
    try:
      amount = float(value)
    except (TypeError, ValueError):
      amount = math.nan
    if not math.isfinite(amount) or amount < 0:
      raise ResourceSpecError(f"sweep.resources_per_run[{key!r}] must be a "
                              f"non-negative number, got {value!r}")
    out[str(key)] = amount
  out.setdefault("CPU", 1.0)
  return out


def resolve(spec: Any, cluster: Mapping[str, float]) -> Dict[str, float]:
  """``parse(spec)``, with "auto" decided by the cluster's total resources."""
  parsed = parse(spec)
  if parsed is not None:
    return parsed
  return {"CPU": 1.0, "GPU": 1.0} if cluster.get("GPU", 0) > 0 else {"CPU": 1.0}


def uses_accelerator(resources: Mapping[str, float]) -> bool:
  return any(resources.get(k, 0) > 0 for k in ACCELERATORS)


def fits(resources: Mapping[str, float], node: Mapping[str, float]) -> bool:
  """Could one run start on a node offering ``node`` (its totals)?"""
  return all(node.get(k, 0.0) >= v for k, v in resources.items() if v > 0)


def ray_options(resources: Mapping[str, float]) -> Dict[str, Any]:
  """``.options(...)`` keyword arguments of a Ray task asking ``resources``."""
  opts: Dict[str, Any] = {"num_cpus": resources.get("CPU", 1.0)}
  custom = {}
  for key, value in resources.items():
    if key == "CPU":
      continue
    if key == "GPU":
      opts["num_gpus"] = value
    elif key == "memory":
      opts["memory"] = value
    else:
      custom[key] = value
  if custom:
    opts["resources"] = custom
  return opts


def fmt(resources: Mapping[str, float]) -> str:
  return ", ".join(f"{k}={v:g}" for k, v in sorted(resources.items()))
