"""Tiny byte-level model on the embedded default corpus (~1 minute, 2 CPU cores)."""
from lm.config import default_config_dict


def get_config():
  c = default_config_dict(
      model=dict(d_model=64, n_layers=2, n_heads=4, d_ff=176, mlp="swiglu",
                 tie_embeddings=True),
      # Validation: 2 % of 8 MB of documents (~160k tokens); the eval set is
      # 1024 rows of 128 target tokens spread over it.
      data=dict(source="default", tokenizer="byte", seq_len=128,
                max_corpus_bytes=8_000_000, val_fraction=0.02),
      train=dict(batch_size=16, steps=600, lr=3e-3, warmup_steps=60,
                 steps_per_call=10, log_every=50, eval_every=200,
                 eval_tokens=131_072, eval_batch_size=128, ckpt_every=200),
  )
  c.name = "tiny"
  return c
