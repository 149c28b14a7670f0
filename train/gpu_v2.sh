#!/usr/bin/env bash
# The v2 default model on a lent GPU, in one device call (MODEL.md, "On a lent GPU"): two phase-3 recipes trained
# side by side on the one GPU from the committed v2 state, then the quality bench of v1 and both candidates against
# the same Gatys runs, then the GPU benchmark rows. Needs `python -m benchmarks.carry` first (carry: ["carry"]).
#
#   bash train/gpu_v2.sh                       # on the device: results in $OUT
#   DEVICE=cpu MIN1=0.3 MIN2=0.2 QUICK=--smoke OUT=runs/gpu-dry bash train/gpu_v2.sh    # dry run here
#
# Recipe A: distillation + perceptual weight 0.5 (the perceptual term about 10x the distillation term);
# recipe B: the perceptual loss alone (--distill-weight 0), i.e. the Gatys teacher's loss as for v1;
# recipe C: B on 256 px crops (the size the quality bench judges at). RECIPES picks which run (default "B C").
# Each: MIN1 minutes at lr 1e-3, then MIN2 minutes at lr 3e-4 (a resume: the state file carries everything else).
set -u
OUT=${OUT:?set OUT to the results folder}
DEVICE=${DEVICE:-cuda}
MIN1=${MIN1:-5}
MIN2=${MIN2:-1.5}
QUICK=${QUICK:-}
RECIPES=${RECIPES:-B C}
source "$(dirname "$0")/gpu_env.sh"

COMMON=(--device "$DEVICE" --content-dir carry/train --eval-dir carry/content --resume --size 192 --batch 16
        --workers 6 --checkpoint-minutes 1)
RECIPE_A=(--perceptual-weight 0.5)
RECIPE_B=(--perceptual-weight 1 --distill-weight 0)
RECIPE_C=(--perceptual-weight 1 --distill-weight 0 --size 256)
recipe() {  # name lr minutes args...
  local name=$1 lr=$2 minutes=$3
  shift 3
  python3 train/distill.py "${COMMON[@]}" --out "runs/gpu/$name.safetensors" --lr "$lr" --minutes "$minutes" "$@" \
    >> "$OUT/$name.log" 2>&1
}
started=$(date +%s)
models=()
for name in $RECIPES; do
  cp train/checkpoints/v2.train.safetensors "runs/gpu/$name.train.safetensors"
  declare -n args="RECIPE_$name"
  (recipe "$name" 1e-3 "$MIN1" "${args[@]}"; recipe "$name" 3e-4 "$MIN2" "${args[@]}") &
  unset -n args
  models+=("runs/gpu/$name.safetensors")
done
wait
echo "training: $(( $(date +%s) - started )) s" >> "$REPORT"
for name in $RECIPES; do cp "runs/gpu/$name.train.safetensors" "$OUT/"; tail -3 "$OUT/$name.log" >> "$REPORT"; done

# v1 as the base row; the shipped v2 and the new candidates against the same Gatys runs
run_bench 100 quality --device "$DEVICE" $QUICK --model v1 --compare multistyle/assets/default.safetensors "${models[@]}"
run_bench 45 stylize --device "$DEVICE" --quick $QUICK
run_bench 60 camera --quick $QUICK
echo "total: $(( $(date +%s) - started )) s" >> "$REPORT"
