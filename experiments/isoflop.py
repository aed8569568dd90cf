r"""Plan and run an IsoFLOP sweep, then fit and report.

  python -m experiments.isoflop --config=experiments/configs/quickstart.py \
      --workdir=runs/quickstart [--plan_only] [--config.sweep.n_sizes=7 ...]
      [--executor=ray [--ray_address=auto|HOST:PORT]]

Re-running the same command resumes: finished runs are skipped, unfinished
ones continue from their checkpoints, failed ones are tried again.
"""
import sys
import time

from absl import flags
from lm.config import flags as config_flags

from lm import cli
from lm.config import ConfigError
from lm import hardware
from lm import config as config_lib
from experiments import planner
from experiments.sweep_config import validate_analysis
from experiments import runners
from experiments.analyze import analyze, summary_text
from experiments.executor import run_sweep

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Sweep config (experiments/configs/*.py).", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Sweep directory.")
_PLAN_ONLY = flags.DEFINE_bool("plan_only", False,
                               "Print the plan table and run nothing.")
_ANALYZE = flags.DEFINE_bool("analyze", True,
                             "Fit and write DIR/report/ after the sweep.")
_BOOTSTRAP = flags.DEFINE_integer("bootstrap", None, "Bootstrap resamples for "
                                  "the fits (default: the config's "
                                  "analysis.bootstrap).", lower_bound=0)
_PROGRESS = flags.DEFINE_bool("progress", True, "Progress bars on terminals.")
_EXECUTOR = flags.DEFINE_string(
    "executor", "local", "Where runs train: 'local' (this process, one after "
    "another) or 'ray' (Ray tasks with sweep.resources_per_run each; needs "
    "pip install -e '.[ray]').")
_RAY_ADDRESS = flags.DEFINE_string(
    "ray_address", None, "--executor=ray: 'auto' or HOST:PORT of a running "
    "Ray cluster; unset: start a private Ray instance on this machine.")


EXIT_RUNS_FAILED = 4  # the sweep finished, some runs are recorded 'failed'
ASSUMED_MFU = 0.4  # for plan-time estimates on accelerators only


def _device_rate(cfg):
  """tokens/s per run on this machine's accelerators (peak x ASSUMED_MFU), or
  None on CPU (the planner's measured 2-core CPU model applies)."""
  import jax
  if cfg.sweep.est_flops_per_s or jax.default_backend() == "cpu":
    return None
  peak, src = hardware.device_peak_flops(dtype=cfg.lm.model.get("dtype",
                                                                "bfloat16"),
                                         strict=False)
  if not peak == peak:  # NaN: unknown device
    return None
  rate = peak * jax.device_count() * ASSUMED_MFU
  print(f"time estimates: {jax.device_count()} x {src} at an assumed "
        f"{ASSUMED_MFU:.0%} MFU")
  return lambda run: rate / (run.flops / run.D)


def _validate_runs(plan, cfg) -> None:
  """Every run's lm config (train.b1, mesh.shape, ...) checked before the
  sweep writes anything: a bad lm setting is one error line, not a sweep that
  stops at its first run."""
  for run in plan.runs:
    try:
      config_lib.from_config_dict(run.lm_config(cfg.lm), vocab_size=256)
    except ConfigError as e:
      raise ConfigError(f"{e} (sweep config section lm, run {run.run_id})"
                        ) from None


def _is_process_0() -> bool:
  """Process 0 of a multi-host job (asked without starting a JAX backend
  where none was started: a Ray driver leaves the devices to its workers)."""
  import jax
  if not jax.distributed.is_initialized():
    return True
  return jax.process_index() == 0


def main(argv):
  del argv
  if _CONFIG.value is None:
    raise ConfigError("--config=<sweep config .py> is required")
  cfg = _CONFIG.value
  validate_analysis(cfg.get("analysis"))  # before a sweep whose fit would fail
  plan = planner.make_plan(cfg,
                           unique_train_tokens=planner.count_unique_tokens(cfg))
  _validate_runs(plan, cfg)
  if _PLAN_ONLY.value:  # planning is local: no jax.distributed needed
    print(planner.format_plan(plan, tokens_per_s=_device_rate(cfg)))
    return
  runners.get(_EXECUTOR.value)  # an unknown name fails before anything starts
  if _RAY_ADDRESS.value and _EXECUTOR.value != "ray":
    raise ConfigError("--ray_address needs --executor=ray")
  if not _WORKDIR.value:
    raise ConfigError("--workdir=<sweep directory> is required")
  t0 = time.time()
  print(planner.format_plan(plan))
  options = {"address": _RAY_ADDRESS.value} if _RAY_ADDRESS.value else {}
  records = run_sweep(cfg, _WORKDIR.value, progress=_PROGRESS.value,
                      executor=_EXECUTOR.value, executor_options=options,
                      plan=plan)
  t_sweep = time.time() - t0
  print(f"sweep finished in {t_sweep:.0f}s -> {_WORKDIR.value}/results.jsonl")
  is_main = _is_process_0()
  failed = [r for r in records if r["status"] == "failed"]
  if failed:  # no fit on an incomplete sweep
    if is_main:
      print(f"error: {len(failed)} run(s) failed (status 'failed' in "
            f"{_WORKDIR.value}/results.jsonl, with their errors); run the "
            "same command again to retry them", file=sys.stderr)
    sys.exit(EXIT_RUNS_FAILED)
  if _ANALYZE.value and is_main:  # one writer per job
    report = analyze(_WORKDIR.value, bootstrap=_BOOTSTRAP.value)
    print(summary_text(report))
    print(f"total {time.time() - t0:.0f}s; report: {_WORKDIR.value}/report/"
          "report.md")


if __name__ == "__main__":
  cli.run(main)
