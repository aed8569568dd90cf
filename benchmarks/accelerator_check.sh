#!/usr/bin/env bash
# One-command device check (issue 13): throughput + MFU at three presets,
# sharded == single on the visible devices, and the quickstart sweep's wall time.
#
#   bash benchmarks/accelerator_check.sh                 # results under $OUT (default ./out)
#   SCALINGLM_CHECK_SMOKE=1 bash benchmarks/accelerator_check.sh   # CPU smoke test, tiny shapes
#
# Runs on a bare accelerator image as it is (jax, flax, optax, orbax; no tfds,
# ml_collections or tensorboardX), from a checkout, without installing it.
# Steps, each under a timeout and all within SCALINGLM_CHECK_BUDGET_S (360 s):
#   env         devices and versions                                  -> env.json
#   throughput  benchmarks/train_throughput.py, presets 30m, gpt2_124m, 354m
#               (bf16, cuDNN attention, xla if cuDNN fails): tokens/s, MFU and
#               the goal (1.25 x compiled PyTorch GPT + flash attention, H100) -> throughput.json
#   sharded     benchmarks/sharded_check.py on the visible devices       -> sharded.json
#   memory      benchmarks/memory_check.py: this device's compiled memory_analysis()
#               against lm.accel.memory_model at three shapes (issue 22)    -> memory.json
#   quickstart  the README quickstart sweep + fit (bootstrap 200), wall time -> quickstart/
# Each step's exit code, status and wall time go to steps/<step>.json, its output
# to logs/<step>.log; a failed step is recorded and the script goes on.
# summary.json gathers everything. Exit 0 only if every step passed.
# Settings: OUT, SCALINGLM_CHECK_SMOKE, SCALINGLM_CHECK_BUDGET_S,
# SCALINGLM_CHECK_PYTHON (default python3). On the device tool: OUT is set for
# you; `bash benchmarks/accelerator_check.sh` from the checkout is the whole command.
set -u

OUT=${OUT:-./out}
mkdir -p "$OUT/steps" "$OUT/logs" && OUT=$(cd "$OUT" && pwd)
cd "$(dirname "$0")/.." || exit 2
PY=${SCALINGLM_CHECK_PYTHON:-python3}
SMOKE=${SCALINGLM_CHECK_SMOKE:-0}
BUDGET=${SCALINGLM_CHECK_BUDGET_S:-360}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/scalinglm_check.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
export SCALINGLM_CACHE=${SCALINGLM_CACHE:-$WORK/cache}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
T0=$(date +%s)
FAILED=0

# run_step NAME CAP_SECONDS COMMAND...: runs COMMAND under min(CAP, time left),
# tees its output to logs/NAME.log and writes steps/NAME.json.
run_step() {
  local name=$1 cap=$2 rc status start wall left
  shift 2
  left=$(( BUDGET - ($(date +%s) - T0) ))
  (( cap > left )) && cap=$left
  start=$(date +%s.%N)
  if (( cap < 10 )); then
    echo "skipped: the ${BUDGET}s budget is spent" > "$OUT/logs/$name.log"
    rc=124; status=skipped
  else
    echo "== $name (timeout ${cap}s): $*"
    if command -v timeout > /dev/null; then
      timeout --kill-after=10 "$cap" "$@" 2>&1 | tee "$OUT/logs/$name.log"
    else
      "$@" 2>&1 | tee "$OUT/logs/$name.log"
    fi
    rc=${PIPESTATUS[0]}
    case $rc in 0) status=ok ;; 124|137) status=timeout ;; *) status=failed ;; esac
  fi
  wall=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  printf '{"step": "%s", "status": "%s", "rc": %d, "wall_s": %s, "timeout_s": %d, "log": "logs/%s.log"}\n' \
    "$name" "$status" "$rc" "$wall" "$cap" "$name" > "$OUT/steps/$name.json"
  echo "-- $name: $status (rc $rc, ${wall}s)"
  [[ $status == ok ]] || FAILED=1
}

if [[ $SMOKE == 1 ]]; then
  # CI smoke test: tiny shapes at a nominal CPU peak (no 2-second peak
  # measurement), 2 simulated CPU devices, the quickstart's plan only (training
  # sweeps are tested in tests/test_experiments.py). Numbers mean nothing.
  # No per-step limits beyond the budget: a loaded CI machine is slow, not broken.
  BUDGET=${SCALINGLM_CHECK_BUDGET_S:-1800}
  CAP_ENV=$BUDGET CAP_TP=$BUDGET CAP_SH=$BUDGET CAP_QS=$BUDGET
  TP_ENV=(SCALINGLM_PEAK_FLOPS=1e11); TP_ARGS=(--tiny --calls=2 --warmup=1)
  SH_ENV=(XLA_FLAGS=--xla_force_host_platform_device_count=2)
  SH_ARGS=(--max_layouts=1)
  CAP_MEM=$BUDGET; MEM_ARGS=(--tiny)
  QS_ARGS=(--config=experiments/configs/tiny_sweep.py --plan_only)
else
  CAP_ENV=60 CAP_TP=210 CAP_SH=90 CAP_QS=240
  TP_ENV=(); TP_ARGS=(); SH_ENV=(); SH_ARGS=()
  CAP_MEM=90; MEM_ARGS=()
  QS_ARGS=(--config=experiments/configs/quickstart.py --bootstrap=200)
