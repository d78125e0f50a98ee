#!/usr/bin/env bash
# The main job on the built-in dataset: installs what is missing, builds, trains the default spiking CNN
# with the TMI loss on Fashion-MNIST (Debian's dataset-fashion-mnist), then evaluates the best checkpoint
# clean and under FGSM, PGD, BIM and Gaussian noise and prints the table (also in runs/demo/report.md).
# Usage: scripts/demo.sh [extra `spikegrad train` flags]     env: BUILD_DIR (default build), JOBS
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup_deps.sh

configure_build --target spikegrad_cli

# A fresh demo run each time: the previous one is moved aside, never deleted.
if [ -e runs/demo ]; then mv runs/demo "runs/demo.$(date +%Y%m%d-%H%M%S)"; fi
time "$BUILD_DIR/bin/spikegrad" --config configs/demo.toml train --name demo "$@"
