#!/usr/bin/env bash
# The seed-002 trade-off sweep (issue 13; ../shared/spec/gradient_sparsity.md): {SEW-ResNet with a max stem
# pool, SEW-ResNet with an avg stem pool, Spiking-ResNet} × depth × dataset. Each variant is trained, attacked
# (FGSM and PGD at eps 6/255 and 8/255, PGD 7 steps of 0.01 with a random start, as the released code; PGD
# with 28 steps as the gradient-masking check) and analysed (`spikegrad analyze`: input- and layer-gradient
# sparsity, the adversarial-vs-random ratio R), then everything goes into one table (sweep.md, sweep.csv)
# and the scatter plot of sparsity against robust and clean accuracy (sweep.png, when python3 has matplotlib).
#
# Settings as the released code where it is clear: IF neurons, ATan alpha 2, detach-reset (SEW), Adam lr 1e-3
# with weight decay 1e-3 and a constant lr — except that the best checkpoint is chosen on a validation split,
# never on the test set. Encoding: phase (bit-plane) coding attacked on the encoded spikes (--attack-domain
# spikes), as the released code, or direct coding attacked in pixels (--encoding direct).
#
#   scripts/sparsity_sweep.sh [--scale cpu|full] [--encoding direct|phase] [--out DIR] [--depths "18 34"]
#                             [--datasets "cifar10 cifar100"] [--variants "sew-max sew-avg spiking"]
#                             [--epochs N] [--dry-run]
#
# --scale cpu (default): Fashion-MNIST, depths 18 and 34 at --resnet-width 8, phase encoding with T 8 (the
#   released code's coding; --encoding direct uses T 4, half the cost), 2 epochs on 8000 training images,
#   attacks on 500 and the analysis on 128 test images: under 30 minutes on a 2-core CPU (README "The
#   gradient-sparsity sweep" has the measured time).
# --scale full: CIFAR-10 and CIFAR-100, depths 18/34/50, width 64, phase encoding with T 10, batch 16,
#   100 epochs, the full test set: the seed's grid (configs/sparsity/); a GPU job.
# env: BUILD_DIR (default build), SPIKEGRAD (the binary; default $BUILD_DIR/bin/spikegrad)
set -euo pipefail
cd "$(dirname "$0")/.."

scale=cpu encoding="" out="" depths="" datasets="" variants="sew-max sew-avg spiking" epochs="" dry_run=0
while [ $# -gt 0 ]; do
  case "$1" in
    --scale) scale="$2"; shift 2 ;;
    --encoding) encoding="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --depths) depths="$2"; shift 2 ;;
    --datasets) datasets="$2"; shift 2 ;;
    --variants) variants="$2"; shift 2 ;;
    --epochs) epochs="$2"; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "sparsity_sweep.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

case "$scale" in
  cpu)
    depths=${depths:-"18 34"}; datasets=${datasets:-fashion-mnist}; epochs=${epochs:-2}; encoding=${encoding:-phase}
    steps=$([ "$encoding" = phase ] && echo 8 || echo 4)
    common=(--T "$steps" --resnet-width 8 --batch 32 --train-subset 8000 --val-size 1000 --test-subset 1000
            --device cpu --no-progress)
    attack_subset=500 analyze_batches=4 analyze_batch=32 ;;
  full)
    depths=${depths:-"18 34 50"}; datasets=${datasets:-"cifar10 cifar100"}; epochs=${epochs:-100}
    encoding=${encoding:-phase}
    common=(--T 10 --batch 16 --no-progress)
    attack_subset=0 analyze_batches=40 analyze_batch=256 ;;
  *) echo "sparsity_sweep.sh: --scale must be cpu or full, got '$scale'" >&2; exit 2 ;;
esac
out=${out:-runs/sparsity-$scale}
BUILD_DIR=${BUILD_DIR:-build}
bin=${SPIKEGRAD:-$BUILD_DIR/bin/spikegrad}
if [ "$dry_run" = 0 ] && [ ! -x "$bin" ]; then
  source scripts/setup_deps.sh
  configure_build --target spikegrad_cli
fi

