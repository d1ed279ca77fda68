#!/usr/bin/env bash
# The accelerator check, one script for a lent GPU/TPU (about 5-8 minutes on one GPU):
# the device, the paper's Table 3 (both stages, stage 1, G; batch 1, 16, 64) with float32 and
# bf16 convolutions, the stage-1 and stage-2 training images/s at the paper size, and the peak
# device memory of each part. Run from anywhere; prints everything to stdout.
#
#   bash experiments/accelerator_check.sh            # the full check
#   SMOKE=1 bash experiments/accelerator_check.sh    # tiny sizes: checks the script on a CPU
set -euo pipefail
cd "$(dirname "$0")"
if [ "${SMOKE:-0}" = 1 ]; then
  SIZE=64; BATCHES="2"; SECONDS_PER_ROW=0.2; TRAIN_BATCHES="1 2"
else
  SIZE=256; BATCHES="16 64"; SECONDS_PER_ROW=2; TRAIN_BATCHES="1 2 4 16"
fi
python -c "import jax; print('jax', jax.__version__, jax.devices())"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || true
for dtype in float32 bfloat16; do
  echo "== Table 3, ${dtype} convolutions"
  python bench_speed.py --image-size "$SIZE" --batch $BATCHES --num 8 \
      --seconds "$SECONDS_PER_ROW" --dtype "$dtype"
done
echo "== training at the paper size"
for dtype in float32 bfloat16; do
  python bench_train.py --image-size "$SIZE" --batch $TRAIN_BATCHES --seconds "$SECONDS_PER_ROW" \
      --dtype "$dtype"
done
