#!/usr/bin/env bash
# The MI-robustness trend of the TMI paper ("temporal MI shows a clear trend where higher MI leads to more
# fragility"; issue 15 item 3): small_cnn is trained on Fashion-MNIST with several TMI weights λ, and after
# every epoch `train --track-robustness N` measures, on the first N test examples, the test-set KDE MI(X;Z)
# (the TMI estimator on the default taps, bits, mean over examples) and the FGSM robust accuracy at --eps.
# One row per (λ, epoch) goes into OUT/trend.csv; OUT/trend.png is the scatter (MI vs robust accuracy, colour
# = λ, label = epoch) when python3 has matplotlib (scripts/plot.py trend).
#
#   scripts/mi_trend.sh [--out DIR] [--lambdas "0 0.05 0.5 2"] [--epochs 3] [--train-subset 4000]
#                       [--track 500] [--eps 8/255] [--seed 1000] [--dry-run]
#
# Defaults are CPU scale (a few minutes on 2 cores): T 4, batch 64, 4000 training images, 500 test images
# (the clean accuracy `clean_acc` is test_acc of the same 500 images: --test-subset = --track). The model of each
# epoch is scored as it is (no selection; the rows are every epoch's). Runs already in OUT are reused.
# env: BUILD_DIR (default build), SPIKEGRAD (the binary; default $BUILD_DIR/bin/spikegrad)
set -euo pipefail
cd "$(dirname "$0")/.."

out=runs/mi-trend lambdas="0 0.05 0.5 2" epochs=3 train_subset=4000 track=500 eps=8/255 seed=1000 dry_run=0
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --lambdas) lambdas="$2"; shift 2 ;;
    --epochs) epochs="$2"; shift 2 ;;
    --train-subset) train_subset="$2"; shift 2 ;;
    --track) track="$2"; shift 2 ;;
    --eps) eps="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "mi_trend.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
BUILD_DIR=${BUILD_DIR:-build}
bin=${SPIKEGRAD:-$BUILD_DIR/bin/spikegrad}
if [ "$dry_run" = 0 ] && [ ! -x "$bin" ]; then
  source scripts/setup_deps.sh
  configure_build --target spikegrad_cli
fi

run() {
  echo "+ $*"
  if [ "$dry_run" = 0 ]; then "$@"; fi
}

mkdir -p "$out"
for lambda in $lambdas; do
  name="lambda-$lambda"
  if [ ! -f "$out/$name/report.md" ]; then
    run "$bin" train --dataset fashion-mnist --model small_cnn --T 4 --batch 64 --epochs "$epochs" \
      --train-subset "$train_subset" --val-size 0 --select-on-test --test-subset "$track" --mi-lambda "$lambda" \
      --track-robustness "$track" --eps "$eps" --attacks none --no-obfuscation-checks --seed "$seed" \
      --device cpu --no-progress --runs-dir "$out" --name "$name"
  fi
done
[ "$dry_run" = 1 ] && exit 0

# One table from every run's metrics.csv: the columns by name, so the trainer may add others.
python3 - "$out" "$eps" $lambdas <<'EOF'
import csv, os, sys
out, eps, lambdas = sys.argv[1], sys.argv[2], sys.argv[3:]
rows = []
for lam in lambdas:
    path = os.path.join(out, f"lambda-{lam}", "metrics.csv")
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            if not r.get("test_mi_bits"):
                sys.exit(f"mi_trend.sh: {path} epoch {r['epoch']}: no test_mi_bits (was --track-robustness on?)")
            rows.append([lam, r["epoch"], r["test_mi_bits"], r["robust_acc"], r["test_acc"], r["mi_bits"]])
with open(os.path.join(out, "trend.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["lambda", "epoch", "test_mi_bits", "robust_acc", "clean_acc", "train_mi_bits", "attack", "eps"])
    for r in rows:
        w.writerow(r + ["fgsm", eps])
print("| λ | epoch | test MI(X;Z) bits | FGSM robust % | clean % |")
print("|---|---|---|---|---|")
for lam, ep, mi, rob, clean, _ in rows:
    print(f"| {lam} | {ep} | {float(mi):.4f} | {float(rob):.2f} | {float(clean):.2f} |")
EOF
if plot_python=$(bash scripts/plot_python.sh); then
  "$plot_python" scripts/plot.py trend "$out/trend.csv" -o "$out/trend.png" \
    --title "small_cnn, Fashion-MNIST, FGSM eps $eps" || echo "mi_trend.sh: the plot failed; the table is $out/trend.csv"
else
  echo "mi_trend.sh: no plot (no python3 with matplotlib); the table is $out/trend.csv"
fi
echo "trend: $out/trend.csv"
