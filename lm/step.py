"""Sharded train state, the jitted train step and the eval step.

One call of the train step runs ``K = steps_per_call`` optimizer steps with
``lax.scan`` (each optionally accumulating gradients over micro-batches), or
any n <= K of them with ``train_fn_upto`` (a ``fori_loop`` whose trip count is
traced: one compilation serves every chunk length, so a run can stop at any
step, e.g. a WSD trunk's branch points), so Python dispatch costs once per K
steps: an IsoFLOP sweep runs tens of
thousands of tiny steps. Compiled functions are cached by shape (model config,
mesh, static options); per-run hyper-parameters are traced (``lm.optim``), so
runs of a sweep that share a shape share one compilation.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Dict, Tuple

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from lm import optim, sharding
from lm.config import ModelConfig, TrainConfig
from lm.model import Transformer, cross_entropy


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: Any
  opt_state: Any


@dataclasses.dataclass(frozen=True)
class StepOptions:
  """Static (shape-/graph-affecting) training options."""
  grad_accum: int = 1
  z_loss: float = 0.0
  b1: float = 0.9
  b2: float = 0.95
  eps: float = 1e-8

  @classmethod
  def from_train(cls, cfg: TrainConfig) -> "StepOptions":
    return cls(grad_accum=cfg.grad_accum, z_loss=cfg.z_loss, b1=cfg.b1,
               b2=cfg.b2, eps=cfg.eps)

  def train_config(self) -> TrainConfig:
    return TrainConfig(grad_accum=self.grad_accum, z_loss=self.z_loss,
                       b1=self.b1, b2=self.b2, eps=self.eps)


def _unbox(tree):
  return jax.tree.map(
      lambda x: x.value if isinstance(x, nn.Partitioned) else x, tree,
      is_leaf=lambda x: isinstance(x, nn.Partitioned))


def _dummy_hparams():
  return {k: jnp.zeros((), jnp.float32) for k in optim.HPARAM_KEYS}


class Compiled:
  """Jitted init / train / eval functions for one (model, mesh, options)."""

  def __init__(self, model_cfg: ModelConfig, opts: StepOptions, mesh: Mesh,
               rules):
    self.model_cfg, self.opts, self.mesh, self.rules = (model_cfg, opts, mesh,
                                                        rules)
    self.model = Transformer(model_cfg)
    tcfg = opts.train_config()

    def init_boxed(rng):
      tokens = jnp.zeros((1, model_cfg.max_seq_len), jnp.int32)
      params = self.model.init(rng, tokens)["params"]
      tx = optim.make_optimizer(tcfg, _dummy_hparams())
      return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                        opt_state=tx.init(params))

    abstract = jax.eval_shape(init_boxed, jax.random.key(0))
    self.state_shardings = _unbox(
        sharding.logical_shardings(abstract, mesh, rules))
    self.abstract_state = jax.tree.map(
        lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
        _unbox(abstract), self.state_shardings)
    self.init = jax.jit(lambda rng: _unbox(init_boxed(rng)),
                        out_shardings=self.state_shardings)
    self._train_fns: Dict[Tuple, Callable] = {}
    self._eval_fns: Dict[int, Callable] = {}
    self._tcfg = tcfg

  # -- train -------------------------------------------------------------
  def _loss(self, params, batch_BxT1):
    inputs_BxT, targets_BxT = batch_BxT1[:, :-1], batch_BxT1[:, 1:]
    logits_BxTxV = self.model.apply({"params": params}, inputs_BxT)
    return cross_entropy(logits_BxTxV, targets_BxT, self.opts.z_loss)

  def _one_step(self, state: TrainState, batch_BxT1, hp):
    A = self.opts.grad_accum
    grad_fn = jax.value_and_grad(self._loss, has_aux=True)
    if A == 1:
      (_, nll), grads = grad_fn(state.params, batch_BxT1)
    else:
      # Row r goes to micro-batch r % A: each micro-batch keeps rows from
      # every data shard (a contiguous split would put one micro-batch on
      # one shard and make XLA all-gather the batch).
      micro_AxBxT1 = batch_BxT1.reshape(
          -1, A, batch_BxT1.shape[-1]).swapaxes(0, 1)

      def acc(carry, micro):
        g_sum, nll_sum = carry
        (_, nll), g = grad_fn(state.params, micro)
        return (jax.tree.map(jnp.add, g_sum, g), nll_sum + nll), None

      zeros = jax.tree.map(jnp.zeros_like, state.params)
      (g_sum, nll_sum), _ = jax.lax.scan(acc, (zeros, 0.0), micro_AxBxT1)
      grads = jax.tree.map(lambda g: g / A, g_sum)
      nll = nll_sum / A
    tx = optim.make_optimizer(self._tcfg, hp)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = jax.tree.map(jnp.add, state.params, updates)
    new_state = TrainState(step=state.step + 1, params=params,
                           opt_state=opt_state)
    metrics = {"loss": nll, "grad_norm": _global_norm(grads),
               "lr": optim.learning_rate(new_state.step, hp)}
    return new_state, metrics

  def _jit_train(self, key, global_batch: int, run: Callable,
                 n_traced: int) -> Callable:
    """(jitted ``run``, batch sharding), cached under ``key``: the state in
    and out on its shardings (donated), the [K, B, T+1] batches sharded on
    B, ``n_traced`` more arguments replicated."""
    if key not in self._train_fns:
      batch_sh = sharding.batch_sharding(self.mesh, self.rules, ndim=3,
                                         leading=1, batch_size=global_batch)
      self._train_fns[key] = (jax.jit(
          run, in_shardings=(self.state_shardings, batch_sh)
          + (None,) * n_traced,
          out_shardings=(self.state_shardings, None), donate_argnums=(0,)),
                              batch_sh)
    return self._train_fns[key]

  def train_fn(self, k: int, global_batch: int) -> Callable:
    """state, batch_KxBxT1, hparams -> state, metrics (each [K])."""
    def run(state, batch_KxBxT1, hp):
      with sharding.activation_rules(self.mesh, self.rules):
        return jax.lax.scan(lambda s, b: self._one_step(s, b, hp), state,
                            batch_KxBxT1)
    return self._jit_train((k, global_batch), global_batch, run, 1)

  def train_fn_upto(self, k: int, global_batch: int) -> Callable:
    """state, batch_KxBxT1, n, hparams -> state, metrics (each [K]): the
    first ``n`` (traced int32, 1 <= n <= K) optimizer steps of ``train_fn``
    on batches [0, n); metrics past n are 0. The step body is the same as
    ``train_fn``'s (bitwise-equal results on CPU, measured)."""
    def run(state, batch_KxBxT1, n, hp):
      zeros_K = jnp.zeros((k,), jnp.float32)
      metrics_K = {"loss": zeros_K, "grad_norm": zeros_K, "lr": zeros_K}

      def body(i, carry):
        s, m = carry
        s, mi = self._one_step(s, batch_KxBxT1[i], hp)
        return s, {name: m[name].at[i].set(mi[name]) for name in m}

      with sharding.activation_rules(self.mesh, self.rules):
        return jax.lax.fori_loop(0, n, body, (state, metrics_K))
    return self._jit_train(("upto", k, global_batch), global_batch, run, 2)

  # -- eval --------------------------------------------------------------
  def _row_nll(self, params, batch_BxT1) -> jax.Array:
    """[B] summed next-token NLL (nats) of each row, in float32."""
    inputs_BxT, targets_BxT = batch_BxT1[:, :-1], batch_BxT1[:, 1:]
    logits_BxTxV = self.model.apply({"params": params}, inputs_BxT).astype(
        jnp.float32)
    lse_BxT = jax.nn.logsumexp(logits_BxTxV, axis=-1)
    target_BxT = jnp.take_along_axis(logits_BxTxV, targets_BxT[..., None],
                                     axis=-1)[..., 0]
    return jnp.sum(lse_BxT - target_BxT, axis=-1)

  def eval_fn(self, global_batch: int) -> Tuple[Callable, NamedSharding]:
    """params, batches_NxBxT1 -> per-row summed NLL [N, B], replicated on
    every device so that each process can read every row (lm.evaluate)."""
    if global_batch not in self._eval_fns:
      batch_sh = sharding.batch_sharding(self.mesh, self.rules, ndim=3,
                                         leading=1, batch_size=global_batch)

      def run(params, batches_NxBxT1):
        with sharding.activation_rules(self.mesh, self.rules):
          return jax.lax.map(lambda b: self._row_nll(params, b),
                             batches_NxBxT1)

      self._eval_fns[global_batch] = (jax.jit(
          run, in_shardings=(self.state_shardings.params, batch_sh),
          out_shardings=NamedSharding(self.mesh, PartitionSpec())), batch_sh)
    return self._eval_fns[global_batch]


def _global_norm(tree) -> jax.Array:
  return jnp.sqrt(sum(jnp.sum(jnp.square(x.astype(jnp.float32)))
                      for x in jax.tree.leaves(tree)))


@functools.lru_cache(maxsize=32)
def compiled_for(model_cfg: ModelConfig, opts: StepOptions, mesh: Mesh,
                 rules) -> Compiled:
  """Process-wide cache: runs with equal shapes reuse compiled steps."""
  return Compiled(model_cfg, opts, mesh, rules)


def device_put_batch(local_np, sh: NamedSharding, global_shape):
  """Each process contributes its rows of the global batch."""
  return jax.make_array_from_process_local_data(sh, local_np, global_shape)

