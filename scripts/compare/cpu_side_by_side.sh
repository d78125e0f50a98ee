#!/usr/bin/env bash
# spikegrad vs plain PyTorch on the CPU: the same training steps, run alternately in one session (issue 19 item 5).
# For each case, ROUNDS rounds of: spikegrad (bench_train_step, one BM_TrainStepCpu benchmark), PyTorch eager and
# PyTorch torch.compile (scripts/compare/cpu_torch_step.py), each in a fresh process with the same threads, the same
# warm-up (one step) and the same number of timed steps (bench_train_step's registration fixes spikegrad's: 3 at
# VGGSNN B=16, 1 at B=64, 20 for small_cnn; the PyTorch runs copy it from spikegrad's result). Then a markdown
# table (scripts/compare/cpu_side_by_side_table.py): images/s, the ratio spikegrad / PyTorch, peak memory.
#   cases  vggsnn_b16     VGGSNN 3x32x32, B=16, T=4, CE           (BM_TrainStepCpu/vggsnn/B:16/T:4)
#          vggsnn_b64     VGGSNN 3x32x32, B=64, T=4, CE           (BM_TrainStepCpu/vggsnn/B:64/T:4)
#          small_cnn      small_cnn 1x28x28, B=64, T=4, CE        (BM_TrainStepCpu/small_cnn/B:64/T:4)
#          small_cnn_tmi  the same + 0.05 * KDE-MI(first, last conv spikes)  (BM_TrainStepCpu/small_cnn_tmi/...)
# Peak memory is each process's max RSS, measured the same way for both (getrusage of the child); spikegrad's
# allocator peak and PyTorch's RSS right after `import torch` are reported beside it.
# A developer tool: needs a Python with torch (numpy, safetensors for torch_reference.py) and, for torch.compile,
# a C++ compiler. Writes $OUT/cpu_side_by_side.md (also printed), cpu_side_by_side.log and runs/.
# env: OUT (a new /tmp/cpu_sbs.* folder), BENCH (build/bench/bench_train_step), PYTHON (python3),
#      THREADS (all cores: OMP_NUM_THREADS for spikegrad, torch.set_num_threads for PyTorch), ROUNDS (2),
#      CASES ("vggsnn_b16 vggsnn_b64 small_cnn small_cnn_tmi"), COMPILE (1; 0 = eager only),
#      COMPILE_TIMEOUT (240 s for one compile process, compilation included; a failed or timed-out compile is
#      recorded and not retried for that case), RUN_TIMEOUT (300 s for any other process).
# Default: about 4 minutes on a 2-core Xeon (231 s measured with TorchInductor's on-disk cache warm; the first run
# on a machine compiles longer).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
START=$SECONDS
OUT=${OUT:-$(mktemp -d /tmp/cpu_sbs.XXXXXX)}
BENCH=${BENCH:-build/bench/bench_train_step}
PYTHON=${PYTHON:-python3}
THREADS=${THREADS:-$(nproc)}
ROUNDS=${ROUNDS:-2}
CASES=${CASES:-"vggsnn_b16 vggsnn_b64 small_cnn small_cnn_tmi"}
COMPILE=${COMPILE:-1}
COMPILE_TIMEOUT=${COMPILE_TIMEOUT:-240}
RUN_TIMEOUT=${RUN_TIMEOUT:-300}
HELPER=scripts/compare/cpu_side_by_side_table.py
RUNS=$OUT/runs
mkdir -p "$RUNS"
export OMP_NUM_THREADS=$THREADS PYTHONUNBUFFERED=1
log() { echo "[$(date -u +%H:%M:%S) +$((SECONDS - START))s] $*" | tee -a "$OUT/cpu_side_by_side.log"; }

