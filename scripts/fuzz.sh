#!/usr/bin/env bash
# The fuzzing tier (issue 16): libFuzzer targets for spikegrad's parsers, built with clang and
# ASan + UBSan into build-fuzz/ (tests/fuzz/CMakeLists.txt), each run for a set time on a copy of its seeds.
#
#   scripts/fuzz.sh [seconds-per-target] [target...]     # default: 600 s each, every target, one after another
#
# Targets: safetensors idx cifar toml_config aedat jpeg (tests/fuzz/fuzz_<target>.cpp). Per target:
#   - the saved regression inputs (tests/fuzz/regressions/<target>/) are replayed first; any failure is a finding;
#   - the seeds (tests/fuzz/corpus/<target>/, plus configs/*.toml for toml_config) are copied into
#     build-fuzz/corpus/<target>/, which libFuzzer grows and later runs resume from;
#   - libFuzzer runs for the given seconds (-timeout=10 s per input is a hang, -rss_limit_mb=2048 an OOM);
#   - executions, exec/s, cov and ft (libFuzzer's final stats) and the findings are printed; crash, timeout, leak
#     and OOM inputs are left in build-fuzz/findings/<target>/, the full log in build-fuzz/logs/<target>.log.
# Exits 1 when any target had a finding, 2 on a usage or build error. Several invocations may run at once on
# different targets (the build is serialised by a lock). Environment: FUZZ_JOBS (build parallelism, default
# nproc), FUZZ_ARGS (extra libFuzzer flags), FUZZ_BUILD_DIR (default build-fuzz).
set -euo pipefail
cd "$(dirname "$0")/.."

