# Sourced on the lent GPU machine (from the repo root or anywhere): `source scripts/gpu/env.sh`.
#  - LD_LIBRARY_PATH: the lib folders of the Python nvidia-* wheels there (cuBLAS, cuDNN, ...: the machine has
#    no other copy of them), then the carried bundle's lib/ (device-bundle/lib, made by build_for_device.sh:
#    libbenchmark, libgomp, ...), last so that it never shadows a library the machine has for PyTorch.
#  - Wheels carried in .whl/ (device README): .whl/*.whl are installed into /tmp/site, which goes on
#    PYTHONPATH; each subfolder .whl/NAME/ (e.g. two SpikingJelly versions, which cannot share one folder) is
#    installed into its own /tmp/site-NAME, which is NOT put on PYTHONPATH: its user picks it
#    (scripts/compare/side_by_side.sh does).
# Sets SPIKEGRAD_ROOT and SPIKEGRAD_BUNDLE (override: export SPIKEGRAD_BUNDLE=... before sourcing).
# No `set -e`/`exit` here: it runs inside the caller's shell.

# Sourcing twice is harmless: the second time does nothing.
if [ -n "${SPIKEGRAD_ENV_SOURCED:-}" ]; then return 0; fi
export SPIKEGRAD_ENV_SOURCED=1

SPIKEGRAD_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export SPIKEGRAD_ROOT
export SPIKEGRAD_BUNDLE=${SPIKEGRAD_BUNDLE:-$SPIKEGRAD_ROOT/device-bundle}

export LD_LIBRARY_PATH=$(python3 -c "import nvidia,os,glob;print(':'.join(d for p in nvidia.__path__ for d in glob.glob(os.path.join(p,'*','lib'))))"):${LD_LIBRARY_PATH:-}
if [ -d "$SPIKEGRAD_BUNDLE/lib" ]; then
  export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$SPIKEGRAD_BUNDLE/lib
fi
# Drop empty entries (an empty entry means the current folder to ld.so).
LD_LIBRARY_PATH=$(printf '%s' "$LD_LIBRARY_PATH" | tr -s ':' | sed 's/^://; s/:$//')
export LD_LIBRARY_PATH

_sg_install_wheels() {  # _sg_install_wheels TARGET WHEEL...
  local target=$1
  shift
  PIP_ROOT_USER_ACTION=ignore python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$target" "$@"
}
if [ -d "$SPIKEGRAD_ROOT/.whl" ]; then
  if compgen -G "$SPIKEGRAD_ROOT/.whl/*.whl" >/dev/null; then
    if _sg_install_wheels /tmp/site "$SPIKEGRAD_ROOT"/.whl/*.whl; then
      export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
    else
      echo "env.sh: installing .whl/*.whl into /tmp/site failed" >&2
    fi
  fi
  for _sg_dir in "$SPIKEGRAD_ROOT"/.whl/*/; do
    [ -d "$_sg_dir" ] || continue
    compgen -G "$_sg_dir*.whl" >/dev/null || continue
    _sg_name=$(basename "$_sg_dir")
    _sg_install_wheels "/tmp/site-$_sg_name" "$_sg_dir"*.whl ||
      echo "env.sh: installing .whl/$_sg_name/*.whl into /tmp/site-$_sg_name failed" >&2
  done
  unset _sg_dir _sg_name
fi
unset -f _sg_install_wheels
