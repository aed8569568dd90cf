"""A known loss law with a learning-rate optimum, and a trainer that obeys it.

L(N, D, lr) = E + A / N^alpha + B / D^beta + K (ln lr - ln eta*(N))^2 + noise,
eta*(N) = ETA0 (N / 1.4e4)^(-0.19): the larger the model the smaller its best
learning rate, so a rule that gives every size one learning rate tilts the
IsoFLOP curves. ``fake_train`` has lm.trainer.train's signature and returns
the run.json the executor reads (no JAX: the sweep machinery is tested
without training). ``NOISE`` is a deterministic per-(run, seed) offset, so
seed repeats measure a nonzero sigma.
"""
import hashlib
import math
import os

E, A, ALPHA, B, BETA, K, ETA0 = 1.8, 90.0, 0.34, 400.0, 0.34, 0.3, 1e-2
NOISE = 0.002
CALLS = []                       # run dirs fake_train was called on
FAIL_ENV = "SCALINGLM_TEST_LR_FAIL"   # a run_id fake_train fails once


def eta_opt(N: float) -> float:
  return ETA0 * (N / 1.4e4) ** -0.19


def loss(N: float, D: float, lr: float) -> float:
  return (E + A / N**ALPHA + B / D**BETA
          + K * (math.log(lr) - math.log(eta_opt(N)))**2)


def _noise(key: str) -> float:
  h = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 16**8
  return NOISE * (2 * h - 1)


def _params(cfg) -> float:
  from lm import params
  from lm.config import from_config_dict
  from lm.config.config_dict import ConfigDict
  return float(params.n_params(from_config_dict(ConfigDict(cfg), 257).model,
                               "total"))


def fake_train(config, workdir, **kwargs):
  """Returns the law's loss for the run's (N, D, lr); a trunk segment just
  leaves its branch-point checkpoint directory."""
  run_id = os.path.basename(os.path.normpath(workdir))
  CALLS.append(run_id)
  if os.environ.get(FAIL_ENV) == run_id:
    os.environ.pop(FAIL_ENV)
    raise RuntimeError("injected failure (tests.helpers.lr_law)")
  stop_at = kwargs.get("stop_at")
  if stop_at is not None:
    os.makedirs(os.path.join(workdir, "checkpoints", str(stop_at)),
                exist_ok=True)
    return {"stopped_at_step": stop_at}
  t = config["train"]
  N = _params(config)
  D = t["steps"] * t["batch_size"] * config["data"]["seq_len"]
  L = loss(N, D, t["lr"]) + _noise(f"{run_id}/{t['seed']}")
  return {"eval_loss": L, "train_loss": L, "flops": 6.0 * N * D,
          "eval_sha256": "ab" * 32}