# case -> "bench_train_step benchmark | cpu_torch_step.py flags"
declare -A SPEC=(
  [vggsnn_b16]="BM_TrainStepCpu/vggsnn/B:16/T:4/|--model vggsnn --batch 16 --time-steps 4"
  [vggsnn_b64]="BM_TrainStepCpu/vggsnn/B:64/T:4/|--model vggsnn --batch 64 --time-steps 4"
  [small_cnn]="BM_TrainStepCpu/small_cnn/B:64/T:4/|--model small_cnn --batch 64 --time-steps 4"
  [small_cnn_tmi]="BM_TrainStepCpu/small_cnn_tmi/B:64/T:4/|--model small_cnn --batch 64 --time-steps 4 --tmi"
)
for c in $CASES; do
  [ -n "${SPEC[$c]:-}" ] || { echo "cpu_side_by_side.sh: unknown case '$c' in CASES (known: ${!SPEC[*]})" >&2; exit 2; }
done
if [ ! -x "$BENCH" ]; then
  echo "cpu_side_by_side.sh: no $BENCH; build it (cmake --build <dir> --target bench_train_step) or set BENCH" >&2
  exit 2
fi
if ! "$BENCH" --benchmark_list_tests | grep -q '^BM_TrainStepCpu/small_cnn/'; then
  echo "cpu_side_by_side.sh: $BENCH has no BM_TrainStepCpu/small_cnn benchmark; rebuild it from this tree" >&2
  exit 2
fi
torch_version=$("$PYTHON" -c 'import torch; print(torch.__version__)') ||
  { echo "cpu_side_by_side.sh: $PYTHON cannot import torch (set PYTHON)" >&2; exit 2; }
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
log "OUT=$OUT threads=$THREADS rounds=$ROUNDS cases=[$CASES] compile=$COMPILE torch=$torch_version load=$load_before"

# run CASE ROUND FRAMEWORK LIMIT CMD...: one fresh process, its stdout in .json, max RSS in .rss, status in .rc.
run() {
  local stem=$RUNS/$1.r$2.$3 limit=$4
  shift 4
  timeout -k 10 "$limit" "$PYTHON" "$HELPER" measure "$stem.rss" -- "$@" >"$stem.json" 2>"$stem.err"
  echo $? >"$stem.rc"
  log "$(basename "$stem"): exit $(cat "$stem.rc")"
}

commands=()
for c in $CASES; do
  filter=${SPEC[$c]%%|*}
  read -r -a torch_flags <<<"${SPEC[$c]#*|}"
  sg_cmd=("$BENCH" "--benchmark_filter=^$filter" --benchmark_format=json)
  commands+=("OMP_NUM_THREADS=$THREADS ${sg_cmd[*]}")
  compile_ok=$COMPILE
  for ((r = 1; r <= ROUNDS; r++)); do
    run "$c" "$r" spikegrad "$RUN_TIMEOUT" "${sg_cmd[@]}"
    # The PyTorch runs time as many steps as this spikegrad run did (its registration's fixed count).
    steps=$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["benchmarks"][0]["iterations"])' \
      "$RUNS/$c.r$r.spikegrad.json" 2>/dev/null) || steps=1
    py=("$PYTHON" scripts/compare/cpu_torch_step.py "${torch_flags[@]}" --steps "$steps" --warmup 1
      --threads "$THREADS")
    ((r == 1)) && commands+=("${py[*]} [--compile]")
    run "$c" "$r" eager "$RUN_TIMEOUT" "${py[@]}"
    if [ "$compile_ok" = 1 ]; then
      run "$c" "$r" compile "$COMPILE_TIMEOUT" "${py[@]}" --compile
      if [ "$(cat "$RUNS/$c.r$r.compile.rc")" != 0 ]; then
        compile_ok=0
        log "$c: torch.compile failed or timed out; not retried"
      fi
    fi
  done
done

load_after=$(cut -d' ' -f1-3 /proc/loadavg)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] && commit="$commit (with uncommitted changes)"
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
table_args=(table --runs "$RUNS" --date "$(date -u '+%Y-%m-%d %H:%M UTC')" --cpu "$cpu, $(nproc) cores"
  --threads "$THREADS" --commit "$commit" --torch "$torch_version" --load "$load_before / $load_after")
for c in $CASES; do table_args+=(--case "$c"); done
for c in "${commands[@]}"; do table_args+=(--command "$c"); done
"$PYTHON" "$HELPER" "${table_args[@]}" | tee "$OUT/cpu_side_by_side.md"
log "done in $((SECONDS - START)) s: $OUT/cpu_side_by_side.md"
