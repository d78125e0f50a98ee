#!/usr/bin/env bash
# The emulated CUDA tests under AddressSanitizer + UndefinedBehaviorSanitizer: a separate build tree
# ($ASAN_BUILD_DIR, default build-emu-asan) with SPIKEGRAD_SANITIZE=ON, then the suite under the reverse
# thread order. Under ASan the guard bytes around every cudaMalloc and __shared__ buffer are poisoned, so
# an out-of-bounds read or write stops the test at the access, naming the kernel's source line.
# Run by `ctest --test-dir build-emu -L asan` (label slow: not part of scripts/test.sh), or directly.
# Usage: tests/cudaemu/run_sanitized.sh [ctest args]      env: ASAN_BUILD_DIR, JOBS
set -euo pipefail
cd "$(dirname "$0")/../.."
ASAN_BUILD_DIR=${ASAN_BUILD_DIR:-build-emu-asan}
JOBS=${JOBS:-$(nproc)}
cmake -S . -B "$ASAN_BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPIKEGRAD_CUDA_EMULATION=ON \
  -DSPIKEGRAD_SANITIZE=ON >"$ASAN_BUILD_DIR.configure.log" 2>&1 || {
  cat "$ASAN_BUILD_DIR.configure.log"
  exit 1
}
cmake --build "$ASAN_BUILD_DIR" -j "$JOBS" --target spikegrad_tests
# Fibers switch stacks: ASan is told (BOOST_USE_ASAN); leak checks stay on.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_stack_use_after_return=0:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export OMP_NUM_THREADS=1
ctest --test-dir "$ASAN_BUILD_DIR" --output-on-failure -R '\.reverse$' -LE slow -j "$JOBS" "$@"
