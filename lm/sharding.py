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
from typing import Any, Sequence, Tuple

import flax.linen as nn
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from lm.config import ConfigError, MeshConfig


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
  devices = jax.devices() if devices is None else devices
  shape = resolve_mesh_shape(cfg.shape, len(devices))
  try:
    from jax.experimental import mesh_utils
    dev_array = mesh_utils.create_device_mesh(shape, devices=devices)
  except Exception:  # non-TPU topologies / simulated CPU devices
    dev_array = np.asarray(devices).reshape(shape)
  return Mesh(dev_array, cfg.axes)


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


_DISTRIBUTED_READY = False


def maybe_initialize_distributed(distributed: bool) -> None:
  """``jax.distributed.initialize()`` once per process, when configured.

  Entry points call this before any other JAX call (JAX requires it); later
  calls are no-ops.
  """
  global _DISTRIBUTED_READY
  if distributed and not _DISTRIBUTED_READY:
    jax.distributed.initialize()
  _DISTRIBUTED_READY = _DISTRIBUTED_READY or bool(distributed)


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