fi

run_step env "$CAP_ENV" "$PY" - "$OUT/env.json" <<'EOF'
import json, platform, subprocess, sys
import jax
info = {"python": platform.python_version(), "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "device_kind": jax.devices()[0].device_kind,
        "n_devices": jax.device_count(), "n_processes": jax.process_count()}
for mod in ("jax", "jaxlib", "flax", "optax", "orbax.checkpoint", "numpy"):
  try:
    info[mod] = __import__(mod, fromlist=["_"]).__version__
  except Exception as e:  # recorded, not fatal
    info[mod] = f"unavailable: {e}"
try:
  info["nvidia_smi"] = subprocess.run(
      ["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
       "--format=csv,noheader"], capture_output=True, text=True,
      timeout=20).stdout.strip()
except (OSError, subprocess.SubprocessError):
  pass
json.dump(info, open(sys.argv[1], "w"), indent=2)
print(json.dumps(info, indent=2))
EOF

run_step throughput "$CAP_TP" env "${TP_ENV[@]}" "$PY" benchmarks/train_throughput.py \
  --preset 30m gpt2_124m 354m --dtype=bfloat16 --attention=cudnn \
  --fallback_attention=xla "${TP_ARGS[@]}" --json="$OUT/throughput.json"

run_step sharded "$CAP_SH" env "${SH_ENV[@]}" "$PY" benchmarks/sharded_check.py \
  "${SH_ARGS[@]}" --json="$OUT/sharded.json"

run_step memory "$CAP_MEM" "$PY" benchmarks/memory_check.py "${MEM_ARGS[@]}" \
  --json="$OUT/memory.json"

run_step quickstart "$CAP_QS" "$PY" -m experiments.isoflop "${QS_ARGS[@]}" \
  --workdir="$WORK/quickstart" --progress=False
mkdir -p "$OUT/quickstart"
for f in results.jsonl sweep.json report; do
  [[ -e $WORK/quickstart/$f ]] && cp -r "$WORK/quickstart/$f" "$OUT/quickstart/"
done

"$PY" - "$OUT" "$SMOKE" <<'EOF' || FAILED=1
import glob, json, os, re, sys
out, smoke = sys.argv[1], sys.argv[2] == "1"
def load(path):
  try:
    with open(os.path.join(out, path)) as f:
      return json.load(f)
  except (OSError, ValueError) as e:
    return {"missing": f"{path}: {e}"}
steps = {os.path.basename(p)[:-5]: load(p) for p in sorted(glob.glob(f"{out}/steps/*.json"))}
qs_log = open(f"{out}/logs/quickstart.log", errors="replace").read() \
    if os.path.exists(f"{out}/logs/quickstart.log") else ""
m = re.search(r"sweep finished in (\d+)s", qs_log)
runs = [json.loads(l) for l in open(f"{out}/quickstart/results.jsonl")] \
    if os.path.exists(f"{out}/quickstart/results.jsonl") else []
quickstart = {"step": steps.get("quickstart"), "sweep_wall_s": int(m.group(1)) if m else None,
              "n_runs": len(runs), "statuses": sorted({r.get("status", "?") for r in runs})}
summary = {"smoke": smoke, "steps": steps, "env": load("env.json"),
           "throughput": load("throughput.json"), "sharded": load("sharded.json"),
           "memory": load("memory.json"),
           "quickstart": quickstart}
json.dump(summary, open(f"{out}/summary.json", "w"), indent=2, default=str)
print(f"\n== summary ({'SMOKE: tiny shapes, numbers not comparable' if smoke else summary['env'].get('device_kind', '?')})")
for name, s in steps.items():
  print(f"{name:>11}: {s.get('status')} ({s.get('wall_s')}s)")
for r in summary["throughput"].get("results", []):
  if "error" in r:
    print(f"{r['name']:>11}: FAILED {r['error'][:200]}")
    continue
  goal = summary["throughput"]["goal_factor"] * r["ref_tokens_per_s"]
  print(f"{r['name']:>11}: {r['tokens_per_s_per_device']:>12,.0f} tokens/s/device, MFU {r['mfu']:.1%}, "
        f"attention={r['attention_impl']} | goal >= {goal:,.0f} (1.25 x {r['ref_tokens_per_s']:,.0f}, "
        f"compiled PyTorch GPT + flash attention, one H100, B={r['B']} T={r['T']})"
        + ("" if r.get("tiny") else f" -> {r['tokens_per_s_per_device'] / goal:.2f}x"))
sh = summary["sharded"]
print(f"{'sharded':>11}: passed={sh.get('passed')} on {sh.get('n_devices')} device(s), "
      f"max rel diff {sh.get('max_rel_diff')}")
for r in summary["memory"].get("results", []):
  print(f"{'memory':>11}: {r['name']}: " + (f"FAILED {r['error'][:120]}" if "error" in r else
        f"model vs compiler train {r['train_error']:+.1%}, eval {r['eval_error']:+.1%}"))
sweep_s = quickstart["sweep_wall_s"]
print(f"{'quickstart':>11}: {quickstart['n_runs']} runs, "
      + (f"sweep {sweep_s}s" if sweep_s is not None else "no sweep ran")
      + f", step wall {(quickstart['step'] or {}).get('wall_s')}s (incl. fit)")
print(f"-> {out}/summary.json")
EOF

exit $FAILED
