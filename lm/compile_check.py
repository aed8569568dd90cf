r"""Will this run fit the accelerator? Compile it for the target, without one.

  python -m lm.compile_check --config=lm/configs/tiny.py --target=v5e-8 \
      [--config.train.batch_size=256 ...] [--memory_fraction=0.9] [--json=PATH]

TPU targets (v4-8, v5p-8, v5p-16, v5e-8, v6e-8, any v5e:2x4-style topology):
compiles the run's real train and eval steps (``lm.step``) with its mesh and
shardings for the target topology (``lm.accel.aot``; needs
``pip install -e '.[tpu]'``) and prints per-chip memory (arguments,
temporaries, total, against HBM), XLA's FLOPs next to the project's counted
FLOPs and the compile times. GPU targets (h100, 8xh100, h200, a100-40gb,
a100-80gb): the analytic memory model (``lm.accel.memory_model``). Either
way it then prints the cheapest (per-device micro-batch, train.grad_accum,
model.remat) that fits in ``--memory_fraction`` of the device memory, with
the same global batch (``lm.accel.choose``), and exits 0; a run that fits at
no setting is one ``error:`` line (exit 2).
"""
from absl import flags

from lm import cli
from lm import config as config_lib
from lm import flops as flops_lib
from lm.accel import choose, memory_model, verdict_cache
from lm.accel.spec import spec_from_config
from lm.accel.targets import get_target
from lm.config import ConfigError
from lm.config import flags as config_flags

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "lm config file (lm/configs/*.py).", lock_config=True)
_TARGET = flags.DEFINE_string(
    "target", None, "v5e-8, v5p-8, v5e:2x4, 8xh100, ... (lm.accel.targets).")
_FRACTION = flags.DEFINE_float("memory_fraction", 0.9, "Usable share of the "
                               "device memory.", lower_bound=0.01,
                               upper_bound=1.0)
_WORKERS = flags.DEFINE_integer("compile_workers", 1, "Processes compiling "
                                "side by side.", lower_bound=1)
_COMPILE = flags.DEFINE_bool("compile", True, "TPU targets: compile (needs "
                              "'.[tpu]'); --nocompile: memory model only.")
_JSON = flags.DEFINE_string("json", None, "Also write the report here.")
_PROGRESS = flags.DEFINE_bool("progress", True, "Progress bar.")

REPORT_COMPILE_FACTOR = 4.0  # compile the configured run up to 4 x the limit
BYTE_VOCAB = 257   # lm.data.tokenizers.ByteTokenizer: 256 bytes + EOS


def _vocab(data) -> int:
  if data.tokenizer == "byte":
    return BYTE_VOCAB
  return int(data.sp_vocab_size)


def _gib(x: float) -> str:
  return f"{x / 2 ** 30:.3f} GiB"


def counted_flops(spec, convention: str):
  """Counted FLOPs per device of what XLA's cost_analysis counts: one
  micro-batch's forward + backward (it counts a loop body once: the
  steps_per_call scan, the grad_accum scan and the eval lax.map each run
  their body many times) under ``convention`` and as exact matmuls x 3, and
  one eval batch's exact forward matmuls."""
  m, T = spec.model, spec.seq_len
  n = 1
  for s in spec.mesh_shape:
    n *= s
  rows = spec.batch_size / spec.grad_accum
  conv = flops_lib.flops_per_token(m, T, convention) * rows * T / n
  exact = 3 * flops_lib.exact_matmul_flops(m, T) * rows / n
  eval_exact = flops_lib.exact_matmul_flops(m, T) * spec.eval_batch_size / n
  return conv, exact, eval_exact