# The released code's recipe (gradient_sparsity.md §4.1): at full scale from configs/sparsity/<dataset>_<family>.toml
# (which also say where they differ from the released code: crop + flip instead of flip only, validation-split
# selection), here as flags for the CPU scale's Fashion-MNIST, which has no preset.
case "$encoding" in
  phase) domain=(--attack-domain spikes) ;;
  direct) domain=(--attack-domain pixels) ;;
  *) echo "sparsity_sweep.sh: --encoding must be direct or phase, got '$encoding'" >&2; exit 2 ;;
esac
recipe=(--encoding "$encoding" "${domain[@]}" --neuron if --surrogate atan --surrogate-alpha 2 --optimizer adam --lr 1e-3
        --weight-decay 1e-3 --schedule none --loss ce --mi-lambda 0 --seed 3407)
attack_flags=("${domain[@]}" --attack-subset "$attack_subset" --no-obfuscation-checks)

run() {
  echo "+ $*"
  if [ "$dry_run" = 0 ]; then "$@"; fi
}

mkdir -p "$out"
manifest="$out/variants.csv"
echo "name,variant,model,depth,dataset,stem_pool" >"$manifest"
for dataset in $datasets; do
  for depth in $depths; do
    for variant in $variants; do
      case "$variant" in
        sew-max) model=sew_resnet$depth pool=max detach=(--detach-reset) ;;
        sew-avg) model=sew_resnet$depth pool=avg detach=(--detach-reset) ;;
        spiking) model=spiking_resnet$depth pool=max detach=() ;;  # SpikingJelly's spiking_resnet: no detach
        *) echo "sparsity_sweep.sh: unknown variant '$variant' (sew-max, sew-avg, spiking)" >&2; exit 2 ;;
      esac
      name="$dataset-$variant-$depth"
      dir="$out/$name"
      echo "$name,$variant,$model,$depth,$dataset,$pool" >>"$manifest"
      if [ ! -f "$dir/best.safetensors" ]; then
        if [ "$scale" = full ]; then  # the seed's recipe lives in the presets; model and pool override them
          family=$([ "$variant" = spiking ] && echo spiking || echo sew)
          run "$bin" train --config "configs/sparsity/${dataset}_$family.toml" --model "$model" --stem-pool "$pool" \
            --encoding "$encoding" "${domain[@]}" "${common[@]}" --epochs "$epochs" --runs-dir "$out" --name "$name" \
            --attacks none
        else
          run "$bin" train --dataset "$dataset" --model "$model" --stem-pool "$pool" "${detach[@]}" "${recipe[@]}" \
            "${common[@]}" --epochs "$epochs" --runs-dir "$out" --name "$name" --attacks none
        fi
      fi
      ck="$dir/best.safetensors"
      # FGSM and PGD at both radii (eps 0: the clean accuracy of the same examples); then PGD with 4x the
      # steps at the larger one (robust accuracy that keeps falling with more steps is a sign of gradient
      # masking, gradient_sparsity.md §7).
      run bash -c "$(printf '%q ' "$bin" attack --checkpoint "$ck" --eps 0,6/255,8/255 --attacks fgsm,pgd --steps 7 \
        --alpha 0.01 "${attack_flags[@]}") > $(printf '%q' "$dir/attack.md")"
      run bash -c "$(printf '%q ' "$bin" attack --checkpoint "$ck" --eps 8/255 --attacks pgd --steps 28 \
        --alpha 0.01 "${attack_flags[@]}") > $(printf '%q' "$dir/attack_pgd28.md")"
      run "$bin" analyze --checkpoint "$ck" --eps 8/255 --batches "$analyze_batches" --eval-batch "$analyze_batch" \
        "${domain[@]}" --out "$dir/analysis"
    done
  done
done

[ "$dry_run" = 1 ] && exit 0
python3 scripts/sparsity_table.py "$out"
if plot_python=$(bash scripts/plot_python.sh); then
  "$plot_python" scripts/plot.py scatter "$out/scatter.csv" --x domain_z -o "$out/sweep.png" \
    --title "gradient sparsity sweep ($scale scale, $encoding encoding)" || echo "sparsity_sweep.sh: the plot failed; the table is in $out/sweep.md"
else
  echo "sparsity_sweep.sh: no plot (no python3 with matplotlib); the table is in $out/sweep.md"
fi
echo "sweep: $out/sweep.md"
