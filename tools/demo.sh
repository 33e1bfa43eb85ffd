#!/usr/bin/env bash
# End-to-end demo on synthetic data, on CPU, in six stages:
#   1. data: the synthetic COCO-format and ADE20K-layout data sets
#      (tools/make_synthetic_data.py);
#   2. train det: the tiny Mask R-CNN + InternImage (tools/train.py, or
#      tools/dist_train.sh with GPUS > 1), its backbone initialised from the
#      pretrained demo backbone (demo/pretrained/, through the config's
#      init_cfg Pretrained);
#   3. test det: tools/test.py on the validation images (COCO bbox / segm mAP);
#   4. train seg, 5. test seg: the same for the tiny UperNet (mIoU);
#   6. pictures: both models' predictions on the first validation images
#      (demo/image_demo.py) and one picture of them all.
# Each stage prints a line when it starts and its time when it ends; the
# tools' full output goes to $WORK_DIR/logs/ (the last lines are shown if a
# stage fails). Fails (exit 1) if bbox_mAP_50 < 0.9 or mIoU < 60.
#
# Environment: PYTHON (default python), WORK_DIR (default work_dirs/demo),
# DATA_DIR (data/synthetic), GPUS (training processes, default 1; more go
# through tools/dist_train.sh), PORT (its port, default 29511), NUM_PICTURES
# (default 3), OMP_NUM_THREADS (threads per process, default 1: on a small
# CPU the tiny models gain little from a second thread, and lose a lot when
# other jobs load the machine).
set -euo pipefail
cd "$(dirname "$0")/.."

export PYTHON=${PYTHON:-python}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
export PYTHONUNBUFFERED=1
WORK_DIR=${WORK_DIR:-work_dirs/demo}
DATA_DIR=${DATA_DIR:-data/synthetic}
GPUS=${GPUS:-1}
export PORT=${PORT:-29511}
NUM_PICTURES=${NUM_PICTURES:-3}
DET_CFG=configs/demo/mask_rcnn_internimage_demo.py
SEG_CFG=configs/demo/upernet_internimage_demo.py
COCO=$DATA_DIR/coco/
ADE=$DATA_DIR/ade/ADEChallengeData2016
LOGS=$WORK_DIR/logs
PICS=$WORK_DIR/pictures
START=$SECONDS
STAGE_NAMES=()
STAGE_TIMES=()
mkdir -p "$LOGS"

stage_start() {
    STAGE=$1
    STAGE_START=$SECONDS
    echo
    echo "==> [demo $(( SECONDS - START ))s] $STAGE: $2"
}

stage_end() {
    local took=$(( SECONDS - STAGE_START ))
    STAGE_NAMES+=("$STAGE")
    STAGE_TIMES+=("$took")
    echo "    $STAGE: ${took}s"
}

# run LOG CMD...: run CMD with its whole output in LOG, showing its training
# progress (one short line per logged iteration); if it fails, show the end
# of LOG and stop the demo.
run() {
    local log=$1
    shift
    if ! "$@" < /dev/null 2>&1 | tee "$log" | awk '
        /(Epoch|Iter)\(train\)/ {
            out = ""
            if (match($0, /(Epoch|Iter)\(train\) *\[[ 0-9\/]+\](\[ *[0-9]+\/[0-9]+\])?/))
                out = substr($0, RSTART, RLENGTH)
            if (match($0, /eta: ([0-9]+ days?, )?[0-9:]+/))
                out = out "  " substr($0, RSTART, RLENGTH)
            if (match($0, / loss: [0-9.]+/))
                out = out "  " substr($0, RSTART + 1, RLENGTH - 1)
            print "    " out
            fflush()
        }'; then
        echo "FAILED: $STAGE; the end of its log ($log):"
        tail -n 40 "$log"
        exit 1
    fi
}

# train CONFIG WORK LOG CFG_OPTIONS...: one training run, without the
# validation at its end (tools/test.py evaluates next).
train() {
    local cfg=$1 work=$2 log=$3
    shift 3
    local args=(--work-dir "$work" --cfg-options "$@"
                val_dataloader=None val_cfg=None val_evaluator=None)
    if [ "$GPUS" -gt 1 ]; then
        run "$log" tools/dist_train.sh "$cfg" "$GPUS" "${args[@]}"
    else
        run "$log" "$PYTHON" tools/train.py "$cfg" "${args[@]}"
    fi
}

