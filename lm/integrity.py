"""What a checkpoint must prove on restore: its arrays and its config.

orbax (0.12.x) writes zarr3 arrays whose shard *index* carries a crc32c, but
the chunk data itself has no checksum and there is no option to add one, so
bytes flipped inside a data file restore silently (measured: 64 flipped bytes
in a params file restore without error). So every checkpoint also stores

* ``fingerprint``: one 64-bit digest per array of the train state, computed on
  device at save time and recomputed after restore;
* ``config``: the run's config and its sha256, compared on resume
  (``lm.config.RESUME_MUTABLE`` fields aside), so deleting run.json never
  makes a foreign checkpoint adoptable;
* ``provenance``: what the caller adds (a sweep's config hash).

The digest (``FINGERPRINT_ALGO``): each array is viewed as unsigned words
(bit patterns, so NaNs and -0.0 count), each word is mixed with its flat index
by the murmur3 32-bit finaliser (Appleby 2011, ``fmix32``), and the mixed
words are summed modulo 2**32, in two lanes with different seeds. The sum is
exact integer arithmetic, so the digest is the same on any mesh and any number
of hosts; the mix is a bijection of the word for a fixed index, so a change in
any single word always changes the digest.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Dict, Mapping

import jax
import jax.numpy as jnp
import numpy as np

FINGERPRINT_ALGO = "fmix32-sum-2x32-v1"
_SEEDS = (0x9E3779B9, 0x7F4A7C15)


def _words(x: jax.Array) -> jax.Array:
  """The bit pattern of ``x`` as uint32 words, same shape (8-byte: 2 words)."""
  if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
    x = jax.random.key_data(x)
  if x.dtype == jnp.bool_:
    return x.astype(jnp.uint32)
  size = jnp.dtype(x.dtype).itemsize
  if size == 4:
    return jax.lax.bitcast_convert_type(x, jnp.uint32)
  if size in (1, 2):
    unsigned = {1: jnp.uint8, 2: jnp.uint16}[size]
    return jax.lax.bitcast_convert_type(x, unsigned).astype(jnp.uint32)
  return jax.lax.bitcast_convert_type(x, jnp.uint32)  # 8 bytes -> (..., 2)


def _fmix32(h: jax.Array) -> jax.Array:
  h = h ^ (h >> 16)
  h = h * jnp.uint32(0x85EBCA6B)
  h = h ^ (h >> 13)
  h = h * jnp.uint32(0xC2B2AE35)
  return h ^ (h >> 16)


def _leaf_digest(x: jax.Array) -> jax.Array:
  w = _words(x)
  # Flat (row-major) index of every word, built from iotas (no reshape, so a
  # sharded array is never gathered).
  idx = jnp.zeros(w.shape, jnp.uint32)
  stride = 1
  for d in reversed(range(w.ndim)):
    idx = idx + jax.lax.broadcasted_iota(jnp.uint32, w.shape, d) * jnp.uint32(
        stride % 2**32)
    stride *= w.shape[d]
  lanes = [jnp.sum(_fmix32(w ^ _fmix32(idx + jnp.uint32(s))), dtype=jnp.uint32)
           for s in _SEEDS]
  return jnp.stack(lanes)


# jit caches one compiled function per state structure and shapes.
_digests = jax.jit(lambda leaves: [_leaf_digest(x) for x in leaves])


def _finite_fn(leaves):
  flags = [jnp.all(jnp.isfinite(x)) for x in leaves
           if jnp.issubdtype(x.dtype, jnp.inexact)]
  return jnp.all(jnp.stack(flags)) if flags else jnp.bool_(True)


_finite = jax.jit(_finite_fn)


def _path_name(path) -> str:
  return "/".join(str(getattr(k, "key", getattr(k, "idx", getattr(k, "name", k))))
                  for k in path)


def fingerprint(state: Any) -> Dict[str, str]:
  """{array path: 16-hex digest} of a pytree of (possibly sharded) arrays."""
  with_paths, _ = jax.tree_util.tree_flatten_with_path(state)
  leaves = [jnp.asarray(x) for _, x in with_paths]
  digests = jax.device_get(_digests(leaves))   # one transfer for all arrays
  out = {}
  for (path, _), d in zip(with_paths, digests):
    lo, hi = (int(v) for v in np.asarray(d))
    out[_path_name(path)] = f"{hi:08x}{lo:08x}"
  return out


def all_finite(state: Any) -> bool:
  """True when no floating-point array of ``state`` holds a NaN or Inf."""
  return bool(_finite(jax.tree.leaves(state)))


def mismatches(saved: Mapping[str, str], restored: Mapping[str, str]) -> list:
  """Array paths whose digests differ (or exist on one side only)."""
  return sorted(k for k in set(saved) | set(restored)
                if saved.get(k) != restored.get(k))


def config_sha256(config: Mapping[str, Any]) -> str:
  """sha256 of canonical JSON of a (JSON-friendly) config mapping."""
  blob = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
  return hashlib.sha256(blob.encode("utf-8")).hexdigest()
