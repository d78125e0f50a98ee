#!/usr/bin/env bash
# The real binary under mpirun (ctest label `mpi`): `mpirun -np 2 spikegrad train` on a small synthetic
# Fashion-MNIST-layout dataset finishes with exit 0 and one complete run folder, and an error on one rank
# (rank 0's run folder already holds a run) ends the whole job with a non-zero exit, rank 0's message on stderr.
# Usage: cli_two_ranks.sh MPIRUN SPIKEGRAD WRITE_SYNTHETIC_IDX
set -euo pipefail
mpirun=$1 spikegrad=$2 write_idx=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$write_idx" "$work/data" 128 32 12 >/dev/null
run() {
  OMP_NUM_THREADS=1 "$mpirun" -np 2 --oversubscribe --allow-run-as-root "$spikegrad" train --dataset fashion-mnist \
    --data-dir "$work/data" --runs-dir "$work/runs" --name two --model small_cnn --T 2 --batch 16 --epochs 1 \
    --val-size 32 --device cpu --sync-bn --attacks none --no-obfuscation-checks --no-progress
}
run >"$work/out.txt" 2>&1 || { cat "$work/out.txt"; echo "FAIL: mpirun -np 2 spikegrad train exited non-zero"; exit 1; }
for f in config.json metrics.csv best.safetensors last.safetensors report.md; do
  [[ -f "$work/runs/two/$f" ]] || { echo "FAIL: runs/two/$f missing"; exit 1; }
done
grep -q "^2 ranks (mpirun)" "$work/runs/two/report.md" || { echo "FAIL: report.md does not state the ranks"; exit 1; }
if run >"$work/again.txt" 2>&1; then echo "FAIL: a second run into the same folder succeeded"; exit 1; fi
grep -q "rank 0 of 2: run folder .* already holds a run" "$work/again.txt" ||
  { cat "$work/again.txt"; echo "FAIL: no error from rank 0 naming the folder"; exit 1; }
echo "PASS"
