#!/usr/bin/env bash
# End-to-end demo on synthetic data, on CPU:
#   1. generate the synthetic COCO-format and ADE20K-layout data sets;
#   2. train the tiny Mask R-CNN + InternImage with 2 processes
#      (tools/dist_train.sh, gloo without a GPU) and evaluate it with
#      tools/test.py (COCO bbox / segm mAP);
#   3. the same for the tiny UperNet + InternImage (mIoU);
#   4. draws both models' predictions on a few validation images with
#      demo/image_demo.py and prints where the pictures are.
# Fails (exit 1) if bbox_mAP_50 < 0.3 or mIoU < 30.
#
# Environment: WORK_DIR (default work_dirs/demo), DATA_DIR (data/synthetic),
# GPUS (processes, default 2), PORT (default 29511), NUM_PICTURES (default 3).
set -euo pipefail
cd "$(dirname "$0")/.."

WORK_DIR=${WORK_DIR:-work_dirs/demo}
DATA_DIR=${DATA_DIR:-data/synthetic}
GPUS=${GPUS:-2}
PORT=${PORT:-29511}
DET_CFG=configs/demo/mask_rcnn_internimage_demo.py
SEG_CFG=configs/demo/upernet_internimage_demo.py
START=$SECONDS

step() { echo; echo "==> [demo $(( SECONDS - START ))s] $*"; }

# Print the metrics of the newest test run under $1 and check thresholds.
check_metrics() {
    python - "$1" "$2" <<'EOF'
import glob, json, os, sys
work_dir, task = sys.argv[1], sys.argv[2]
logs = sorted(glob.glob(os.path.join(work_dir, '*', '*.json')),
              key=os.path.getmtime)
if not logs:
    sys.exit(f'no metrics json under {work_dir}')
with open(logs[-1]) as f:
    metrics = json.loads(f.read().strip().splitlines()[-1])
if task == 'det':
    shown = {k: metrics[f'coco/{k}']
             for k in ('bbox_mAP', 'bbox_mAP_50', 'segm_mAP')}
    key, low = 'bbox_mAP_50', 0.3
else:
    shown = {'mIoU': metrics['mIoU']}
    key, low = 'mIoU', 30
print('    ' + ', '.join(f'{k}: {v}' for k, v in shown.items()))
if shown[key] < low:
    sys.exit(f'FAILED: {key} {shown[key]} < {low}')
EOF
}

step "1/6 generating synthetic data in $DATA_DIR"
python tools/make_synthetic_data.py --out "$DATA_DIR"

step "2/6 training Mask R-CNN + InternImage (tiny) with $GPUS CPU processes"
PORT=$PORT tools/dist_train.sh "$DET_CFG" "$GPUS" \
    --work-dir "$WORK_DIR/det" \
    --cfg-options "train_dataloader.dataset.data_root=$DATA_DIR/coco/" \
    "val_dataloader.dataset.data_root=$DATA_DIR/coco/" \
    "test_dataloader.dataset.data_root=$DATA_DIR/coco/" \
    "val_evaluator.ann_file=$DATA_DIR/coco/annotations/instances_val2017.json" \
    "test_evaluator.ann_file=$DATA_DIR/coco/annotations/instances_val2017.json"

step "3/6 evaluating the detector with tools/test.py"
python tools/test.py "$DET_CFG" "$(cat "$WORK_DIR/det/last_checkpoint")" \
    --work-dir "$WORK_DIR/det_test" \
    --cfg-options "test_dataloader.dataset.data_root=$DATA_DIR/coco/" \
    "test_evaluator.ann_file=$DATA_DIR/coco/annotations/instances_val2017.json"
check_metrics "$WORK_DIR/det_test" det

SEG_ROOT=$DATA_DIR/ade/ADEChallengeData2016
step "4/6 training UperNet + InternImage (tiny) with $GPUS CPU processes"
PORT=$PORT tools/dist_train.sh "$SEG_CFG" "$GPUS" \
    --work-dir "$WORK_DIR/seg" \
    --cfg-options "train_dataloader.dataset.data_root=$SEG_ROOT" \
    "val_dataloader.dataset.data_root=$SEG_ROOT" \
    "test_dataloader.dataset.data_root=$SEG_ROOT"

step "5/6 evaluating the segmentor with tools/test.py"
python tools/test.py "$SEG_CFG" "$(cat "$WORK_DIR/seg/last_checkpoint")" \
    --work-dir "$WORK_DIR/seg_test" \
    --cfg-options "test_dataloader.dataset.data_root=$SEG_ROOT"
check_metrics "$WORK_DIR/seg_test" seg

PICS=$WORK_DIR/pictures
NUM_PICTURES=${NUM_PICTURES:-3}
step "6/6 drawing predictions on $NUM_PICTURES validation images of each task"
# The first validation images, drawn 3x larger so that the labels stay
# readable (the models resize them to their test scale).
python - "$DATA_DIR" "$PICS/inputs" "$NUM_PICTURES" <<'EOF'
import os, sys
from PIL import Image
data, out, num = sys.argv[1], sys.argv[2], int(sys.argv[3])
for task, folder in (('det', 'coco/val2017'),
                     ('seg', 'ade/ADEChallengeData2016/images/validation')):
    os.makedirs(os.path.join(out, task), exist_ok=True)
    for name in sorted(os.listdir(os.path.join(data, folder)))[:num]:
        img = Image.open(os.path.join(data, folder, name))
        img.resize((img.width * 3, img.height * 3), Image.BICUBIC).save(
            os.path.join(out, task, name), quality=95)
EOF
python demo/image_demo.py "$PICS/inputs/det" "$DET_CFG" --pred-score-thr 0.5 \
    --weights "$(cat "$WORK_DIR/det/last_checkpoint")" --out-dir "$PICS/det"
python demo/image_demo.py "$PICS/inputs/seg" "$SEG_CFG" \
    --weights "$(cat "$WORK_DIR/seg/last_checkpoint")" --out-dir "$PICS/seg"

step "done in $(( SECONDS - START ))s"
echo "Pictures of the predictions: $PICS/det/vis/ (Mask R-CNN), $PICS/seg/vis/ (UperNet)"
