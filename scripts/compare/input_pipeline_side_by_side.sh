#!/usr/bin/env bash
# spikegrad's JPEG input pipeline vs PIL + torchvision, per core, on the same files in one session.
#   scripts/compare/input_pipeline_side_by_side.sh <build-dir> [data-dir]
# Builds nothing: <build-dir> must hold bench/bench_input_pipeline (a non-emulated build:
#   cmake --build <build-dir> --target bench_input_pipeline).
#   1. bench_input_pipeline writes its JPEG set once into [data-dir] (default /tmp/spikegrad-input-pipeline; reused
#      when complete), dumps its evaluation outputs there and runs the single-thread benchmarks -> ours.json;
#   2. scripts/compare/input_pipeline_pil.py times PIL + torchvision on the same files (one thread) and prints the
#      table: images/s of both and the ratio, plus the evaluation transform's difference from torchvision.
# Needs python3 with torch, torchvision and Pillow (a developer tool, never a dependency of spikegrad): if torchvision
# is missing, `pip install torchvision` matching the installed torch (CPU wheel).
# env: MIN_TIME (seconds per measurement, default 2).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:?usage: $0 <build-dir> [data-dir]}
DIR=${2:-/tmp/spikegrad-input-pipeline}
MIN_TIME=${MIN_TIME:-2}
BENCH=$BUILD/bench/bench_input_pipeline
[ -x "$BENCH" ] || { echo "no $BENCH: cmake --build $BUILD --target bench_input_pipeline" >&2; exit 1; }
python3 -c "import torch, torchvision, PIL" 2>/dev/null ||
  { echo "python3 needs torch, torchvision and Pillow (pip install torchvision, CPU wheel)" >&2; exit 1; }
mkdir -p "$DIR"
echo "machine: $(grep -c ^processor /proc/cpuinfo) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs));" \
  "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
export SPIKEGRAD_BENCH_JPEG_DIR=$DIR OMP_NUM_THREADS=1
"$BENCH" --benchmark_filter='^BM_(ImageNet|Large|TinyImageNet)' --benchmark_min_time="$MIN_TIME" \
  --benchmark_out="$DIR/ours.json" --benchmark_out_format=json
python3 scripts/compare/input_pipeline_pil.py "$DIR" --ours "$DIR/ours.json" --min-time "$MIN_TIME" --json "$DIR/pil.json"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
