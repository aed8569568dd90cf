"""Mesh construction and logical-axis -> mesh-axis placement.

The model names logical axes only (``lm.model``); the config's rules table
(``MeshConfig.rules``) maps them to the mesh axes (data, fsdp, tensor). This
module turns both into ``NamedSharding``s for params, optimizer state and
batches. A logical dimension whose size is not divisible by its mesh axes is
replicated instead (tiny models on wide meshes), so every config runs on every
mesh.
"""
from __future__ import annotations

import math
import os
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import flax.linen as nn
import jax
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

from lm.config import ConfigError, MeshConfig, check_launch_fields


def resolve_mesh_shape(shape: Sequence[int], n_devices: int) -> Tuple[int, ...]:
  """Fills the single -1 entry with the remaining devices."""
  known = math.prod(s for s in shape if s != -1)
  if -1 in shape:
    if n_devices % known:
      raise ConfigError(f"mesh.shape {tuple(shape)} does not divide "
                        f"{n_devices} devices")
    shape = tuple(n_devices // known if s == -1 else s for s in shape)
  if math.prod(shape) != n_devices:
    raise ConfigError(f"mesh.shape {tuple(shape)} needs {math.prod(shape)} "
                      f"devices but {n_devices} are visible")
  return tuple(shape)


def make_mesh(cfg: MeshConfig, devices=None) -> Mesh:
  """``jax.make_mesh`` over ``devices`` (default: all, of every process).

  Axis types are ``Auto`` (sharding propagated by the compiler from the
  NamedShardings we place), as with a plain ``Mesh``; ``jax.make_mesh``
  would otherwise default to ``Explicit`` axes.
  """
  devices = jax.devices() if devices is None else list(devices)
  shape = resolve_mesh_shape(cfg.shape, len(devices))
  try:
    return jax.make_mesh(shape, tuple(cfg.axes),
                         axis_types=(AxisType.Auto,) * len(shape),
                         devices=devices)
  except ValueError as e:  # e.g. a TPU topology the shape cannot tile
    raise ConfigError(f"mesh.shape {shape} cannot be laid out on these "
                      f"{len(devices)} {devices[0].device_kind} devices "
                      f"({(str(e).splitlines() or [''])[0]}); try another "
                      "mesh.shape") from None


def _mesh_axes_size(mesh: Mesh, axes: Any) -> int:
  if axes is None:
    return 1
  if isinstance(axes, str):
    axes = (axes,)
  return math.prod(mesh.shape[a] for a in axes)


def _spec_for(logical: Sequence[str], shape: Sequence[int], mesh: Mesh,
              rules) -> P:
  """PartitionSpec for one array; a mesh axis is used at most once and only
  on dimensions it divides."""
  table = dict(rules)
  used = set()
  out = []
  for name, dim in zip(logical, shape):
    axes = table.get(name) if name is not None else None
    if isinstance(axes, str):
      axes = (axes,)
    if axes:
      axes = tuple(a for a in axes if a in mesh.shape and a not in used
                   and mesh.shape[a] > 1)
      # Drop trailing axes until the dimension divides evenly.
      while axes and dim % _mesh_axes_size(mesh, axes):
        axes = axes[:-1]
    if axes:
      used.update(axes)
      out.append(axes[0] if len(axes) == 1 else axes)
    else:
      out.append(None)
  return P(*out)


def logical_shardings(abstract_tree: Any, mesh: Mesh, rules) -> Any:
  """NamedShardings for a tree of (possibly ``nn.Partitioned``) abstract arrays."""
  def one(x):
    if isinstance(x, nn.Partitioned):
      value = x.value
      spec = _spec_for(x.names, value.shape, mesh, rules)
      return x.replace_boxed(NamedSharding(mesh, spec))
    return NamedSharding(mesh, P())
  return jax.tree.map(one, abstract_tree,
                      is_leaf=lambda x: isinstance(x, nn.Partitioned))


def batch_sharding(mesh: Mesh, rules, ndim: int = 2, leading: int = 0,
                   batch_size: int | None = None) -> NamedSharding:
  """Sharding for token batches [..., B, T] (batch axis after ``leading`` dims)."""
  table = dict(rules)
  axes = table.get("batch")
  if isinstance(axes, str):
    axes = (axes,)
  axes = tuple(a for a in (axes or ()) if a in mesh.shape and mesh.shape[a] > 1)
  if batch_size is not None:
    while axes and batch_size % _mesh_axes_size(mesh, axes):
      axes = axes[:-1]
  spec = [None] * ndim
  if axes:
    spec[leading] = axes[0] if len(axes) == 1 else axes
  return NamedSharding(mesh, P(*spec))


def _launch_field(mesh: Any, name: str, default: Any) -> Any:
  """A mesh field from a MeshConfig or a ConfigDict / dict section."""
  if isinstance(mesh, Mapping) or hasattr(mesh, "to_dict"):
    return mesh.get(name, default)
  return getattr(mesh, name, default)


def _env_int(environ: Mapping[str, str], name: str, default: int) -> int:
  raw = environ.get(name, "").strip()
  if not raw:
    return default
  try:
    return int(raw)
  except ValueError:
    raise ConfigError(f"${name}={raw!r} is not an integer") from None


def distributed_args(mesh: Any,
                     environ: Mapping[str, str] = os.environ
                     ) -> Optional[Dict[str, Any]]:
  """Keyword arguments for ``jax.distributed.initialize``, or None.

  Each of coordinator_address / num_processes / process_id comes from the
  mesh config, else from $JAX_COORDINATOR_ADDRESS / $JAX_NUM_PROCESSES /
  $JAX_PROCESS_ID, else is left out (JAX auto-detects it on TPU VMs, SLURM,
  Open MPI, Kubernetes). None (single process) unless ``mesh.distributed``
  is set or an address or a process count is given.
  """
  address = (_launch_field(mesh, "coordinator_address", "")
             or environ.get("JAX_COORDINATOR_ADDRESS", ""))
  n = _launch_field(mesh, "num_processes", 0) or _env_int(
      environ, "JAX_NUM_PROCESSES", 0)
  pid = _launch_field(mesh, "process_id", -1)
  if pid == -1:
    pid = _env_int(environ, "JAX_PROCESS_ID", -1)
  if not (_launch_field(mesh, "distributed", False) or address or n):
    return None
  check_launch_fields(address, n, pid)
  args: Dict[str, Any] = {}
  if address:
    args["coordinator_address"] = address
  if n:
    args["num_processes"] = n
  if pid >= 0:
    args["process_id"] = pid
  return args


def maybe_initialize_distributed(mesh: Any) -> bool:
  """``jax.distributed.initialize`` once per process, when ``mesh`` asks.

  ``mesh``: a MeshConfig or the ``mesh`` ConfigDict section. Entry points call
  this before any other JAX call (JAX requires it); later calls, and calls
  in a process already initialized, are no-ops. Returns whether this process
  is part of a distributed job. With more than one process, CPU collectives
  use gloo (unless $JAX_CPU_COLLECTIVES_IMPLEMENTATION says otherwise).
  """
  if jax.distributed.is_initialized():
    return True
  args = distributed_args(mesh)
  if args is None:
    return False
  if (args.get("num_processes", 2) > 1
      and not os.environ.get("JAX_CPU_COLLECTIVES_IMPLEMENTATION")):
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
  try:
    jax.distributed.initialize(**args)
  except (ValueError, TypeError) as e:  # incomplete spec, nothing auto-detected
    raise ConfigError(
        f"jax.distributed.initialize({', '.join(f'{k}={v!r}' for k, v in args.items())}) "
        f"failed: {(str(e).splitlines() or [''])[0]}; set "
        "mesh.coordinator_address, mesh.num_processes and mesh.process_id "
        "(or $JAX_COORDINATOR_ADDRESS, $JAX_NUM_PROCESSES, $JAX_PROCESS_ID)"
    ) from None
  return True


# Activation constraints: the model calls ``constrain(x, logical_axes)``; it is
# a no-op unless a trainer set the mesh and rules with ``activation_rules``
# (at trace time), so the model runs unchanged outside any mesh.
_ACTIVE: list = []


class activation_rules:
  """Context manager: ``with activation_rules(mesh, rules): jitted(...)``."""

  def __init__(self, mesh: Mesh, rules):
    self.mesh, self.rules = mesh, rules

  def __enter__(self):
    _ACTIVE.append((self.mesh, self.rules))
    return self

  def __exit__(self, *exc):
    _ACTIVE.pop()


def constrain(x: jax.Array, logical: Sequence[str]) -> jax.Array:
  if not _ACTIVE:
    return x
  mesh, rules = _ACTIVE[-1]
  spec = _spec_for(logical, x.shape, mesh, rules)
  return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, spec))
