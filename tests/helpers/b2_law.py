"""tests.helpers.lr_law's loss law with an AdamW beta2 optimum added.

L(N, D, lr, b2) = lr_law.loss(N, D, lr) + K2 (ln(1 - b2) - ln(1 - B2_STAR))^2
(+ lr_law's deterministic noise): beta2 = B2_STAR is best at every size, so a
sweep over ``sweep.b2_values`` must pick it. ``fake_train`` has
lm.trainer.train's signature (no JAX) and records the b2 each run trained at
in ``SEEN`` (run dir name -> train.b2 of its config).
"""
import math
import os

from tests.helpers import lr_law

B2_STAR, K2 = 0.99, 0.05
SEEN = {}


def penalty(b2: float) -> float:
  return K2 * (math.log(1 - b2) - math.log(1 - B2_STAR))**2


def fake_train(config, workdir, **kwargs):
  out = lr_law.fake_train(config, workdir, **kwargs)
  b2 = float(config["train"]["b2"])
  SEEN[os.path.basename(os.path.normpath(workdir))] = b2
  if "eval_loss" in out:
    out = dict(out, eval_loss=out["eval_loss"] + penalty(b2),
               train_loss=out["train_loss"] + penalty(b2))
  return out
