"""Tiny byte-level model on the embedded default corpus (~1 minute, 2 CPU cores)."""
from lm.config import default_config_dict


def get_config():
  c = default_config_dict(
      model=dict(d_model=64, n_layers=2, n_heads=4, d_ff=176, mlp="swiglu",
                 tie_embeddings=True),
      data=dict(source="default", tokenizer="byte", seq_len=128,
                max_corpus_bytes=8_000_000),
      train=dict(batch_size=16, steps=600, lr=3e-3, warmup_steps=60,
                 steps_per_call=10, log_every=50, eval_every=200,
                 eval_batches=8, ckpt_every=200),
  )
  c.name = "tiny"
  return c
