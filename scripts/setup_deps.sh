#!/usr/bin/env bash
# Installs the Debian packages spikegrad builds with, only those missing (idempotent, non-interactive).
# Sourced by scripts/test.sh and scripts/demo.sh. The CUDA toolkit (nvcc, cuBLAS, cuDNN) is not a Debian
# package here: when nvcc is present the CUDA backend is built, otherwise a CPU-only build is made.
# Open MPI (libopenmpi-dev, openmpi-bin): multi-process training under mpirun and the `mpi` tests (README "Scaling out").
# oneDNN (libdnnl-dev): the CPU convolution's faster passes (kernels/conv2d_onednn.h; built without it when absent).
set -euo pipefail

SPIKEGRAD_PACKAGES=(cmake make g++ ccache libeigen3-dev libgtest-dev libbenchmark-dev zlib1g-dev libcli11-dev
  nlohmann-json3-dev dataset-fashion-mnist libboost-context-dev libturbojpeg0-dev pkg-config
  libopenmpi-dev openmpi-bin libdnnl-dev)

missing=()
for p in "${SPIKEGRAD_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# install_optional_packages PKG...: installs those missing, for a side job only one script needs (the demo's
# plots: python3-matplotlib). The engine and the tests never need them, so a failed install is reported and
# returns 1, and the caller goes on without them.
install_optional_packages() {
  local p missing_optional=() sudo=""
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing_optional+=("$p")
  done
  ((${#missing_optional[@]})) || return 0
  echo "setup: installing ${missing_optional[*]} (optional)"
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  { $sudo apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing_optional[@]}" \
      >/dev/null; } || {
    echo "setup: could not install ${missing_optional[*]}; going on without" >&2
    return 1
  }
}

# nvcc lives outside PATH on some machines.
if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then
  export PATH=/usr/local/cuda/bin:$PATH
fi

# configure_build [cmake --build args...]: configures $BUILD_DIR (Release; CUDA on when nvcc is found)
# and builds. The configure log goes to $BUILD_DIR.configure.log and is printed only on failure.
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}
configure_build() {
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >"$BUILD_DIR.configure.log" 2>&1 || {
    cat "$BUILD_DIR.configure.log"
    return 1
  }
  grep "spikegrad: CUDA backend" "$BUILD_DIR.configure.log" || true
  cmake --build "$BUILD_DIR" -j "$JOBS" "$@"
}

# configure_emulated_build [cmake --build args...]: the same for $EMU_BUILD_DIR with the emulated CUDA
# backend (tests/cudaemu): every .cu file compiled as C++ and run on the CPU. Its tests are labelled cudaemu.
EMU_BUILD_DIR=${EMU_BUILD_DIR:-build-emu}
configure_emulated_build() {
  cmake -S . -B "$EMU_BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DSPIKEGRAD_CUDA_EMULATION=ON \
    >"$EMU_BUILD_DIR.configure.log" 2>&1 || {
    cat "$EMU_BUILD_DIR.configure.log"
    return 1
  }
  grep "spikegrad: CUDA backend" "$EMU_BUILD_DIR.configure.log" || true
  cmake --build "$EMU_BUILD_DIR" -j "$JOBS" "$@"
}
