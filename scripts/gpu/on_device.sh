#!/usr/bin/env bash
# Runs spikegrad's carried binaries on the lent GPU machine, from the repo root, one mode per call (each fits
# the tool's 10-minute limit). Build and stage them first HERE with scripts/gpu/build_for_device.sh, then call
# the device tool with carry ["device-bundle"] (plus ".whl" for `compare`), timeout_s 600:
#   run(command="bash scripts/gpu/on_device.sh tests",    carry=["device-bundle"])
#   run(command="bash scripts/gpu/on_device.sh sanitize", carry=["device-bundle"])
#   run(command="bash scripts/gpu/on_device.sh bench",    carry=["device-bundle"])
#   run(command="bash scripts/gpu/on_device.sh compare",  carry=["device-bundle", ".whl"])
# Two modes in one call (saves a machine start) with half the budget each:
#   run(command="MODE_BUDGET_S=270 bash scripts/gpu/on_device.sh tests; MODE_BUDGET_S=270 bash scripts/gpu/on_device.sh sanitize", ...)
#
#   on_device.sh info                     machine, driver, bundle, libraries; nothing else
#   on_device.sh tests [GTEST_FILTER]     spikegrad_tests (default: all, CUDA tests included) -> $OUT/tests.xml;
#                                         under SPIKEGRAD_REQUIRE_CUDA=1, so a CUDA that does not start fails
#                                         every CUDA test (naming the CUDA error) instead of skipping it
#   on_device.sh sanitize [GTEST_FILTER]  compute-sanitizer over the CUDA tests (default filter
#                                         *Cuda*:*CUDA*:*cuda*) -> $OUT/sanitize_<tool>.log, also under
#                                         SPIKEGRAD_REQUIRE_CUDA=1
#                                         env SANITIZER_TOOL=memcheck|racecheck|initcheck|synccheck (memcheck)
#   on_device.sh bench [NAME] [-- ARGS]   bench_* binaries whose name contains NAME (default all), each with
#                                         ARGS (default --benchmark_filter='Cuda|cudnn') -> $OUT/bench.md
#                                         (scripts/bench_to_markdown.py) and $OUT/bench_json.tar.gz
#   on_device.sh compare                  scripts/compare/side_by_side.sh (spikegrad vs PyTorch + SpikingJelly)
#
# Every mode prints the GPU (nvidia-smi), the commit, timestamps, and stops its work before MODE_BUDGET_S
# seconds (default 540) so that what it wrote under $OUT comes back. $OUT defaults to ./device-out elsewhere.
set -uo pipefail
cd "$(dirname "$0")/../.."
START=$SECONDS
MODE_BUDGET_S=${MODE_BUDGET_S:-540}
export OUT=${OUT:-$PWD/device-out}
mkdir -p "$OUT"

log() { echo "[$(date -u +%H:%M:%S) +$((SECONDS - START))s] $*"; }
left() { echo $((MODE_BUDGET_S - (SECONDS - START))); }
die() { log "on_device.sh: $*"; exit 1; }

mode=${1:-info}
shift || true

source scripts/gpu/env.sh
BUNDLE=$SPIKEGRAD_BUNDLE
BIN=$BUNDLE/bin

header() {
  log "mode: $mode $*"
  nvidia-smi --query-gpu=name,driver_version --format=csv 2>&1 || echo "nvidia-smi failed"
  local commit
  commit=$(git rev-parse --short HEAD 2>/dev/null) && [ -n "$(git status --porcelain 2>/dev/null)" ] &&
    commit="$commit (plus uncommitted changes)"
  echo "working tree commit: ${commit:-unknown (no .git here)}"
  if [ -f "$BUNDLE/MANIFEST.txt" ]; then
    echo "bundle ($BUNDLE/MANIFEST.txt):"
    sed 's/^/  /' "$BUNDLE/MANIFEST.txt"
  else
    echo "no bundle at $BUNDLE (carry device-bundle, made by scripts/gpu/build_for_device.sh)"
  fi
}

