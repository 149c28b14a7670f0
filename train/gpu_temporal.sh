#!/usr/bin/env bash
# Issue #23 on a lent GPU, in one device call (MODEL.md, "Temporal stability from still images"): fine-tune copies
# of the shipped v2 with its own perceptual loss (the v2 phase-5 recipe) plus the warp-consistency term at two
# weights side by side, then the flicker and quality benches of the packaged model against both candidates.
# Needs `python -m benchmarks.carry` first (carry: ["carry"]), as train/gpu_v2.sh.
#
#   bash train/gpu_temporal.sh                 # on the device: results in $OUT
#   DEVICE=cpu MIN1=0.3 MIN2=0.2 QUICK=--smoke OUT=runs/gpu-dry bash train/gpu_temporal.sh    # dry run here
#
# CPU runs (distillation to the frozen v2 plus the term, no VGG) showed the trade-off: the term halves the raw
# flicker only at weights where the pixel loss to the teacher grows several-fold (MODEL.md). With the perceptual
# loss in the objective the network may move away from its teacher's unstable textures without losing the style.
set -u
OUT=${OUT:?set OUT to the results folder}
DEVICE=${DEVICE:-cuda}
MIN1=${MIN1:-3}
MIN2=${MIN2:-1}
QUICK=${QUICK:-}
WEIGHTS=${WEIGHTS:-30 100}
source "$(dirname "$0")/gpu_env.sh"

COMMON=(--device "$DEVICE" --teacher v2 --content-dir carry/train --eval-dir carry/content --resume --size 256
        --batch 16 --workers 6 --checkpoint-minutes 1 --perceptual-weight 1 --distill-weight 0.5)
recipe() {  # name lr minutes weight
  python3 train/distill.py "${COMMON[@]}" --out "runs/gpu/$1.safetensors" --lr "$2" --minutes "$3" \
    --temporal-weight "$4" >> "$OUT/$1.log" 2>&1
}
started=$(date +%s)
models=()
for weight in $WEIGHTS; do
  name=temporal$weight
  (recipe "$name" 5e-4 "$MIN1" "$weight"; recipe "$name" 2e-4 "$MIN2" "$weight") &
  models+=("runs/gpu/$name.safetensors")
done
wait
echo "training: $(( $(date +%s) - started )) s" >> "$REPORT"
for weight in $WEIGHTS; do
  cp "runs/gpu/temporal$weight.safetensors" "$OUT/"; tail -3 "$OUT/temporal$weight.log" >> "$REPORT"
done

run_bench 150 flicker --quick $QUICK --compare "${models[@]}"
run_bench 100 quality --device "$DEVICE" $QUICK --compare "${models[@]}"
echo "total: $(( $(date +%s) - started )) s" >> "$REPORT"
