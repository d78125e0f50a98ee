#!/usr/bin/env bash
# One command per table of the TMI paper (issue 15): trains what is missing, attacks with the paper's settings
# and writes the table as markdown, mean ± std over seeds beside the paper's numbers.
#
#   scripts/reproduce.sh TABLE [--scale cpu|full|tiny] [--seeds N] [--out DIR] [--data-dir DIR] [--dry-run]
#
# TABLE (rows and paper numbers: configs/paper/tables.csv; one preset per row: configs/paper/<preset>.toml):
#   main      CIFAR-100 Table 1: VGGSNN STBP / -H / -AIMIE / -MINE / -TMI, TET / TET-TMI, AlexNet STBP ± TMI,
#             VGG11 STBP / SNN-RAT / SNN-RAT-TMI. Natural, FGSM and PGD accuracy.
#   ablation  TMI's ablation on VGG11 SNN-RAT + TMI: channel max instead of average, shallow Z' instead of deep Z.
#   tasa      CIFAR-10 Table 2: AlexNet STBP ± TMI, TASA per spiking layer on clean and PGD inputs
#             (`spikegrad analyze --tasa`).
#   toy       two rows (small_cnn ± TMI on Fashion-MNIST): the script's own test (tests/scripts/).
#   all       main, ablation and tasa.
# --scale cpu (default): every preset run on Fashion-MNIST instead of CIFAR, the same architecture with every
#   width divided by 8 (--width-div 8), T 4, 2 epochs on 8000 training images (1000 more held out for
#   model selection), clean accuracy on 2000 test images and the attacks on the first 1000; the paper's attack
#   settings (eps 4/255, PGD 4 steps of 1/255). Minutes per run on a 2-core CPU (README has the measured times).
#   Rows whose full-scale recipe does not train at this scale get tables.csv's cpu_flags (the VGG11 rows: Adam
#   lr 1e-3 instead of SGD lr 0.1, which stays at chance for 2 epochs of narrow VGG11 on 8000 images).
# --scale full: the presets as they are (CIFAR-100/CIFAR-10 in data/, 200-300 epochs, the whole test set): GPU jobs.
# --scale tiny: a smoke test of the pipeline (400 images, 1 epoch); its numbers mean nothing.
# --seeds N (default 3): seeds 1000 .. 1000+N-1. Runs go to OUT/runs/<preset>-seed<seed> (rows that share a
#   preset share its runs); a finished run (its results.csv) is reused, an interrupted one resumed (--resume).
# Writes OUT/<table>.md (printed too) and OUT/<table>-seeds.csv (one line per run). OUT: runs/paper-<scale>.
# env: BUILD_DIR (default build), SPIKEGRAD (the binary; default $BUILD_DIR/bin/spikegrad, built when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,27p' "$0"; }
die() { echo "reproduce.sh: $*" >&2; exit 2; }

[ $# -ge 1 ] || { usage >&2; exit 2; }
case "$1" in -h|--help) usage; exit 0 ;; esac
table=$1; shift
scale=cpu seeds=3 out="" data_dir="" dry_run=0
while [ $# -gt 0 ]; do
  case "$1" in
    --scale) scale=${2:?--scale needs a value}; shift 2 ;;
    --seeds) seeds=${2:?--seeds needs a value}; shift 2 ;;
    --out) out=${2:?--out needs a value}; shift 2 ;;
    --data-dir) data_dir=${2:?--data-dir needs a value}; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[[ "$seeds" =~ ^[1-9][0-9]*$ ]] || die "--seeds must be a positive whole number, got '$seeds'"
tables_csv=configs/paper/tables.csv
case "$table" in
  all)
    for t in main ablation tasa; do
      args=("$t" --scale "$scale" --seeds "$seeds" ${out:+--out "$out"} ${data_dir:+--data-dir "$data_dir"})
      [ "$dry_run" = 1 ] && args+=(--dry-run)
      "$0" "${args[@]}"
    done
    exit 0 ;;
  main|ablation|tasa|toy) ;;
  *) die "TABLE must be main, ablation, tasa, toy or all, got '$table'" ;;
esac

