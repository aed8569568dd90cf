"""Batched L-BFGS in JAX: many independent minimisations in one jitted call.

Each lane runs L-BFGS (two-loop recursion, memory 10; Nocedal & Wright 2006,
Alg. 7.4) with a backtracking Armijo line search (quadratic interpolation,
N&W Sec. 3.5), and skips memory updates that violate s.y > 0. Lanes are
``jax.vmap``-ed; ``run`` advances them in jitted chunks of iterations and, on
the host between chunks, retires the lanes that have stopped, so that the
work tracks the lanes still running rather than the slowest one. Lane counts
are padded to a few bucket sizes so that only a handful of shapes compile.

Precision: everything runs in float64 inside :func:`x64`, which scopes
``jax_enable_x64`` to the block, so code running later in the same process
(e.g. ``lm/`` in float32) is unaffected.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Callable, Dict, Optional

import jax
import jax.numpy as jnp
import numpy as np

MEMORY = 10
_C1 = 1e-4          # Armijo constant (Nocedal & Wright 2006, Sec. 3.1).
_MAX_BACKTRACK = 10


def x64():
  """Enables float64 in JAX for the duration of the block only.

  ``jax.enable_x64`` is a config context manager in every supported jax
  (0.10.2 here, 0.11.2 on the GPU image); ``jax.experimental.enable_x64``
  no longer exists there.
  """
  return jax.enable_x64(True)


@dataclasses.dataclass(frozen=True)
class StopRule:
  """Per-lane stopping rule (the first condition met stops the lane) and
  the restart step.

  Attributes:
    max_iter: iteration cap.
    gtol: stop when max_i |grad_i| <= gtol * max(1, |f|).
    ftol: stop when the decrease f_k - f_{k+1} <= ftol * |f_{k+1}| (scale
      free: unlike scipy's L-BFGS-B rule, which divides by max(|f|, 1), it
      does not stop early on objectives much smaller than 1).
    pred_tol: optional; stop before the line search when the quasi-Newton
      model predicts a decrease -g.d/2 <= pred_tol * |f| (memory non-empty).
      For objectives that are costly to evaluate, whose last steps would
      otherwise backtrack at the rounding floor of f.
    unit_restart: with an empty memory (first step, or after a skipped
      update) try a unit-length step along -g rather than -g/max(1, |g|).
      For objectives whose gradients are << 1 at O(1) parameter scales:
      where the curvature is negative every update is skipped, and steps
      of length |g| would crawl.
  """
  max_iter: int = 3000
  gtol: float = 1e-12
  ftol: float = 1e-13
  pred_tol: Optional[float] = None
  unit_restart: bool = False


def _restart_scale(g, stop):
  """Step scale along -g with an empty memory: 1/max(1, |g|), or 1/|g|
  (a unit-length first trial step) with stop.unit_restart."""
  norm = jnp.linalg.norm(g)
  if stop.unit_restart:
    return 1.0 / jnp.where(norm > 0, norm, 1.0)
  return 1.0 / jnp.maximum(1.0, norm)


def _direction(g, S, Y, rho, pos, count, stop):
  """-H g by the L-BFGS two-loop recursion (Nocedal & Wright, Alg. 7.4)."""
  m = S.shape[0]
  order = (pos - 1 - jnp.arange(m)) % m          # newest to oldest.
  valid = jnp.arange(m) < count

  def first(q, i):
    j = order[i]
    al = jnp.where(valid[i], rho[j] * jnp.dot(S[j], q), 0.0)
    return q - al * Y[j], al

  q, alphas = jax.lax.scan(first, g, jnp.arange(m))
  newest = order[0]
  yy = jnp.dot(Y[newest], Y[newest])
  gamma = jnp.where(count > 0, jnp.dot(S[newest], Y[newest]) / yy,
                    _restart_scale(g, stop))
  r = gamma * q

  def second(r, i):
    j = order[i]
    be = rho[j] * jnp.dot(Y[j], r)
    return r + jnp.where(valid[i], alphas[i] - be, 0.0) * S[j], None

  r, _ = jax.lax.scan(second, r, jnp.arange(m)[::-1])
  return -r


def _line_search(fun, x, f, gd, d, done):
  """Backtracking Armijo step along d, starting from t = 1.

  Evaluates value and gradient at each trial point so that the accepted one
  needs no second evaluation; lanes already done evaluate nothing. The
  objective is traced once (inside the loop), which keeps compilation of
  costly objectives short. Returns (t, f(x + t d), grad, ok).
  """
  vg = jax.value_and_grad(fun)

  def armijo(t, ft):
    return ft <= f + _C1 * t * gd

  def cond(c):
    t, ft, _, k = c
    return ~done & ((k == 0) | (~armijo(t, ft) & (k <= _MAX_BACKTRACK)))

  def body(c):
    t, ft, _, k = c
    # Minimiser of the quadratic through f, gd and f(t), kept in [t/10, t/2].
    t_q = -gd * t * t / (2.0 * (ft - f - gd * t))
    t_new = jnp.where(k == 0, jnp.ones_like(t),
                      jnp.where(jnp.isfinite(ft) & jnp.isfinite(t_q),
                                jnp.clip(t_q, 0.1 * t, 0.5 * t), 0.1 * t))
    f_new, g_new = vg(x + t_new * d)
    return t_new, f_new, g_new, k + 1

  t0 = jnp.asarray(1.0, x.dtype)
  init = (t0, jnp.asarray(jnp.inf, f.dtype), jnp.zeros_like(x), 0)
  t, ft, gt, k = jax.lax.while_loop(cond, body, init)
  return t, ft, gt, (k > 0) & armijo(t, ft)


def _step(fun, stop, st):
  """One L-BFGS iteration of one lane; lanes already done are unchanged."""
  x, f, g, S, Y, rho, pos, count, it, done, _ = st
  d = _direction(g, S, Y, rho, pos, count, stop)
  gd = jnp.dot(g, d)
  bad_dir = ~(gd < 0)
  d = jnp.where(bad_dir, -g * _restart_scale(g, stop), d)
  gd = jnp.where(bad_dir, jnp.dot(g, d), gd)
  count = jnp.where(bad_dir, 0, count)            # Restart the memory.
  no_gain = jnp.zeros((), bool)
  if stop.pred_tol is not None:
    no_gain = (count > 0) & (-0.5 * gd <= stop.pred_tol * jnp.abs(f))
  t, ft, gt, ok = _line_search(fun, x, f, gd, d, done | no_gain)
  # A failed line search along the scaled gradient (empty memory) stops the
  # lane; with a non-empty memory it restarts the memory and retries.
  failed = ~ok & (count == 0)
  x_new = jnp.where(ok, x + t * d, x)
  f_new = jnp.where(ok, ft, f)
  g_new = jnp.where(ok, gt, g)
  s, y = x_new - x, g_new - g
  sy = jnp.dot(s, y)
  keep = ok & (sy > 1e-12 * jnp.linalg.norm(s) * jnp.linalg.norm(y))
  S = jnp.where(keep, S.at[pos].set(s), S)
  Y = jnp.where(keep, Y.at[pos].set(y), Y)
  rho = jnp.where(keep, rho.at[pos].set(1.0 / jnp.where(keep, sy, 1.0)), rho)
  pos = jnp.where(keep, (pos + 1) % S.shape[0], pos)
  count = jnp.where(keep, jnp.minimum(count + 1, S.shape[0]),
                    jnp.where(ok, count, 0))
  it_new = it + 1
  small_grad = jnp.max(jnp.abs(g_new)) <= stop.gtol * jnp.maximum(
      1.0, jnp.abs(f_new))
  stalled = ok & ((f - f_new) <= stop.ftol * jnp.abs(f_new))
  done_new = (failed | small_grad | stalled | (it_new >= stop.max_iter)
              | no_gain)
  x_new = jnp.where(no_gain, x, x_new)
  f_new = jnp.where(no_gain, f, f_new)
  g_new = jnp.where(no_gain, g, g_new)
  failed = failed & ~no_gain
  new = (x_new, f_new, g_new, S, Y, rho, pos, count, it_new, done_new, failed)
  return jax.tree.map(lambda o, n: jnp.where(done, o, n), st, new)


@functools.partial(jax.jit, static_argnames=("objective",))
def _init(objective, x0_BxP, weights_BxM, data):
  """Value and gradient at the starts, empty memories."""

  def lane(x0, w):
    f, g = jax.value_and_grad(lambda x: objective(x, w, data))(x0)
    p = x0.shape[0]
    z = jnp.zeros((MEMORY, p), x0.dtype)
    return (x0, f, g, z, z, jnp.zeros((MEMORY,), x0.dtype), 0, 0, 0,
            ~jnp.isfinite(f), False)

  return jax.vmap(lane)(x0_BxP, weights_BxM)


@functools.partial(jax.jit, static_argnames=("objective", "stop", "n_iter"))
def _advance(objective, state, weights_BxM, data, stop, n_iter):
  """n_iter L-BFGS iterations for every lane (done lanes are frozen)."""

  def lane(st, w):
    fun = lambda x: objective(x, w, data)
    return jax.lax.fori_loop(0, n_iter, lambda _, s: _step(fun, stop, s), st)

  return jax.vmap(lane)(state, weights_BxM)


BLOCK = 1024  # Lanes per jitted call: keeps the working set in cache.


def _bucket(n: int, block: int) -> int:
  """Padded lane count of a block: 64, 256 or block (at most block)."""
  for b in (64, 256):
    if n <= b <= block:
      return b
  return block


def _blocks(lanes: np.ndarray, block: int):
  """Splits lane indices into blocks of at most block, padded to a bucket."""
  for i in range(0, lanes.size, block):
    blk = lanes[i:i + block]
    pad = np.concatenate([blk, np.full(_bucket(blk.size, block) - blk.size,
                                       blk[0])])
    yield blk, pad


def evaluate(objective: Callable, x_BxP, weights_BxM, data,
             block: int = BLOCK) -> np.ndarray:
  """objective at every lane (no steps), in the blocks ``run`` compiles.

  Uses the same jitted start-up as ``run``, so evaluating a grid of starts
  and then refining them compiles the objective once.
  """
  x = np.asarray(x_BxP, np.float64)
  w = np.asarray(weights_BxM, np.float64)
  f = np.empty(x.shape[0])
  with x64():
    data = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), data)
    for blk, pad in _blocks(np.arange(x.shape[0]), block):
      f[blk] = np.asarray(_init(objective, jnp.asarray(x[pad]),
                                jnp.asarray(w[pad]), data)[1])[:blk.size]
  return np.where(np.isfinite(f), f, np.inf)


def run(objective: Callable, x0_BxP, weights_BxM, data,
        stop: StopRule = StopRule(), chunk: int = 20,
        keep: Optional[Callable[[np.ndarray, int], np.ndarray]] = None,
        block: int = BLOCK) -> Dict[str, np.ndarray]:
  """Minimises objective(x, w, data) for each lane from x0_BxP[lane].

  Lanes are advanced ``chunk`` iterations at a time in blocks of at most
  ``block`` lanes (padded to one of three shapes, so at most three
  compilations per objective and settings); between chunks, stopped lanes
  are retired on the host.

  Args:
    objective: pure function (x_P, weights_M, data) -> scalar.
    x0_BxP: starting points, one per lane.
    weights_BxM: per-lane observation weights (bootstrap counts or ones).
    data: pytree of arrays shared by all lanes.
    stop: StopRule.
    chunk: iterations between host-side retirements of stopped lanes.
    keep: optional pruning rule keep(f_running, iteration) -> bool mask over
      the running lanes; lanes it drops are retired as 'pruned'.
    block: lanes per jitted call. A vmapped line search costs every lane of
      a block as many evaluations as its slowest lane, so objectives that
      are costly to evaluate run faster in smaller blocks.

  Returns:
    dict of NumPy arrays over lanes: x, f, n_iter, converged (stopped by a
    tolerance, not by the cap, pruning or failure), pruned, failed (the line
    search failed before any step was accepted, so x is the start), grad_max.
  """
  x0 = np.asarray(x0_BxP, np.float64)
  w = np.asarray(weights_BxM, np.float64)
  n_lanes = x0.shape[0]
  pruned = np.zeros(n_lanes, bool)
  with x64():
    data = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), data)
    state = None
    for blk, pad in _blocks(np.arange(n_lanes), block):
      st = jax.tree.map(np.asarray, _init(
          objective, jnp.asarray(x0[pad]), jnp.asarray(w[pad]), data))
      if state is None:
        state = [np.zeros((n_lanes,) + a.shape[1:], a.dtype) for a in st]
      for full, part in zip(state, st):
        full[blk] = part[:blk.size]
    active = np.nonzero(~state[9])[0]
    while active.size:
      for blk, pad in _blocks(active, block):
        st = _advance(objective, tuple(jnp.asarray(a[pad]) for a in state),
                      jnp.asarray(w[pad]), data, stop, chunk)
        for full, part in zip(state, st):
          full[blk] = np.asarray(part)[:blk.size]
      done, f, it = state[9][active], state[1][active], state[8][active]
      if keep is not None:
        drop = ~done & ~np.asarray(keep(np.where(np.isfinite(f), f, np.inf),
                                        int(it.max())), bool)
        pruned[active[drop]] = True
        done = done | drop
      active = active[~done]
  x, f, g, it, done, ls_failed = (state[i] for i in (0, 1, 2, 8, 9, 10))
  f = np.where(np.isfinite(f), f, np.inf)
  failed = ls_failed & np.all(x == x0, axis=1)
  return dict(x=x, f=f, n_iter=it,
              converged=(done & ~pruned & ~failed & (it < stop.max_iter)
                         & np.isfinite(f)),
              pruned=pruned, failed=failed,
              grad_max=np.max(np.abs(g), axis=1))
