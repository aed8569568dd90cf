"""Smallest complete IsoFLOP sweep, for tests: 2 budgets x 3 sizes.

Byte-level 1-layer models (~3k-21k params), seq 32, batch 4, 60-900 steps per
run: about a minute on 2 CPU cores, almost all of it per-run setup and
compilation. Losses are too noisy for a meaningful fit; it exercises
planning, execution, resume and the ledger end to end. At C = 1e9 the loss
falls monotonically towards the smallest expressible model (2.9k parameters,
mostly its 257 x 8 embedding; measured 2.65 / 2.77 / 2.81 nats at 2.9k / 7.5k
/ 13k), so only one budget brackets its optimum: the analysis step skips
Approaches 2 and 1 with a warning saying why and reports Approach 3.
"""
from experiments import planner
from lm.config import default_config_dict
from lm.config.config_dict import ConfigDict


def get_config():
  c = ConfigDict()
  c.name = "tiny_sweep"
  c.lm = default_config_dict(
      model=dict(mlp="swiglu", tie_embeddings=True),
      data=dict(source="default", tokenizer="byte", seq_len=32,
                max_corpus_bytes=1_000_000),
      # Validation: 1 % of 1 MB (~300 rows of 33); every run scores the same
      # 4096 target tokens of it.
      train=dict(steps_per_call=50, log_every=50, eval_every=0,
                 eval_tokens=4096, eval_batch_size=128, ckpt_every=100,
                 progress=False, tensorboard=False, seed=0),
  )
  c.sweep = planner.default_sweep(
      budgets=(1e9, 2e9),          # training FLOPs, 6N per token
      flop_convention="6N", param_convention="total",
      n_sizes=3, size_range=4.5,   # -> d_model 8/16/24 and 8/16/32
      center="prior",
      prior_k=2.3, prior_a=0.5, prior_c0=120.0,  # centre 6.6k-9.4k params
      seq_len=32,
      batch_rule="fixed", batch_size=4,
      lr_rule="fixed", lr_constant=1e-2, lr_max=1e-2,
      warmup_fraction=0.1, min_warmup_steps=5,
      tolerance=0.01,
      min_steps=50,
      min_tokens_per_param=0.0, max_tokens_per_param=0.0,
  )
  c.analysis = ConfigDict(dict(bootstrap=20))
  return c