need_bundle() {
  [ -x "$BIN/spikegrad_tests" ] || die "no $BIN/spikegrad_tests: run scripts/gpu/build_for_device.sh here and carry device-bundle"
  # The tests run the CLI at the absolute path it had on the build machine (SPIKEGRAD_CLI_PATH).
  local cli
  cli=$(sed -n 's/^cli_path: //p' "$BUNDLE/MANIFEST.txt" 2>/dev/null)
  if [ -n "$cli" ] && [ ! -e "$cli" ]; then
    mkdir -p "$(dirname "$cli")" && ln -s "$BIN/spikegrad" "$cli" && log "linked $cli -> $BIN/spikegrad"
  fi
  local missing
  missing=$(ldd "$BIN"/* 2>/dev/null | grep "not found" | sort -u)
  [ -z "$missing" ] || { echo "$missing"; die "shared libraries not found (see above)"; }
}

case "$mode" in
  info)
    header
    echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
    echo "PYTHONPATH=${PYTHONPATH:-}"
    ldd --version | head -1
    strings /lib/x86_64-linux-gnu/libstdc++.so.6 2>/dev/null | grep -o '^GLIBCXX_[0-9.]*' | sort -uV | tail -1
    command -v compute-sanitizer nvcc cmake ctest python3 || true
    python3 -c "import torch, cupy; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cupy', cupy.__version__)" || true
    [ -d "$BIN" ] && for b in "$BIN"/*; do echo "== $(basename "$b")"; ldd "$b" | grep -E "=> |not found" | sed 's/ (0x.*//'; done
    ;;

  tests)
    header "$@"
    need_bundle
    filter=${1:-*}
    log "spikegrad_tests --gtest_filter='$filter' (limit $(left) s)"
    SPIKEGRAD_REQUIRE_CUDA=1 timeout -k 10 "$(left)" "$BIN/spikegrad_tests" --gtest_filter="$filter" \
      --gtest_output="xml:$OUT/tests.xml" \
      2>&1 | tee "$OUT/tests.log"
    rc=${PIPESTATUS[0]}
    ((rc == 124)) && log "stopped at the time limit: the XML is incomplete or missing"
    log "spikegrad_tests exit status $rc"
    sed -n '/Global test environment tear-down/,$p' "$OUT/tests.log" | head -60
    exit "$rc"
    ;;

  sanitize)
    header "$@"
    need_bundle
    filter=${1:-*Cuda*:*CUDA*:*cuda*}
    tool=${SANITIZER_TOOL:-memcheck}
    cs=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer /usr/local/cuda*/compute-sanitizer/compute-sanitizer 2>/dev/null | head -1)
    [ -n "$cs" ] || die "compute-sanitizer not found"
    log "$cs --tool $tool over spikegrad_tests --gtest_filter='$filter' (limit $(left) s)"
    "$BIN/spikegrad_tests" --gtest_filter="$filter" --gtest_list_tests | sed 's/^/  /' | head -60
    # No --leak-check: the caching allocator and the cuBLAS/cuDNN handles keep their memory until exit.
    SPIKEGRAD_REQUIRE_CUDA=1 timeout -k 10 "$(left)" "$cs" --tool "$tool" --error-exitcode 99 --print-limit 200 \
      "$BIN/spikegrad_tests" --gtest_filter="$filter" 2>&1 | tee "$OUT/sanitize_$tool.log"
    rc=${PIPESTATUS[0]}
    ((rc == 124)) && log "stopped at the time limit: narrow the filter"
    ((rc == 99)) && log "compute-sanitizer reported errors"
    log "exit status $rc"
    grep -E "ERROR SUMMARY|LEAK SUMMARY|^\[  (PASSED|FAILED) +\]" "$OUT/sanitize_$tool.log" | tail -20
    exit "$rc"
    ;;

  bench)
    header "$@"
    need_bundle
    name_filter=""
    bench_args=(--benchmark_filter='Cuda|cudnn')
    while (($#)); do
      case "$1" in
        --) shift; bench_args=("$@"); break ;;
        *) name_filter=$1 ;;
      esac
      shift
    done
    tmp=$(mktemp -d)
    jsons=()
    rc=0
    for bin in "$BIN"/bench_*; do
      name=$(basename "$bin")
      [[ "$name" == *"$name_filter"* ]] || continue
      budget=$(($(left) - 20))
      if ((budget < 30)); then log "skipping $name: too little time left"; continue; fi
      shown="$name"
      for a in "${bench_args[@]}"; do shown+=" $(printf '%q' "$a")"; done
      printf '%s' "$shown" >"$tmp/$name.json.args"
      log "== $shown (limit $budget s)"
      timeout -k 10 "$budget" "$bin" --benchmark_out="$tmp/$name.json" --benchmark_out_format=json "${bench_args[@]}" \
        2>&1 | tee -a "$OUT/bench.log"
      r=${PIPESTATUS[0]}
      ((r == 0)) || { log "$name exit status $r"; rc=1; }
      jsons+=("$tmp/$name.json")
    done
    ((${#jsons[@]})) || die "no bench binary matches '$name_filter'"
    cmd="scripts/gpu/on_device.sh bench${name_filter:+ $name_filter} --"
    for a in "${bench_args[@]}"; do cmd+=" $(printf '%q' "$a")"; done
    python3 scripts/bench_to_markdown.py --command "$cmd" --build-dir "$BUNDLE" "${jsons[@]}" | tee "$OUT/bench.md"
    (cd "$tmp" && tar czf "$OUT/bench_json.tar.gz" ./*.json ./*.args 2>/dev/null)
    log "bench done: $OUT/bench.md, $OUT/bench_json.tar.gz"
    exit "$rc"
    ;;

  compare)
    header "$@"
    need_bundle
    MODE_BUDGET_S=$(left) exec bash scripts/compare/side_by_side.sh "$@"
    ;;

  *)
    sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
