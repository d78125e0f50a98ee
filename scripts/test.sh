#!/usr/bin/env bash
# Builds spikegrad (Release; CUDA on when nvcc is found) and runs the test suite.
# Usage: scripts/test.sh [extra ctest args]     env: BUILD_DIR (default build), JOBS (default nproc)
# CUDA tests report as skipped on a machine without a GPU. Long checks: ctest -L slow.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup_deps.sh

configure_build
# ctest runs one test process per core; OpenMP inside each would oversubscribe the machine.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
ctest --test-dir "$BUILD_DIR" --output-on-failure -LE slow -j "$JOBS" "$@"