# What each scale changes on top of the presets (a flag on the command line wins over the preset file). The
# small scales share the data and device; sizes are theirs.
small_scale=(--dataset fashion-mnist --data-dir "${data_dir:-/usr/share/datasets/fashion-mnist}" --T 4 --device cpu
             --no-obfuscation-checks)
case "$scale" in
  cpu)
    scale_flags=("${small_scale[@]}" --train-subset 8000 --val-size 1000 --test-subset 2000 --attack-subset 1000
                 --epochs 2 --eval-batch 250)
    width_div=8 tasa_flags=(--batches 4 --eval-batch 250)
    scale_text="cpu scale: Fashion-MNIST in place of CIFAR (8000 training images and 1000 more held out for model selection; clean accuracy on 2000 test images, attacks on the first 1000), the presets' architectures with every width divided by 8, T 4, 2 epochs; the paper's attack settings" ;;
  tiny)
    scale_flags=("${small_scale[@]}" --train-subset 400 --val-size 100 --test-subset 200 --attack-subset 100
                 --epochs 1 --eval-batch 100)
    width_div=16 tasa_flags=(--batches 1 --eval-batch 100)
    scale_text="tiny scale (a smoke test of the pipeline: 400 Fashion-MNIST images, 1 epoch; the numbers mean nothing)" ;;
  full)
    [ -z "$data_dir" ] || die "--data-dir is for --scale cpu|tiny; at full scale the presets name their data folders"
    scale_flags=() width_div=1 tasa_flags=(--batches 40 --eval-batch 250)
    scale_text="full scale: the presets as the paper trains them (configs/paper/), attacks on the whole test set" ;;
  *) die "--scale must be cpu, full or tiny, got '$scale'" ;;
esac
scale_flags+=(--no-progress)
out=${out:-runs/paper-$scale}

BUILD_DIR=${BUILD_DIR:-build}
bin=${SPIKEGRAD:-$BUILD_DIR/bin/spikegrad}
if [ "$dry_run" = 0 ] && [ ! -x "$bin" ]; then
  [ -z "${SPIKEGRAD:-}" ] || die "SPIKEGRAD=$SPIKEGRAD is not an executable"
  source scripts/setup_deps.sh
  configure_build --target spikegrad_cli
fi

# The table's rows: row|label|preset|baseline|paper natural|paper FGSM|paper PGD|paper TASA layer 5|cpu flags
mapfile -t rows < <(awk -F, -v t="$table" 'NR > 1 && $1 == t { print $2 "|" $3 "|" $4 "|" $5 "|" $6 "|" $7 "|" $8 "|" $9 "|" $10 }' "$tables_csv")
[ "${#rows[@]}" -gt 0 ] || die "$tables_csv has no rows for table '$table'"

# run LOG COMMAND...: the command, logged (its line first) into LOG; with --dry-run only printed.
run() {
  local log=$1; shift
  if [ "$dry_run" = 1 ]; then
    echo "+ $*" >&2
    return 0
  fi
  echo "+ $*" >"$log"
  "$@" >>"$log" 2>&1
}

# train_once PRESET SEED [SMALL-SCALE FLAGS...]: trains OUT/runs/<preset>-seed<seed> unless its results.csv exists;
# resumes a run that has a checkpoint but no results (interrupted, or stopped by a failure) with the same flags.
# The last arguments (tables.csv's cpu_flags) apply at the cpu and tiny scales only.
train_once() {
  local preset=$1 seed=$2 file="configs/paper/$1.toml" name dir model flags=()
  shift 2
  [ -f "$file" ] || die "$tables_csv names preset '$preset', but $file does not exist"
  name="$preset-seed$seed" dir="$out/runs/$preset-seed$seed"
  [ -f "$dir/results.csv" ] && { echo "have $dir" >&2; return 0; }
  model=$(sed -n 's/^model *= *"\(.*\)".*/\1/p' "$file")
  flags=("${scale_flags[@]}")
  [ "$width_div" != 1 ] && [ "$model" != small_cnn ] && flags+=(--width-div "$width_div")
  [ "$scale" != full ] && flags+=("$@")
  local resuming=""
  [ -f "$dir/last.safetensors" ] && flags+=(--resume) resuming=", resuming its run with --resume"
  echo "[$(date +%H:%M:%S)] $preset seed $seed ($scale scale$resuming)" >&2
  run "$out/logs/$name.log" "$bin" train --config "$file" "${flags[@]}" --seed "$seed" --runs-dir "$out/runs" --name "$name" \
    || die "training $name failed; the last lines of $out/logs/$name.log:
$(tail -n 15 "$out/logs/$name.log")"
}

