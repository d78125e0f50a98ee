#!/usr/bin/env bash
# Builds spikegrad (Release; CUDA on when nvcc is found) and runs the test suite, then builds the emulated
# CUDA backend (tests/cudaemu) and runs the suite again there, under two thread orders (reverse and
# random), so every CUDA kernel executes even on a machine without a GPU.
# Usage: scripts/test.sh [extra ctest args]
# env: BUILD_DIR (default build), EMU_BUILD_DIR (default build-emu), JOBS (default nproc),
#      SPIKEGRAD_TEST_EMULATION=0 skips the emulated half;
#      SANITIZE=1 adds the ASan + UBSan tier: the emulated tree built with both sanitizers (build-emu-asan/,
#      tests/cudaemu/run_sanitized.sh), which runs the CPU tests and the emulated CUDA tests under them.
# On a machine without a GPU the real-CUDA tests of the first half report as skipped (naming the CUDA
# error); SPIKEGRAD_REQUIRE_CUDA=1 makes such a skip a failure. Long checks: ctest -L slow.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup_deps.sh

configure_build
# ctest runs one test process per core; OpenMP inside each would oversubscribe the machine.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
status=0
ctest --test-dir "$BUILD_DIR" --output-on-failure -LE slow -j "$JOBS" "$@" || status=$?

if [ "${SPIKEGRAD_TEST_EMULATION:-1}" != 0 ]; then
  echo "== emulated CUDA backend: every CUDA kernel on the CPU, thread orders reverse and random =="
  configure_emulated_build --target spikegrad_tests
  ctest --test-dir "$EMU_BUILD_DIR" --output-on-failure -L cudaemu -LE slow -j "$JOBS" "$@" || status=$?
fi
if [ "${SANITIZE:-0}" != 0 ]; then
  echo "== ASan + UBSan: the emulated tree with both sanitizers =="
  bash tests/cudaemu/run_sanitized.sh "$@" || status=$?
fi
exit $status
