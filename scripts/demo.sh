#!/usr/bin/env bash
# The main job on the built-in dataset: installs what is missing, builds, trains the default spiking CNN
# with the TMI loss on Fashion-MNIST (Debian's dataset-fashion-mnist), then evaluates the best checkpoint
# clean and under FGSM, PGD, BIM and Gaussian noise and prints the table (also in runs/demo/report.md).
# Last, when python3 has matplotlib, scripts/plot.py draws the training curves and MI over epochs into
# runs/demo/plots/ and links them from the report (README "Plots").
# Usage: scripts/demo.sh [extra `spikegrad train` flags]     env: BUILD_DIR (default build), JOBS
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup_deps.sh
# The plots' only dependency, installed now so any prompt comes before the training, not after it.
install_optional_packages python3-matplotlib || true

configure_build --target spikegrad_cli

# A fresh demo run each time: the previous one is moved aside, never deleted.
if [ -e runs/demo ]; then mv runs/demo "runs/demo.$(date +%Y%m%d-%H%M%S)"; fi
time "$BUILD_DIR/bin/spikegrad" --config configs/demo.toml train --name demo "$@"

# The plots are a side job: the trained run is the demo's result, so a missing matplotlib or a failed plot is
# reported and the demo still succeeds.
if ! plot_python=$(bash scripts/plot_python.sh); then
  echo "demo: no plots: no python3 with matplotlib (Debian: python3-matplotlib); the run is in runs/demo"
elif ! "$plot_python" scripts/plot.py run runs/demo; then
  echo "demo: plotting failed (see above); the run itself is complete in runs/demo"
fi
