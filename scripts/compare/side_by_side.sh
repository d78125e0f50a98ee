#!/usr/bin/env bash
# spikegrad vs PyTorch + SpikingJelly on the same VGGSNN training step, in one session on the lent GPU machine.
# Run there from the repo root with carry ["device-bundle", ".whl"] (scripts/compare/README.md), usually through
# `bash scripts/gpu/on_device.sh compare`.
#   1. spikegrad: device-bundle/bin/bench_train_step, benchmarks BM_TrainStepCuda/vggsnn_sj{,_tmi}/B:$BATCH/T:$TIME_STEPS
#      (ATan surrogate, Adam 1e-3, CE and CE + 0.05*MI) -> $OUT/spikegrad_train_step.json
#   2. PyTorch + SpikingJelly: scripts/compare/sj_vggsnn_step.py, CE then --tmi, once per SpikingJelly carried in
#      .whl/sj-*/ (0.0.0.0.14 with its cupy backend first, then 2.x with its automatic CUDA/Triton choice), each
#      in a fresh process -> $OUT/sj_results.jsonl; before them, --check-mi once and --check-neuron (B=16) per
#      SpikingJelly (same loss and gradients as a hand-written spikegrad LIF) -> $OUT/sj_checks.jsonl
#   3. scripts/compare/side_by_side_table.py -> $OUT/side_by_side.md (also printed)
# env: BATCH (64), TIME_STEPS (4), STEPS (50), WARMUP (10), SJ_SITES (default: every /tmp/site-sj-* that env.sh
#      made, oldest version first), SJ_ARGS (more flags for the Python script, e.g. "--no-cudnn-benchmark"),
#      BENCH_ARGS (more flags for bench_train_step, default --benchmark_min_time=2), MODE_BUDGET_S (540)
set -uo pipefail
cd "$(dirname "$0")/../.."
START=$SECONDS
MODE_BUDGET_S=${MODE_BUDGET_S:-540}
export OUT=${OUT:-$PWD/device-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
log() { echo "[$(date -u +%H:%M:%S) +$((SECONDS - START))s] $*" | tee -a "$OUT/side_by_side.log"; }
left() { echo $((MODE_BUDGET_S - (SECONDS - START))); }

source scripts/gpu/env.sh
BIN=$SPIKEGRAD_BUNDLE/bin
# PyTorch runs without the bundle's lib/ (Debian's libz/libgomp) on its library path.
py_ld_path=${LD_LIBRARY_PATH%:"$SPIKEGRAD_BUNDLE/lib"}
BATCH=${BATCH:-64}
TIME_STEPS=${TIME_STEPS:-4}
STEPS=${STEPS:-50}
WARMUP=${WARMUP:-10}
read -r -a sj_args <<<"${SJ_ARGS:-}"
read -r -a bench_args <<<"${BENCH_ARGS:---benchmark_min_time=2}"
if [ -z "${SJ_SITES:-}" ]; then
  SJ_SITES=$(ls -d /tmp/site-sj-* 2>/dev/null | sort -V | tr '\n' ' ')
fi
commands=()

# ---- 1. spikegrad ---------------------------------------------------------------------------------------
sg_json=$OUT/spikegrad_train_step.json
filter="BM_TrainStepCuda/vggsnn_sj(_tmi)?/B:$BATCH/T:$TIME_STEPS/"
cmd=("$BIN/bench_train_step" "--benchmark_filter=$filter" "--benchmark_out=$sg_json" --benchmark_out_format=json
  "${bench_args[@]}")
shown="device-bundle/bin/bench_train_step --benchmark_filter='$filter' --benchmark_out=spikegrad_train_step.json --benchmark_out_format=json ${bench_args[*]}"
commands+=("$shown")
log "spikegrad: $shown"
if [ -x "$BIN/bench_train_step" ]; then
  timeout -k 10 $(($(left) / 3)) "${cmd[@]}" 2>&1 | tee -a "$OUT/side_by_side.log"
  log "bench_train_step exit status ${PIPESTATUS[0]}"
else
  log "no $BIN/bench_train_step (carry device-bundle)"
fi

# ---- 2. PyTorch + SpikingJelly --------------------------------------------------------------------------
sj_jsonl=$OUT/sj_results.jsonl
: >"$sj_jsonl"
[ -n "$SJ_SITES" ] || log "no /tmp/site-sj-*: carry .whl (with .whl/sj-<version>/spikingjelly-*.whl) so env.sh installs it"
checks=$OUT/sj_checks.jsonl
: >"$checks"
first_site=${SJ_SITES%% *}
[ -n "$first_site" ] && LD_LIBRARY_PATH=$py_ld_path PYTHONPATH=$first_site${PYTHONPATH:+:$PYTHONPATH} python3 scripts/compare/sj_vggsnn_step.py --check-mi \
  2>>"$OUT/side_by_side.log" | tail -1 | tee -a "$checks"
for site in $SJ_SITES; do
  # Same loss and gradients as a hand-written spikegrad LIF, with this SpikingJelly's CUDA backend (B=16).
  log "neuron check: PYTHONPATH=$site python3 scripts/compare/sj_vggsnn_step.py --check-neuron --batch 16 ${sj_args[*]}"
  LD_LIBRARY_PATH=$py_ld_path PYTHONPATH=$site${PYTHONPATH:+:$PYTHONPATH} timeout -k 10 120 python3 scripts/compare/sj_vggsnn_step.py --check-neuron \
    --batch 16 "${sj_args[@]}" 2>>"$OUT/side_by_side.log" | tail -1 | tee -a "$checks"
  for tmi in "" --tmi; do
    budget=$(($(left) - 30))
    if ((budget < 60)); then log "skipping $(basename "$site") ${tmi:-CE}: too little time left"; continue; fi
    shown="PYTHONPATH=$site python3 scripts/compare/sj_vggsnn_step.py --batch $BATCH --time-steps $TIME_STEPS --steps $STEPS --warmup $WARMUP $tmi ${sj_args[*]}"
    commands+=("$shown")
    log "PyTorch + SpikingJelly: $shown"
    LD_LIBRARY_PATH=$py_ld_path PYTHONPATH=$site${PYTHONPATH:+:$PYTHONPATH} timeout -k 10 "$budget" python3 scripts/compare/sj_vggsnn_step.py \
      --batch "$BATCH" --time-steps "$TIME_STEPS" --steps "$STEPS" --warmup "$WARMUP" $tmi "${sj_args[@]}" \
      >"$OUT/.sj_stdout" 2>>"$OUT/side_by_side.log"
    rc=$?
    line=$(tail -1 "$OUT/.sj_stdout")
    rm -f "$OUT/.sj_stdout"
    echo "$line" | tee -a "$OUT/side_by_side.log"
    if [[ "$line" == "{"* ]]; then
      echo "$line" >>"$sj_jsonl"
    else
      log "sj_vggsnn_step.py exit status $rc, no result (its stderr is in side_by_side.log)"
      printf '{"failed": true, "site": "%s", "loss": "%s", "exit_status": %d}\n' "$(basename "$site")" \
        "$([ -n "$tmi" ] && echo CE+0.05*MI || echo CE)" "$rc" >>"$sj_jsonl"
    fi
  done
done

# ---- 3. table -------------------------------------------------------------------------------------------
commit=$(sed -n 's/^commit: //p' "$SPIKEGRAD_BUNDLE/MANIFEST.txt" 2>/dev/null)
table_args=(--spikegrad "$sg_json" --sj "$sj_jsonl" --checks "$checks" --batch "$BATCH" --time-steps "$TIME_STEPS" --commit "${commit:-unknown}")
for c in "${commands[@]}"; do table_args+=(--command "$c"); done
python3 scripts/compare/side_by_side_table.py "${table_args[@]}" | tee "$OUT/side_by_side.md"
log "done: $OUT/side_by_side.md"
