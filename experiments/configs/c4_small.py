"""IsoFLOP sweep on C4 (or lm1b) for accelerators: 1e17-1e19 FLOPs.

  python -m experiments.isoflop --config=experiments/configs/c4_small.py \
      --config.lm.data.tfds_data_dir=/data/tensorflow_datasets --workdir=...

Needs the prepared tfds dataset (array_record) for training; ``--plan_only``
needs nothing (the vocab size comes from data.sp_vocab_size). For lm1b:
``--config.lm.data.tfds_name=lm1b``.

Cost: 5 budgets x 5 sizes = 5 x (1e17 + 3e17 + 1e18 + 3e18 + 1e19) ~ 7.2e19
counted FLOPs, ~50 hours on one H100 at 400 TFLOP/s effective; drop the
largest budget (--config.sweep.budgets='(1e17,3e17,1e18,3e18)') for ~15 hours.
"""
import os

from experiments import planner
from lm.config import default_config_dict
from lm.config.config_dict import ConfigDict


def get_config():
  c = ConfigDict()
  c.name = "c4_small"
  c.lm = default_config_dict(
      model=dict(mlp="swiglu", tie_embeddings=True, qk_norm=False,
                 dtype="bfloat16", param_dtype="float32"),  # bf16 compute
      data=dict(
          source="tfds", tfds_name="c4/en:3.1.0",
          tfds_data_dir=os.path.expanduser("~/tensorflow_datasets"),
          tfds_train_split="train", tfds_val_split="validation",
          text_key="text", tokenizer="sentencepiece", sp_vocab_size=32000,
          # SentencePiece trains on the first 64 MB of the (shuffled) train
          # split (lm.data.tfds_source); 64 MB yields the full 32k pieces.
          max_corpus_bytes=64_000_000, seq_len=1024,
          # Token cache of the first 40M of c4/en's 365M train records
          # (~17B tokens, ~34 GB as uint16): the largest run trains on 14.2B
          # tokens, so no run repeats data; tokenizing all of c4 would take
          # ~10x the disk and time. Validation: all 365k records.
          tfds_max_records=40_000_000),
      # 4M validation tokens (4096 rows), the same for every run.
      train=dict(steps_per_call=10, log_every=100, eval_every=0,
                 eval_tokens=4_194_304, eval_batch_size=64, ckpt_every=1000,
                 progress=True, weight_decay=0.1, min_lr_ratio=0.1, seed=0),
  )
  c.sweep = planner.default_sweep(
      budgets=(1e17, 3e17, 1e18, 3e18, 1e19),
      # PaLM App. B 6N + 12 L d T: at T=1024 the attention term is 10-30% of
      # the FLOPs of these 10M-1B models, which 6N would ignore; N is then
      # reported as total params (Hoffmann et al. 2022).
      flop_convention="attention_inclusive",
      param_convention="total",
      # 8x: D/N ~ 160 to ~2.5 around Chinchilla's 20 (16x would push the
      # largest size below 2 tokens per parameter).
      n_sizes=5, size_range=8.0,
      center="prior",
      # Chinchilla: N_opt = sqrt(C / 120) (Hoffmann et al. 2022, Table 3).
      prior_k=1.0, prior_a=0.5, prior_c0=120.0,
      seq_len=1024,
      # Marin isoflop_sweep.py: batch = power of two giving ~target_steps
      # steps, halved while 0.33 sqrt(B)/d > lr_max, within [32, 512] seqs
      # (32k-512k tokens per step).
      batch_rule="marin", target_steps=8192, min_batch_size=32,
      max_batch_size=512,
      lr_rule="marin", lr_constant=0.33, lr_max=1e-2,
      warmup_fraction=0.05, min_warmup_steps=100,
      tolerance=0.01,
      min_steps=1000,
      min_tokens_per_param=2.0, max_tokens_per_param=1000.0,
      # Plan-table estimate only: H100 bf16 dense peak 989e12 (lm.hardware)
      # x ~40% MFU.
      est_flops_per_s=4e14,
  )
  c.analysis = ConfigDict(dict(bootstrap=1000))
  return c