ALL_TARGETS=(safetensors idx cifar toml_config aedat jpeg)
SECONDS_PER_TARGET=${1:-600}
[ $# -gt 0 ] && shift
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=("${ALL_TARGETS[@]}")
if ! [[ "$SECONDS_PER_TARGET" =~ ^[0-9]+$ ]] || [ "$SECONDS_PER_TARGET" -lt 1 ]; then
  echo "usage: scripts/fuzz.sh [seconds-per-target] [target...]   (targets: ${ALL_TARGETS[*]})" >&2
  exit 2
fi
for t in "${TARGETS[@]}"; do
  [[ " ${ALL_TARGETS[*]} " == *" $t "* ]] || { echo "fuzz: unknown target '$t' (targets: ${ALL_TARGETS[*]})" >&2; exit 2; }
done

# ---- dependencies (only those missing; idempotent) ----
FUZZ_PACKAGES=(cmake make clang-14 libclang-rt-14-dev libomp-14-dev libeigen3-dev nlohmann-json3-dev zlib1g-dev libcli11-dev libturbojpeg0-dev pkg-config)
missing=()
for p in "${FUZZ_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "fuzz: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# ---- build (serialised between concurrent invocations) ----
BUILD=${FUZZ_BUILD_DIR:-build-fuzz}
mkdir -p "$BUILD"
(
  flock 9
  # Configured every time (seconds): a target added to tests/fuzz/CMakeLists.txt since the last run must exist
  # in the Makefile before make is asked for it, which make's own re-configure check comes too late for.
  CC=clang-14 CXX=clang++-14 cmake -S tests/fuzz -B "$BUILD" -G "Unix Makefiles" >"$BUILD/configure.log" 2>&1 ||
    { cat "$BUILD/configure.log"; exit 2; }
  cmake --build "$BUILD" -j "${FUZZ_JOBS:-$(nproc)}" --target "${TARGETS[@]}" >"$BUILD/build.log" 2>&1 ||
    { tail -50 "$BUILD/build.log"; echo "fuzz: build failed (full log: $BUILD/build.log)" >&2; exit 2; }
) 9>"$BUILD/.build.lock" || exit 2

# ---- run ----
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
mkdir -p "$BUILD/logs"
status=0
summary=()
for t in "${TARGETS[@]}"; do
  findings="$BUILD/findings/$t"
  corpus="$BUILD/corpus/$t"
  log="$BUILD/logs/$t.log"
  mkdir -p "$findings" "$corpus"
  cp -n tests/fuzz/corpus/"$t"/* "$corpus"/ 2>/dev/null || true
  if [ "$t" = toml_config ]; then cp -n configs/*.toml "$corpus"/ 2>/dev/null || true; fi
  flags=(-max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
         -artifact_prefix="$findings/")
  [ -f "tests/fuzz/dict/$t.dict" ] && flags+=(-dict="tests/fuzz/dict/$t.dict")
  [ "$t" = cifar ] && flags+=(-max_len=10000)  # room for 2-3 records of 3073/3074 bytes
  [ "$t" = toml_config ] && flags+=(-close_fd_mask=2)  # the parser's error lines; libFuzzer keeps its own output
  # shellcheck disable=SC2206
  flags+=(${FUZZ_ARGS:-})

  # The inputs are written as files (the readers take paths) under a folder in memory where there is one;
  # a crashed run cannot remove its own, so this one is removed here.
  tmp_parent=/tmp
  [ -d /dev/shm ] && [ -w /dev/shm ] && tmp_parent=/dev/shm
  export SPIKEGRAD_FUZZ_TMP="$tmp_parent/spikegrad-fuzz-$t-$$"
  found=0
  : >"$log"
  touch "$BUILD/logs/$t.start"  # artifacts newer than this are this run's
  regressions=(tests/fuzz/regressions/"$t"/*)
  if [ -e "${regressions[0]}" ]; then
    echo "fuzz: $t: replaying ${#regressions[@]} regression input(s)" | tee -a "$log"
    "$BUILD/$t" -timeout=10 -rss_limit_mb=2048 "${regressions[@]}" >>"$log" 2>&1 || {
      found=1
      echo "fuzz: $t: a regression input fails again (see $log)" | tee -a "$log"
    }
  fi
  echo "fuzz: $t: running ${SECONDS_PER_TARGET}s (log $log)"
  rc=0
  "$BUILD/$t" "${flags[@]}" "$corpus" >>"$log" 2>&1 || rc=$?
  rm -rf "$SPIKEGRAD_FUZZ_TMP"
  [ "$rc" -ne 0 ] && found=1
  artifacts=$(find "$findings" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'leak-*' -o -name 'oom-*' \
    -o -name 'deadly-*' \) -newer "$BUILD/logs/$t.start" 2>/dev/null) || true
  [ -n "$artifacts" ] && found=1
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || echo "?")
  eps=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || echo "?")
  rss=$(grep -o 'stat::peak_rss_mb: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || echo "?")
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9A-Za-z]*\).*/\1/p' <<<"$last")
  what="none"
  if [ "$found" -ne 0 ]; then
    status=1
    what="FOUND (libFuzzer exit $rc): $(grep -m1 -E '^==[0-9]+==ERROR|runtime error|==FUZZ==|ERROR: libFuzzer' "$log" | cut -c1-160)"
    what+="; inputs: $(tr '\n' ' ' <<<"$artifacts")"
  fi
  line="$t: ${SECONDS_PER_TARGET}s, executions ${execs:-?}, exec/s ${eps:-?}, cov ${cov:-?}, ft ${ft:-?}, corpus ${corp:-?}, peak RSS ${rss:-?} MB, findings: $what"
  echo "fuzz: $line"
  summary+=("$line")
done

echo
echo "fuzz: summary"
printf '  %s\n' "${summary[@]}"
if [ "$status" -ne 0 ]; then
  echo "fuzz: FINDINGS: minimise with '$BUILD/<target> -minimize_crash=1 -runs=100000 -exact_artifact_path=min <input>'," \
    "then save the input under tests/fuzz/regressions/<target>/"
fi
exit "$status"
