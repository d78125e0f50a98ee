#!/usr/bin/env bash
# Runs the Google Benchmark suite (every bench/bench_*.cpp binary, or those whose name contains a filter),
# keeps each binary's results as JSON, and prints one markdown section for docs/perf.md: device, date,
# commit, the command, and one table per binary (scripts/bench_to_markdown.py). Benchmarks that skip (no
# CUDA device) are listed as skipped. The human-readable console output goes to stderr, the markdown to stdout.
#
# Usage: scripts/bench.sh [--no-build] [--append FILE] [NAME_FILTER] [-- BENCHMARK_ARGS...]
#   NAME_FILTER     run only the binaries whose name contains it, e.g. `train_step` or `conv`
#   BENCHMARK_ARGS  given to every binary, e.g. --benchmark_filter=Cpu --benchmark_min_time=0.2
#   --append FILE   also append the section to FILE (e.g. docs/perf.md)
#   --no-build      run the binaries already in $BUILD_DIR/bench (by default the bench targets are configured
#                   and built first, so the figures belong to the commit the section names)
# env: BUILD_DIR (default build), JOBS (default nproc), BENCH_OUT (folder for the JSON files, default
#      $BUILD_DIR/bench-results/<UTC date-time>)
set -euo pipefail
cd "$(dirname "$0")/.."

command_line="scripts/bench.sh"
[ -n "${BUILD_DIR:-}" ] && command_line="BUILD_DIR=$BUILD_DIR $command_line"
for a in "$@"; do command_line+=" $(printf '%q' "$a")"; done

build=1
append=""
filter=""
bench_args=()
while (($#)); do
  case "$1" in
    --no-build) build=0 ;;
    --append)
      [ $# -ge 2 ] || { echo "bench.sh: --append needs a file" >&2; exit 2; }
      append="$2"
      shift
      ;;
    --) shift; bench_args=("$@"); break ;;
    -h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "bench.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *)
      [ -z "$filter" ] || { echo "bench.sh: one NAME_FILTER only, got '$filter' and '$1'" >&2; exit 2; }
      filter="$1"
      ;;
  esac
  shift
done

BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}

names=()
for src in bench/bench_*.cpp; do
  name=$(basename "$src" .cpp)
  if [[ "$name" == *"$filter"* ]]; then names+=("$name"); fi
done
((${#names[@]})) || { echo "bench.sh: no bench/bench_*.cpp matches '$filter'" >&2; exit 2; }

if ((build)); then
  source scripts/setup_deps.sh
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DSPIKEGRAD_BUILD_BENCH=ON >"$BUILD_DIR.configure.log" 2>&1 || {
    cat "$BUILD_DIR.configure.log" >&2
    exit 1
  }
  cmake --build "$BUILD_DIR" -j "$JOBS" --target "${names[@]}" >&2
fi

out_dir=${BENCH_OUT:-$BUILD_DIR/bench-results/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out_dir"
json_files=()
failed=0
for name in "${names[@]}"; do
  bin="$BUILD_DIR/bench/$name"
  [ -x "$bin" ] || { echo "bench.sh: $bin is missing (build it, or drop --no-build)" >&2; exit 1; }
  json="$out_dir/$name.json"
  shown="$name"
  for a in "${bench_args[@]}"; do shown+=" $(printf '%q' "$a")"; done
  echo "== $shown" >&2
  # The exact arguments are kept beside the JSON so the table can show how each binary was run.
  printf '%s' "$shown" >"$json.args"
  if ! "$bin" --benchmark_out="$json" --benchmark_out_format=json "${bench_args[@]}" >&2; then
    echo "bench.sh: $name exited with an error; its table will say so" >&2
    failed=1
  fi
  json_files+=("$json")
done

md_args=(--command "$command_line" --build-dir "$BUILD_DIR")
[ -n "$append" ] && md_args+=(--append "$append")
python3 scripts/bench_to_markdown.py "${md_args[@]}" "${json_files[@]}"
echo "bench.sh: JSON results in $out_dir" >&2
exit $failed