# tasa_once PRESET SEED: `spikegrad analyze --tasa` on the run's best checkpoint, PGD at the preset's settings.
tasa_once() {
  local dir="$out/runs/$1-seed$2"
  [ -f "$dir/tasa/tasa.csv" ] && return 0
  run "$out/logs/$1-seed$2.tasa.log" "$bin" analyze --checkpoint "$dir/best.safetensors" --tasa --tasa-attack pgd \
    --eps 4/255 --alpha 1/255 --steps 4 "${tasa_flags[@]}" --no-progress --out "$dir/tasa" \
    || die "analyze --tasa on $dir failed; see $out/logs/$1-seed$2.tasa.log"
}

mkdir -p "$out/runs" "$out/logs"
start=$SECONDS
for ((i = 0; i < seeds; ++i)); do  # seed-major: a stopped script has whole seeds of the table done
  for r in "${rows[@]}"; do
    IFS='|' read -r _ _ preset _ _ _ _ _ small_flags <<<"$r"
    read -ra small_flags <<<"$small_flags"
    train_once "$preset" $((1000 + i)) "${small_flags[@]}"
    [ "$table" = tasa ] && tasa_once "$preset" $((1000 + i))
  done
done
[ "$dry_run" = 1 ] && exit 0

# One line per run: row,seed,natural,fgsm,pgd from the run's results.csv (the report's numbers).
seeds_csv="$out/$table-seeds.csv"
echo "row,preset,seed,natural,fgsm,pgd" >"$seeds_csv"
for r in "${rows[@]}"; do
  IFS='|' read -r row _ preset _ <<<"$r"
  for ((i = 0; i < seeds; ++i)); do
    f="$out/runs/$preset-seed$((1000 + i))/results.csv"
    awk -F, -v row="$row" -v preset="$preset" -v seed=$((1000 + i)) -v f="$f" '
      NR > 1 && $1 == "clean" { nat = $4 } NR > 1 && $1 == "fgsm" { fgsm = $4 } NR > 1 && $1 == "pgd" { pgd = $4 }
      END { if (nat == "" || fgsm == "" || pgd == "") { print "reproduce.sh: " f " lacks the clean, fgsm or pgd row" > "/dev/stderr"; exit 1 }
            print row "," preset "," seed "," nat "," fgsm "," pgd }' "$f" >>"$seeds_csv"
  done
done
tasa_csv=""
if [ "$table" = tasa ]; then
  tasa_csv="$out/tasa-layers.csv"
  echo "row,seed,layer_index,layer,tasa_clean,tasa_adv,abs_diff" >"$tasa_csv"
  for r in "${rows[@]}"; do
    IFS='|' read -r row _ preset _ <<<"$r"
    for ((i = 0; i < seeds; ++i)); do
      awk -F, -v row="$row" -v seed=$((1000 + i)) 'NR > 1 { print row "," seed "," NR - 1 "," $1 "," $2 "," $3 "," $4 }' \
        "$out/runs/$preset-seed$((1000 + i))/tasa/tasa.csv" >>"$tasa_csv"
    done
  done
fi

{
  echo "## TMI paper, table '$table': $scale scale, $seeds seed(s) (1000..$((1000 + seeds - 1)))"
  echo
  echo "Ours: mean ± sample standard deviation over the seeds ($scale_text). Paper: the CVPR 2026 paper's numbers (CIFAR-100; the TASA table CIFAR-10), a single run each. Accuracies in %."
  echo
  tasa_args=()
  [ -n "$tasa_csv" ] && tasa_args=(FS=, "$tasa_csv")
  printf '%s\n' "${rows[@]}" | awk -v kind="$table" -f scripts/reproduce_table.awk FS=, "$seeds_csv" 'FS=|' - "${tasa_args[@]}"
  echo
  echo "Runs: $out/runs; per-run numbers: $seeds_csv. Elapsed: $(((SECONDS - start) / 60)) min $(((SECONDS - start) % 60)) s."
} | tee "$out/$table.md"