# Print the metrics of the newest test run under $1 and check a threshold.
check_metrics() {
    "$PYTHON" - "$1" "$2" <<'EOF'
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
    key, low = 'bbox_mAP_50', 0.9
else:
    shown = {'mIoU': metrics['mIoU']}
    key, low = 'mIoU', 60
line = ', '.join(f'{k}: {v}' for k, v in shown.items())
with open(os.path.join(os.path.dirname(work_dir), 'metrics.txt'), 'a') as f:
    f.write(f'{task}: {line}\n')
print('    ' + line)
if shown[key] < low:
    sys.exit(f'FAILED: {key} {shown[key]} < {low}')
EOF
}
rm -f "$WORK_DIR/metrics.txt"

stage_start data "1/6 generating synthetic data in $DATA_DIR"
run "$LOGS/1_data.log" "$PYTHON" tools/make_synthetic_data.py --out "$DATA_DIR"
stage_end

stage_start "train det" "2/6 training Mask R-CNN + InternImage (tiny), $GPUS process(es) x $OMP_NUM_THREADS thread(s)"
train "$DET_CFG" "$WORK_DIR/det" "$LOGS/2_train_det.log" \
    "train_dataloader.dataset.data_root=$COCO"
stage_end

stage_start "test det" "3/6 evaluating the detector with tools/test.py"
run "$LOGS/3_test_det.log" "$PYTHON" tools/test.py "$DET_CFG" \
    "$(cat "$WORK_DIR/det/last_checkpoint")" --work-dir "$WORK_DIR/det_test" \
    --cfg-options "test_dataloader.dataset.data_root=$COCO" \
    "test_evaluator.ann_file=${COCO}annotations/instances_val2017.json"
check_metrics "$WORK_DIR/det_test" det
stage_end

stage_start "train seg" "4/6 training UperNet + InternImage (tiny), $GPUS process(es) x $OMP_NUM_THREADS thread(s)"
train "$SEG_CFG" "$WORK_DIR/seg" "$LOGS/4_train_seg.log" \
    "train_dataloader.dataset.data_root=$ADE"
stage_end

stage_start "test seg" "5/6 evaluating the segmentor with tools/test.py"
run "$LOGS/5_test_seg.log" "$PYTHON" tools/test.py "$SEG_CFG" \
    "$(cat "$WORK_DIR/seg/last_checkpoint")" --work-dir "$WORK_DIR/seg_test" \
    --cfg-options "test_dataloader.dataset.data_root=$ADE"
check_metrics "$WORK_DIR/seg_test" seg
stage_end

stage_start pictures "6/6 drawing predictions on $NUM_PICTURES validation images of each task"
# The first validation images, drawn 3x larger so that the labels stay
# readable (the models resize them to their test scale).
rm -rf "$PICS"
"$PYTHON" - "$DATA_DIR" "$PICS/inputs" "$NUM_PICTURES" <<'EOF'
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
run "$LOGS/6_pictures_det.log" "$PYTHON" demo/image_demo.py "$PICS/inputs/det" "$DET_CFG" \
    --pred-score-thr 0.5 --weights "$(cat "$WORK_DIR/det/last_checkpoint")" \
    --out-dir "$PICS/det"
run "$LOGS/6_pictures_seg.log" "$PYTHON" demo/image_demo.py "$PICS/inputs/seg" "$SEG_CFG" \
    --weights "$(cat "$WORK_DIR/seg/last_checkpoint")" --out-dir "$PICS/seg"
# All pictures in one (Mask R-CNN above, UperNet below), as in the README.
"$PYTHON" - "$PICS" <<'EOF'
import os, sys
from PIL import Image
pics, side = sys.argv[1], 256
rows = [[Image.open(os.path.join(pics, task, 'vis', name))
         for name in sorted(os.listdir(os.path.join(pics, task, 'vis')))]
        for task in ('det', 'seg')]
sheet = Image.new('RGB', (side * max(map(len, rows)) + 4 * (max(map(len, rows)) - 1),
                          2 * side + 4), 'white')
for r, row in enumerate(rows):
    for c, img in enumerate(row):
        sheet.paste(img.convert('RGB').resize((side, side), Image.LANCZOS),
                    (c * (side + 4), r * (side + 4)))
sheet.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(
    os.path.join(pics, 'demo_predictions.png'), optimize=True)
EOF
stage_end

echo
echo "==> [demo $(( SECONDS - START ))s] done"
for i in "${!STAGE_NAMES[@]}"; do
    printf '    %-10s %4ss\n' "${STAGE_NAMES[$i]}" "${STAGE_TIMES[$i]}"
done
printf '    %-10s %4ss\n' total "$(( SECONDS - START ))"
sed 's/^/    /' "$WORK_DIR/metrics.txt"
echo "Pictures of the predictions: $PICS/det/vis/ (Mask R-CNN), $PICS/seg/vis/ (UperNet),"
echo "all of them in $PICS/demo_predictions.png; logs in $LOGS/"
