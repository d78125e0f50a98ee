#!/usr/bin/env bash
# Builds spikegrad for the lent GPU machine (H100/H200, sm_90) HERE, and stages what runs there into a small
# folder that the device tool can carry: device-bundle/{bin,lib}, MANIFEST.txt, CMakeCache.txt.
#
#   scripts/gpu/build_for_device.sh            configure + build build-device/ (Release, CUDA arch 90), stage
#   scripts/gpu/build_for_device.sh --stage    only re-stage device-bundle/ from an existing build-device/
#
# Why: the GPU machine has nvcc, CMake and ninja but no GoogleTest, Google Benchmark, Eigen or CLI11, and
# no network. So the binaries are built here and carried (`carry: ["device-bundle"]`), and
# scripts/gpu/on_device.sh runs them there.
#  - cudart is linked statically (CMAKE_CUDA_RUNTIME_LIBRARY=Static; the library already links
#    CUDA::cudart_static); GoogleTest is static (Debian ships only libgtest.a); Debian ships Google Benchmark
#    as a shared library only, so libbenchmark.so.1 travels in lib/.
#  - cuBLAS and cuDNN stay shared: the GPU machine has them as Python nvidia-* wheels, which
#    scripts/gpu/env.sh puts on LD_LIBRARY_PATH (same sonames: libcublas.so.13, libcudnn.so.9).
#  - Every other shared library that is not part of glibc / libstdc++ / libgcc (libgomp, libz, libbenchmark,
#    ...) is copied into device-bundle/lib, and the staged binaries carry RUNPATH $ORIGIN/../lib, so they also
#    run without env.sh. libstdc++ is NOT copied: putting an older one on LD_LIBRARY_PATH there would break
#    PyTorch in the same shell; the GLIBC/GLIBCXX versions the binaries need are written to MANIFEST.txt.
#  - The tests' SPIKEGRAD_CLI_PATH is this machine's absolute path of the CLI; MANIFEST.txt records it and
#    on_device.sh makes that path point at the carried CLI.
# Fails when the stripped bundle is over 60 MiB (the device tool carries 64 MiB with the working tree).
# env: BUILD_DIR (default build-device), BUNDLE_DIR (default device-bundle), JOBS (default 2), NICE (default 10)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD

stage_only=0
case "${1:-}" in
  --stage) stage_only=1 ;;
  "") ;;
  -h | --help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "build_for_device.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
esac

export BUILD_DIR=${BUILD_DIR:-build-device}
export JOBS=${JOBS:-2}
BUNDLE_DIR=${BUNDLE_DIR:-device-bundle}
NICE=${NICE:-10}
LIMIT_MIB=60
ts() { date -u +%H:%M:%S; }

bench_targets=()
for src in bench/bench_*.cpp; do bench_targets+=("$(basename "$src" .cpp)"); done
targets=(spikegrad_tests spikegrad_cli "${bench_targets[@]}")

if ((!stage_only)); then
  source scripts/setup_deps.sh  # Debian packages, nvcc on PATH, configure_build
  command -v nvcc >/dev/null || { echo "build_for_device.sh: nvcc not found; the device build needs CUDA" >&2; exit 1; }
  echo "[$(ts)] configuring $BUILD_DIR (Release, CUDA arch 90, static cudart, portable x86-64 C++: the device machine has another CPU)"
  # Seed the cache with the device settings; configure_build then re-runs cmake on the same folder (the
  # cache keeps these) and builds.
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DSPIKEGRAD_WITH_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
    -DCMAKE_CUDA_RUNTIME_LIBRARY=Static -DSPIKEGRAD_NATIVE_ISA=OFF \
    -DSPIKEGRAD_BUILD_TESTS=ON -DSPIKEGRAD_BUILD_BENCH=ON '-DCMAKE_BUILD_RPATH=$ORIGIN/../lib' \
    >"$BUILD_DIR.configure.log" 2>&1 || { cat "$BUILD_DIR.configure.log"; exit 1; }
  grep -q "CUDA backend ON" "$BUILD_DIR.configure.log" || {
    cat "$BUILD_DIR.configure.log"
    echo "build_for_device.sh: CMake did not turn the CUDA backend on" >&2
    exit 1
  }
  echo "[$(ts)] building ${targets[*]} with -j$JOBS under nice -n $NICE (cold: 10-15 min on 2 cores)"
  start=$SECONDS
  nice -n "$NICE" bash -c "source scripts/setup_deps.sh && configure_build --target ${targets[*]}"
  echo "[$(ts)] build done in $((SECONDS - start)) s"
