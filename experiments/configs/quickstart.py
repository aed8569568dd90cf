"""Quickstart IsoFLOP sweep: byte-level models on the embedded corpus, CPU.

9 budgets a factor sqrt(2) apart (1e10 .. 1.6e11 FLOPs, 1.2 decades) on one
shared grid of 6 shapes (1-layer models of 2.9k-70k params, seq 64, batch 8), 3-5
sizes per budget, trained as WSD trunks with (1-sqrt) cooldown branches
(``sweep.scheme='wsd_trunk'``, Hägele et al. 2024): one constant-lr trunk per
shape and seed, one 20 % cooldown per (shape, budget). Each budget's central
size is trained again with a second seed (``sweep.seed_repeats=1``), so the
seed noise that sets Approach 2's interval is measured, not assumed. The plan
(``--plan_only``) prints the runs, the trunks and the compute spent against
independent runs (51 %; 9 trunks: 6 shapes, 3 of them again with seed 1).

Every run scores the same 262,144 held-out tokens (4096 rows of 64 from ~110
whole stdlib files never trained on; one eval_sha256), with a per-document
standard error of ~0.02 nats, and trains on < 0.13 epochs of the corpus.
``python -m benchmarks.wsd_vs_cosine`` trains the same shapes and budgets as
independent cosine runs and compares (docs/wsd.md).
"""
from experiments import planner
from lm.config import default_config_dict
from lm.config.config_dict import ConfigDict


def get_config():
  c = ConfigDict()
  c.name = "quickstart"
  # Base lm config; the planner fills model sizes and train.{batch_size,
  # steps, lr, warmup_steps, flop_convention} per run.
  c.lm = default_config_dict(
      model=dict(mlp="swiglu", tie_embeddings=True),
      # The whole stdlib (~31 MB of byte tokens). 5 % of its bytes, as whole
      # documents (~110 files, ~1.6M tokens), are held out; the other ~29.5M
      # training tokens are 8.3x what the largest run trains on (3.6M), so no
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
          weight_decay=0.1, min_lr_ratio=0.1, seed=0,
          # Warmup, constant lr, then a 20 % (1-sqrt) cooldown to
          # min_lr_ratio (Hägele et al. 2024); sweep.scheme='wsd_trunk' needs it.
          schedule="wsd", cooldown_fraction=0.2, cooldown_shape="1-sqrt"),
  )
  c.sweep = planner.default_sweep(
      # Training FLOPs, counted as 6N per token: 9 budgets a factor sqrt(2)
      # apart over 1.2 decades, so a shape serves up to 9 budgets from one
      # trunk (about half the compute of independent runs).
      budgets=(1e10, 1.41e10, 2e10, 2.83e10, 4e10, 5.66e10, 8e10, 1.13e11,
               1.6e11),
      scheme="wsd_trunk",           # trunks + cooldown branches (docs/wsd.md)
      seed_repeats=1,               # each budget's central size, seed 1 too
      flop_convention="6N",         # Kaplan et al. 2020 Sec. 2.1, N total
      param_convention="total",     # Hoffmann et al. 2022 count embeddings
      n_sizes=6,                    # grid points per budget (shared grid)
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
  # Fit settings (not part of the sweep hash: refit freely). With 3-5 sizes per
  # budget, resampling runs within a budget often leaves 3 distinct points and
  # a meaningless parabola; perturbing losses by the seed noise measured from
  # the seed repeats (Porian et al. 2024) gives the meaningful interval.
  c.analysis = ConfigDict(dict(bootstrap=1000, isoflop_scheme="seed_noise"))
  return c