def report_lines(spec, target, verdict, convention: str):
  """What the compiler said about ``spec`` (TPU) or the model (GPU)."""
  limit = _FRACTION.value * target.hbm_bytes
  est = memory_model.estimate(spec)
  lines = [f"target: {target.describe()}",
           f"run as configured: per-device micro-batch x accumulation = "
           f"{spec.setting()}, mesh "
           f"{dict(zip(spec.mesh_axes, spec.mesh_shape))}"]
  if verdict is None:
    lines.append(f"  modelled (lm.accel.memory_model): train "
                 f"{_gib(est.train_bytes)}, eval {_gib(est.eval_bytes)} per "
                 f"device vs {_gib(target.hbm_bytes)} ({_gib(limit)} usable): "
                 + ("fits" if est.peak_bytes <= limit else "does NOT fit"))
    return lines
  if "error" in verdict:
    lines.append(f"  compiler: {verdict['error'][:300]}")
    return lines
  r = verdict["result"]
  for prog in ("train", "eval"):
    m = r[prog]
    lines.append(
        f"  {prog} step: arguments {_gib(m['argument_bytes'])}, outputs "
        f"{_gib(m['output_bytes'] - m['alias_bytes'])} (not aliased), "
        f"temporaries {_gib(m['temp_bytes'])}, code {_gib(m['code_bytes'])}"
        f", total {_gib(m['total_bytes'])} per chip; compiled in "
        f"{r[prog + '_compile_s']:.1f} s")
  fits = r["peak_bytes"] <= limit
  lines.append(f"  peak {_gib(r['peak_bytes'])} per chip vs HBM "
               f"{_gib(target.hbm_bytes)} ({_gib(limit)} usable at "
               f"{_FRACTION.value:.0%}): {'fits' if fits else 'does NOT fit'}"
               f"; memory model {_gib(est.peak_bytes)} "
               f"({est.peak_bytes / r['peak_bytes'] - 1:+.1%})")
  conv, exact, eval_exact = counted_flops(spec, convention)
  tf, ef = r.get("train_xla_flops"), r.get("eval_xla_flops")
  if tf:
    lines.append(f"  FLOPs per chip of one micro-batch step (XLA counts each "
                 f"loop body once): XLA {tf:.4g}; counted {conv:.4g} "
                 f"({convention}), exact matmuls x 3 {exact:.4g} (XLA / exact"
                 f" = {tf / exact:.3f})")
  if ef:
    lines.append(f"  FLOPs per chip of one eval batch: XLA {ef:.4g}; exact "
                 f"forward matmuls {eval_exact:.4g} (XLA / exact = "
                 f"{ef / eval_exact:.3f})")
  return lines


def main(argv):
  del argv
  if _CONFIG.value is None:
    raise ConfigError("--config=<lm config .py> is required")
  if not _TARGET.value:
    raise ConfigError("--target=<v5e-8 | v5p-8 | v5e:2x4 | 8xh100 | ...> is "
                      "required")
  target = get_target(_TARGET.value)
  cfg = config_lib.from_config_dict(_CONFIG.value, _vocab(_CONFIG.value.data))
  spec = spec_from_config(cfg, target.n_devices)
  name = _CONFIG.value.get("name") or "as configured"
  # First the setting it would use (an oversized run is refused here, before
  # any long compile), then the run as configured, compiled unless the model
  # puts it far beyond the target (the compile would only say "no").
  (best,) = choose.choose([(name, spec)], target, fraction=_FRACTION.value,
                          workers=_WORKERS.value, progress=_PROGRESS.value,
                          compile=_COMPILE.value)
  verdict = None
  limit = _FRACTION.value * target.hbm_bytes
  modelled = memory_model.estimate(spec).peak_bytes
  if (target.compilable and _COMPILE.value
      and modelled <= REPORT_COMPILE_FACTOR * limit):
    verdict = verdict_cache.verdicts([(spec, target)], progress=_PROGRESS.value,
                                     desc=f"compile for {target.name}")[0]
  lines = report_lines(spec, target, verdict, cfg.train.flop_convention)
  if target.compilable and _COMPILE.value and verdict is None:
    lines.append(f"  not compiled: modelled at {_gib(modelled)} per device, "
                 f"over {REPORT_COMPILE_FACTOR:g} x the usable memory")
  lines.append(
      f"setting for {target.name}: per-device micro-batch x accumulation = "
      f"{best.spec.setting()} (--config.train.grad_accum="
      f"{best.spec.grad_accum} --config.model.remat={best.spec.model.remat})"
      f", {_gib(best.bytes_per_device)} per device ({best.how}), global "
      f"batch {spec.batch_size} unchanged"
      + (f"; tried and too big: {', '.join(best.tried)}" if best.tried else ""))
  print("\n".join(lines))
  if _JSON.value:
    verdict_cache.write_json_atomic(_JSON.value, {
        "target": target.name, "spec": spec.to_dict(), "verdict": verdict,
        "choice": best.to_dict(),
        "toolchain": verdict_cache.toolchain() if target.compilable else None})
  return 0


if __name__ == "__main__":
  cli.run(main)