fi

# ---- stage ----------------------------------------------------------------------------------------------
[ -f "$BUILD_DIR/CMakeCache.txt" ] || { echo "build_for_device.sh: no $BUILD_DIR/CMakeCache.txt" >&2; exit 1; }
rm -rf "$BUNDLE_DIR"
mkdir -p "$BUNDLE_DIR/bin" "$BUNDLE_DIR/lib"
binaries=("$BUILD_DIR/tests/spikegrad_tests" "$BUILD_DIR/bin/spikegrad")
for b in "${bench_targets[@]}"; do binaries+=("$BUILD_DIR/bench/$b"); done
for b in "${binaries[@]}"; do
  [ -x "$b" ] || { echo "build_for_device.sh: $b is missing (build failed?)" >&2; exit 1; }
  cp "$b" "$BUNDLE_DIR/bin/"
done
strip --strip-unneeded "$BUNDLE_DIR"/bin/*
# The build tree's RUNPATH also names this machine's folders; keep only $ORIGIN/../lib when patchelf exists
# (ld.so ignores folders that do not exist there, so this is tidiness, not a requirement).
if command -v patchelf >/dev/null; then
  for b in "$BUNDLE_DIR"/bin/*; do patchelf --set-rpath '$ORIGIN/../lib' "$b"; done
fi

# Shared libraries: provided there (glibc family, libstdc++, libgcc, the driver, the CUDA wheels) or copied.
provided_re='^(linux-vdso|ld-linux-x86-64|libc|libm|libdl|libpthread|librt|libutil|libresolv|libstdc\+\+|libgcc_s|libcuda|libnvidia-.*|libcublas|libcublasLt|libcudnn.*|libcudart|libnvrtc.*|libnvJitLink)\.so'
ldd_report="$BUNDLE_DIR/ldd.txt"
: >"$ldd_report"
declare -A copied=()
missing=0
pkg_of() {  # the Debian package that owns a library file (by its own path or its resolved one), or "?"
  local p
  for p in "$1" "$(readlink -f "$1")"; do
    dpkg -S "$p" 2>/dev/null | head -1 | cut -d: -f1 && return 0
  done
  echo "?"
}
for b in "$BUNDLE_DIR"/bin/*; do
  echo "== $(basename "$b")" >>"$ldd_report"
  # ldd shows the libraries as this machine resolves them (without our lib/ on the path).
  while read -r line; do
    name=$(awk '{print $1}' <<<"$line")
    path=$(awk '$2 == "=>" {print $3}' <<<"$line")
    base=$(basename "$name")
    if [[ "$base" =~ $provided_re ]]; then
      echo "  provided there: $line" >>"$ldd_report"
    elif [[ "$line" == *"not found"* ]]; then
      echo "  NOT FOUND here: $line" >>"$ldd_report"
      missing=1
    elif [ -n "$path" ] && [ -f "$path" ]; then
      echo "  copied:         $line" >>"$ldd_report"
      if [ -z "${copied[$base]:-}" ]; then
        cp -L "$path" "$BUNDLE_DIR/lib/$base"
        copied[$base]=$(pkg_of "$path")
      fi
    else
      echo "  ?               $line" >>"$ldd_report"
    fi
  done < <(ldd "$b")
done
# A copied library's own needs (e.g. libbenchmark -> libstdc++) are covered by the same rule; check them too.
for l in "$BUNDLE_DIR"/lib/*; do
  [ -e "$l" ] || continue
  while read -r line; do
    base=$(basename "$(awk '{print $1}' <<<"$line")")
    path=$(awk '$2 == "=>" {print $3}' <<<"$line")
    if [[ ! "$base" =~ $provided_re ]] && [ -z "${copied[$base]:-}" ] && [ -n "$path" ] && [ -f "$path" ]; then
      cp -L "$path" "$BUNDLE_DIR/lib/$base"
      copied[$base]=$(pkg_of "$path")
      echo "  copied (needed by $(basename "$l")): $line" >>"$ldd_report"
    fi
  done < <(ldd "$l")
done
strip --strip-unneeded "$BUNDLE_DIR"/lib/* 2>/dev/null || true

# What runs there needs from glibc / libstdc++ (the GPU machine's must be at least as new).
glibc_need=$(objdump -T "$BUNDLE_DIR"/bin/* "$BUNDLE_DIR"/lib/* 2>/dev/null | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)
glibcxx_need=$(objdump -T "$BUNDLE_DIR"/bin/* "$BUNDLE_DIR"/lib/* 2>/dev/null | grep -o 'GLIBCXX_[0-9.]*' | sort -uV | tail -1)
cxxabi_need=$(objdump -T "$BUNDLE_DIR"/bin/* "$BUNDLE_DIR"/lib/* 2>/dev/null | grep -o 'CXXABI_[0-9.]*' | sort -uV | tail -1)

cp "$BUILD_DIR/CMakeCache.txt" "$BUNDLE_DIR/CMakeCache.txt"  # for bench_to_markdown.py --build-dir
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -n "$(git status --porcelain 2>/dev/null)" ] && commit="$commit (plus uncommitted changes)"
cli_path="$ROOT/$BUILD_DIR/bin/spikegrad"
{
  echo "commit: $commit"
  echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -m) $(. /etc/os-release && echo "$PRETTY_NAME")"
  echo "nvcc: $(nvcc --version 2>/dev/null | grep -o 'release [0-9.]*' || echo '?')"
  echo "cuda_arch: $(grep '^CMAKE_CUDA_ARCHITECTURES:' "$BUILD_DIR/CMakeCache.txt" | cut -d= -f2)"
  echo "cli_path: $cli_path"
  echo "needs: $glibc_need $glibcxx_need $cxxabi_need"
  for base in "${!copied[@]}"; do echo "lib: $base (Debian package ${copied[$base]:-?})"; done
} >"$BUNDLE_DIR/MANIFEST.txt"

echo "[$(ts)] staged $BUNDLE_DIR:"
cat "$BUNDLE_DIR/MANIFEST.txt"
echo "shared libraries left to the GPU machine (glibc family, libstdc++, libgcc; CUDA wheels via env.sh):"
grep "provided there" "$ldd_report" | awk '{print $3}' | xargs -n1 basename | sort -u | tr '\n' ' '
echo
grep -E "NOT FOUND|^  \?" "$ldd_report" | sort -u || true
du -b "$BUNDLE_DIR"/bin/* "$BUNDLE_DIR"/lib/* | awk '{printf "  %8.2f MiB  %s\n", $1 / 1048576, $2}'
total=$(du -sb "$BUNDLE_DIR" | cut -f1)
total_mib=$(awk -v b="$total" 'BEGIN {printf "%.1f", b / 1048576}')
echo "bundle size: $total_mib MiB (limit $LIMIT_MIB MiB)"
((missing == 0)) || { echo "build_for_device.sh: some library is not found here (see $ldd_report)" >&2; exit 1; }
if ((total > LIMIT_MIB * 1048576)); then
  echo "build_for_device.sh: the bundle is over $LIMIT_MIB MiB" >&2
  exit 1
fi
