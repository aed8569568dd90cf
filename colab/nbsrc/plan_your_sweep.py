"""Cells of colab/plan_your_sweep.ipynb."""
from __future__ import annotations

from typing import List

from nbsrc.common import INSTALL, INSTALL_NOTE, Cell, code, md

PLAN: List[Cell] = [
    md('''
# Plan your sweep: budgets, device, cost, command

Pick FLOP budgets and a device; see the runs the planner would train, how
the FLOP conventions differ for these shapes, what the sweep would cost at an
assumed MFU, and the exact command that launches it on a GPU machine or a
multi-host TPU VM. Nothing is trained here and no data is needed: the base
config is `experiments/configs/c4_small.py` (C4, SentencePiece 32k, T = 1024,
bf16 compute), whose vocabulary size the planner takes from the config.
'''),
    INSTALL_NOTE,
    INSTALL,
    md('''
## Your choices

`DEVICE_KIND` is a `jax.Device.device_kind` string; on a GPU/TPU runtime the
device JAX sees is used. `ASSUMED_MFU` is an **assumption**, not a
measurement: measure yours with `python benchmarks/train_throughput.py` on
the target machine (it prints tokens/s and MFU) and put it here. MFU is
counted with the `attention_inclusive` model FLOPs (PaLM App. B), as
everywhere in this package.
'''),
    code('''
import jax

from experiments import planner
from experiments.configs import c4_small
from lm import flops as flops_lib
from lm import hardware
from lm.config import ModelConfig

BUDGETS = (1e17, 3e17, 1e18)           # training FLOPs, sweep.flop_convention
DEVICE_KIND = "NVIDIA H100 80GB HBM3"  # e.g. "NVIDIA A100-SXM4-80GB", "TPU v5 lite"
N_DEVICES = 1
ASSUMED_MFU = 0.35                     # assumption; measure it (see above)
if jax.default_backend() != "cpu":
  DEVICE_KIND, N_DEVICES = jax.devices()[0].device_kind, jax.device_count()

cfg = c4_small.get_config()
cfg.sweep.budgets = BUDGETS
DTYPE = cfg.lm.model.dtype
peak, peak_source = hardware.device_peak_flops(DEVICE_KIND, DTYPE)
print(f"{N_DEVICES} x {DEVICE_KIND}: peak {peak:.3g} FLOP/s per device "
      f"({peak_source}); assumed MFU {ASSUMED_MFU:.0%}")
'''),
    md('''
## The planned runs

`format_plan` with a throughput model: tokens/s = MFU · n_devices · peak /
(model FLOPs per token). Skipped candidates are listed with their reason.
'''),
    code('''
plan = planner.make_plan(cfg)
VOCAB = planner.vocab_size_of(cfg.lm.data)


def model_of(run):
  return ModelConfig(vocab_size=VOCAB, max_seq_len=run.seq_len,
                     mlp=cfg.lm.model.mlp,
                     tie_embeddings=cfg.lm.model.tie_embeddings,
                     **run.shape).validate()


def model_flops_per_token(run):
  # MFU numerator: 6N + 12 L d T (Chowdhery et al. 2022, PaLM App. B).
  return flops_lib.flops_per_token(model_of(run), run.seq_len,
                                   "attention_inclusive")


def tokens_per_s(run):
  return ASSUMED_MFU * N_DEVICES * peak / model_flops_per_token(run)


print(planner.format_plan(plan, tokens_per_s=tokens_per_s))
'''),
    md('''
## FLOP conventions compared

Per-token training FLOPs of a few shapes under three conventions (all in
`lm.flops.CONVENTIONS`): `6N` (Kaplan et al. 2020; N = all parameters),
`attention_inclusive` (6N_matmul + 12·L·d·T; PaLM App. B) and
`chinchilla_appendix_f` (Hoffmann et al. 2022, App. F as printed, embeddings
and logits included). A budget "C = 1e18" buys a different model under each,
so a fit must name its convention.
'''),
    code('''
CONVS = ("6N", "attention_inclusive", "chinchilla_appendix_f")
shapes = []
by_N = sorted(plan.runs, key=lambda r: r.N)
for label, run in (("plan: smallest", by_N[0]),
                   ("plan: median", by_N[len(by_N) // 2]),
                   ("plan: largest", by_N[-1])):
  shapes.append((label, model_of(run), run.seq_len))
# GPT-2 small: 12 layers, d 768, GELU MLP 4d, vocab 50304, T 1024.
shapes.append(("GPT-2 124M-like", ModelConfig(
    vocab_size=50304, d_model=768, n_layers=12, n_heads=12, d_ff=3072,
    max_seq_len=1024, mlp="gelu").validate(), 1024))
print(f"{'shape':18} {'d':>5} {'L':>3} {'T':>5} " +
      " ".join(f"{c:>22}" for c in CONVS) + "   ratios to 6N")
for label, m, T in shapes:
  f = [flops_lib.flops_per_token(m, T, c) for c in CONVS]
  print(f"{label:18} {m.d_model:5d} {m.n_layers:3d} {T:5d} " +
        " ".join(f"{x:22.4g}" for x in f) + "   " +
        " ".join(f"{x / f[0]:.3f}" for x in f[1:]))
'''),
    md('''
## Estimated cost

Counted FLOPs (the sweep's convention) are what the budgets promise; the
device time follows from the model FLOPs actually executed
(`attention_inclusive`) at the assumed MFU. Other devices for comparison, at
the same MFU (their dense bf16 peaks from `lm.hardware`).
'''),
    code('''
counted = sum(r.flops for r in plan.runs)
model_flops = sum(model_flops_per_token(r) * r.D for r in plan.runs)
print(f"{len(plan.runs)} runs, {counted:.3g} counted FLOPs "
      f"({cfg.sweep.flop_convention}), {model_flops:.3g} model FLOPs "
      f"(attention_inclusive)")
print(f"\\n{'device':28} {'peak (bf16)':>12} {'device-hours':>13} "
      f"{'wall hours on ' + str(N_DEVICES):>16}")
kinds = (DEVICE_KIND, "NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-80GB",
         "TPU v4", "TPU v5 lite", "TPU v5p", "TPU v6 lite")
for kind in dict.fromkeys(kinds):  # in order, without repeats
  p, _ = hardware.device_peak_flops(kind, DTYPE)
  device_s = model_flops / (ASSUMED_MFU * p)
  print(f"{kind:28} {p:12.3g} {device_s / 3600:13.2f} "
        f"{device_s / N_DEVICES / 3600:16.2f}")
print(f"(MFU {ASSUMED_MFU:.0%} assumed for every device; run "
      "benchmarks/train_throughput.py to measure)")
'''),
    md('''
## The command

The data must be prepared first as a tfds dataset (array_record); see
`docs/running_on_accelerators.md`. The printed commands are checked below by
running the same overrides with `--plan_only`, which parses every flag and
plans without touching data.
'''),
    code('''
import shlex

budgets_arg = "(" + ",".join(str(float(b)).replace("e+", "e") for b in BUDGETS) + ")"
sweep_flags = [f"--config.sweep.budgets={budgets_arg}"]
gpu = ["python", "-m", "experiments.isoflop",
       "--config=experiments/configs/c4_small.py",
       "--workdir=$HOME/runs/c4_small",
       "--config.lm.data.tfds_data_dir=$HOME/tensorflow_datasets", *sweep_flags]
print("GPU machine (one process sees all local GPUs):\\n  " + " ".join(
    a if a.startswith(("--workdir", "--config.lm.data")) else shlex.quote(a)
    for a in gpu))

tpu_flags = ["--config.lm.mesh.distributed=True",
             "--config.lm.mesh.shape=(-1,1,1)", "--progress=False"]
remote = " ".join(["python3", "-m", "experiments.isoflop",
                   "--config=experiments/configs/c4_small.py",
                   "--workdir=/mnt/shared/runs/c4_small",
                   "--config.lm.data.tfds_data_dir=/mnt/shared/tensorflow_datasets",
                   *(shlex.quote(a) for a in sweep_flags + tpu_flags)])
print("\\nmulti-host TPU VM (the same command on every worker):\\n"
      "  gcloud compute tpus tpu-vm ssh $TPU_NAME --zone=$ZONE --worker=all "
      f"--command=\\"cd ~/scalinglm && {remote}\\"")

# Check: the same overrides parse and plan (no data, no training); the time
# estimate uses the assumed throughput (est_flops_per_s only affects the table).
est = f"--config.sweep.est_flops_per_s={ASSUMED_MFU * N_DEVICES * peak:.4g}"
check = subprocess.run(
    [sys.executable, "-m", "experiments.isoflop",
     f"--config={c4_small.__file__}", "--plan_only", *sweep_flags,
     *tpu_flags[:2], est], capture_output=True, text=True, timeout=300)
assert check.returncode == 0, check.stderr
print("\\n--plan_only with these overrides:", check.stdout.strip().splitlines()[-1])
'''),
]
