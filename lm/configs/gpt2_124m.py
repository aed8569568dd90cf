"""GPT-2 124M shapes (benchmarks/train_throughput.py --preset=gpt2_124m) as
an lm config: L12 d768 12 heads, GELU MLP d_ff 3072, tied 50304 vocab,
T=1024, bf16 compute, 256 sequences per step (32 per chip on 8 chips).

For ``python -m lm.compile_check --config=lm/configs/gpt2_124m.py
--target=v5e-8`` (issue 22); training it needs a SentencePiece corpus.
"""
from lm.config import default_config_dict


def get_config():
  c = default_config_dict(
      model=dict(d_model=768, n_layers=12, n_heads=12, d_ff=3072, mlp="gelu",
                 tie_embeddings=True, dtype="bfloat16", param_dtype="float32"),
      data=dict(source="default", tokenizer="sentencepiece",
                sp_vocab_size=50304, seq_len=1024),
      train=dict(batch_size=256, steps=1000, warmup_steps=100,
                 steps_per_call=10, eval_tokens=262_144, eval_batch_size=64),
  )
  c.name = "gpt2_124m"
  return c
