"""Quickstart IsoFLOP sweep: byte-level models on the embedded corpus, CPU.

3 budgets x 5-6 sizes (16 runs, ~3k-70k params, seq 64, batch 8; per-run
estimates: ``python -m experiments.isoflop
--config=experiments/configs/quickstart.py --plan_only``). Sizes span D/N
~5-900 per budget so each budget's loss-vs-N curve has an interior minimum.

Every run scores the same 262,144 held-out tokens (4096 rows of 64 from ~110
whole stdlib files never trained on; one eval_sha256), with a per-document
standard error of ~0.02 nats, and trains on < 0.23 epochs of the corpus.
Evaluation is ~8 % of the sweep's FLOPs (not counted in C) and ~6 % of its
training wall time (measured on a heavily shared 2-core machine, where the
16 runs took 647 s of wall time; 279 s on 2 idle cores before the fixed eval
set was added). Minimum eval loss at N = 13k, 21k, 30k for C = 3e10, 1e11,
3e11, each with larger and smaller sizes on both sides (about 0.6-0.8
sqrt(C/120)).
"""
from experiments import planner
from lm.config import default_config_dict
from lm.config_dict import ConfigDict


def get_config():
  c = ConfigDict()
  c.name = "quickstart"
  # Base lm config; the planner fills model sizes and train.{batch_size,
  # steps, lr, warmup_steps, flop_convention} per run.
  c.lm = default_config_dict(
      model=dict(mlp="swiglu", tie_embeddings=True),
      # The whole stdlib (~31 MB of byte tokens). 5 % of its bytes, as whole
      # documents (~110 files, ~1.6M tokens), are held out; the other ~29.5M
      # training tokens are 4.4x what the largest run trains on (6.7M), so no
      # run repeats data (sweep.max_epochs=1, the default, refuses a plan
      # that would).
      data=dict(source="default", tokenizer="byte", seq_len=64,
                max_corpus_bytes=0, val_fraction=0.05),
      train=dict(
          steps_per_call=100,   # optimizer steps fused per jitted call
          log_every=100,        # metrics every 100 steps (one call)
          eval_every=0,         # eval once, at the end (the fitted loss)
          eval_tokens=262_144,  # 4096 rows of 64 spread over the validation split
          eval_batch_size=64,   # 64 eval batches (fastest on CPU), independent of B
          ckpt_every=2000,      # a killed sweep resumes within 2000 steps
          progress=False, tensorboard=False,
          weight_decay=0.1, min_lr_ratio=0.1, seed=0),
  )
  c.sweep = planner.default_sweep(
      budgets=(3e10, 1e11, 3e11),   # training FLOPs, counted as 6N per token
      flop_convention="6N",         # Kaplan et al. 2020 Sec. 2.1, N total
      param_convention="total",     # Hoffmann et al. 2022 count embeddings
      n_sizes=6,                    # targets per budget (deduplicated shapes)
      size_range=12.0,              # largest / smallest target
      center="prior",
      # Tiny byte models are compute-optimal well below Chinchilla's
      # sqrt(C/120): centre at 0.5 sqrt(C/120) (D/N ~ 80 at the centre).
      prior_k=0.5, prior_a=0.5, prior_c0=120.0,
      seq_len=64,
      batch_rule="fixed", batch_size=8,
      lr_rule="marin", lr_constant=0.33, lr_max=1e-2,  # all clamp to 1e-2
      warmup_fraction=0.05, min_warmup_steps=20,
      tolerance=0.01,
      min_steps=200,                # shorter runs never leave warmup noise
      min_tokens_per_param=0.0,
      max_tokens_per_param=1000.0,  # beyond, the corpus would repeat
  )
  # Fit settings (not part of the sweep hash: refit freely). With 5-6 sizes per
  # budget, resampling runs within a budget often leaves 3 distinct points and
  # a meaningless parabola; perturbing losses by the estimated seed noise
  # (Porian et al. 2024) gives the steadier Approach-2 interval.
  c.analysis = ConfigDict(dict(bootstrap=1000,
                                              isoflop_scheme="seed_noise"))
  return c
