"""The ``mesh`` config section: device mesh, logical-axis rules, launch fields.

Sharding is data: the model only names logical axes; ``DEFAULT_RULES`` places
them on the mesh axes ``MESH_AXES``. ``mesh_values`` turns the section's
ConfigDict values (text from ``--config.mesh.shape=...``, lists) into the
tuples ``MeshConfig`` holds; ``lm.config.from_config_dict`` calls it.
"""
from __future__ import annotations

import ast
import dataclasses
from typing import Any, Dict, Mapping, Sequence, Tuple

from lm.validation import ConfigError, _is_int, check_int, check_type

# Logical axis name -> mesh axis (or tuple of mesh axes, or None = replicated).
DEFAULT_RULES: Tuple[Tuple[str, Any], ...] = (
    ("batch", ("data", "fsdp")),
    ("seq", None),
    ("act_embed", None),
    ("act_heads", "tensor"),
    ("act_mlp", "tensor"),
    ("act_vocab", "tensor"),
    ("embed", "fsdp"),
    ("vocab", "tensor"),
    ("heads", "tensor"),
    ("head_dim", None),
    ("mlp", "tensor"),
    ("norm", None),
)

MESH_AXES: Tuple[str, ...] = ("data", "fsdp", "tensor")


@dataclasses.dataclass(frozen=True)
class MeshConfig:
  shape: Tuple[int, ...] = (-1, 1, 1)        # (data, fsdp, tensor); -1 = the rest
  axes: Tuple[str, ...] = MESH_AXES
  rules: Tuple[Tuple[str, Any], ...] = DEFAULT_RULES
  # Multi-host: passed to jax.distributed.initialize(). Empty fields fall back
  # to $JAX_COORDINATOR_ADDRESS / $JAX_NUM_PROCESSES / $JAX_PROCESS_ID, then to
  # JAX's cluster auto-detection (TPU VMs, SLURM, Open MPI, Kubernetes).
  distributed: bool = False                  # initialize even with no field set
  coordinator_address: str = ""              # HOST:PORT of process 0
  num_processes: int = 0                     # 0: environment / auto-detect
  process_id: int = -1                       # -1: environment / auto-detect

  def validate(self) -> "MeshConfig":
    if not isinstance(self.shape, tuple) or not all(_is_int(s)
                                                    for s in self.shape):
      raise ConfigError(f"mesh.shape must be a tuple of integers such as "
                        f"(-1, 1, 1), got {self.shape!r}")
    if (not isinstance(self.axes, tuple) or not all(isinstance(a, str)
                                                    for a in self.axes)
        or len(set(self.axes)) != len(self.axes)):
      raise ConfigError(f"mesh.axes must be distinct axis names, got "
                        f"{self.axes!r}")
    check_type("mesh.distributed", self.distributed, bool)
    for name, axes in self.rules:
      names = (axes,) if isinstance(axes, str) else (axes or ())
      if (not isinstance(name, str) or not isinstance(names, tuple)
          or any(a not in self.axes for a in names)):
        raise ConfigError(f"mesh.rules entry ({name!r}, {axes!r}) must map a "
                          f"logical axis name to None, one of {self.axes} or "
                          "a tuple of them")
    check_launch_fields(self.coordinator_address, self.num_processes,
                        self.process_id)
    if len(self.shape) != len(self.axes):
      raise ConfigError(f"mesh.shape {self.shape} must have one entry per axis "
                        f"{self.axes}")
    if sum(1 for s in self.shape if s == -1) > 1:
      raise ConfigError(f"mesh.shape {self.shape}: at most one -1 allowed")
    if any(s == 0 or s < -1 for s in self.shape):
      raise ConfigError(f"mesh.shape {self.shape}: sizes must be positive or -1")
    return self


def check_launch_fields(address: Any, n: Any, pid: Any) -> None:
  if not isinstance(address, str) or (address and not _host_port(address)):
    raise ConfigError(f"mesh.coordinator_address must be HOST:PORT (or empty "
                      f"for auto-detection), got {address!r}")
  for name, v, lo in (("num_processes", n, 0), ("process_id", pid, -1)):
    check_int(f"mesh.{name}", v, lo,
              meaning=f"{lo}: from the environment or auto-detected")
  if n and pid >= n:
    raise ConfigError(f"mesh.process_id={pid} must be < mesh.num_processes={n}")


def _host_port(address: str) -> bool:
  host, sep, port = address.rpartition(":")
  return bool(sep and host and port.isdigit() and 0 < int(port) < 65536)


def mesh_shape(value: Any) -> Tuple[int, ...]:
  """``mesh.shape`` as a tuple of ints: from a tuple/list or its text
  ("(2, -1, 1)"); anything else (1.7, "abc") is a one-line ConfigError."""
  raw = value
  if isinstance(value, str):
    try:
      value = ast.literal_eval(value.strip())
    except (ValueError, SyntaxError):
      value = None
  if _is_int(value):
    value = (value,)
  if (not isinstance(value, (tuple, list))
      or not all(_is_int(s) or (isinstance(s, float) and s.is_integer())
                 for s in value)):
    raise ConfigError(f"mesh.shape must be a tuple of integers, one per mesh "
                      f"axis (data, fsdp, tensor), e.g. (-1, 1, 1) with -1 = "
                      f"the remaining devices; got {raw!r}")
  return tuple(int(s) for s in value)


def mesh_rules(rules: Sequence[Any]) -> Tuple[Tuple[str, Any], ...]:
  """``mesh.rules`` as a tuple of (logical axis, mesh axes) pairs (lists of
  mesh axes become tuples)."""
  out = []
  for item in rules:
    if not isinstance(item, (tuple, list)) or len(item) != 2:
      raise ConfigError(f"mesh.rules entries must be (logical axis, mesh axes) "
                        f"pairs, got {item!r}")
    name, axes = item
    if isinstance(axes, list):
      axes = tuple(axes)
    out.append((name, axes))
  return tuple(out)


def mesh_values(values: Mapping[str, Any]) -> Dict[str, Any]:
  """The ``mesh`` section's values with shape, axes and rules as tuples."""
  out = dict(values)
  if "shape" in out:
    out["shape"] = mesh_shape(out["shape"])
  if "axes" in out:
    out["axes"] = tuple(out["axes"])
  if "rules" in out:
    out["rules"] = mesh_rules(out["rules"])
  return out
