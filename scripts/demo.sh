#!/usr/bin/env bash
# The README's main job on the built-in synthetic faces; every step is a real CLI.
# About 8 minutes on a 2-core CPU. Everything lands in $DEMO_DIR (demo_output/).
set -euo pipefail
PY=${PY:-python}
OUT=${DEMO_DIR:-demo_output}
STEPS=${DEMO_STEPS:-60}      # steps per epoch
EPOCHS=${DEMO_EPOCHS:-10}
FACES=${DEMO_FACES:-1200}    # synthetic faces to prepare
REAL_FACES=${DEMO_REAL_FACES:-0}  # 1: score the real faces the packages ship (make demo-real)
mkdir -p "$OUT"
start=$(date +%s)
say() { echo; echo "== [$(( $(date +%s) - start ))s] $*"; }

# Each crop aligned on its face's five points, as predict aligns the faces MTCNN finds:
# the model learns where a face's parts sit, which is what carries to a real face.
say "1/6 prepare: $FACES synthetic faces -> 128x128 aligned, sharded TFRecords in $OUT/data"
"$PY" -m facepars.prepare --source=synthetic --num_examples="$FACES" --seed=0 --image_size=128 \
  --synthetic_size=200 --shard_size=128 --align=landmarks --output_dir="$OUT/data" --overwrite

say "2/6 verify the shards; class distribution chart"
"$PY" -m facepars.verify --data_dir="$OUT/data" --output_dir="$OUT"

say "3/6 train the smoke config (LR-ASPP MobileNetV3, width 0.5) for $EPOCHS x $STEPS steps"
rm -rf "$OUT/model"
"$PY" -m facepars.train --config=smoke --config.epochs="$EPOCHS" \
  --config.steps_per_epoch="$STEPS" --data_dir="$OUT/data" --model_dir="$OUT/model"

say "4/6 evaluate on the test split (network and original resolution)"
"$PY" -m facepars.evaluate --model_path="$OUT/model" --data_dir="$OUT/data" --split=test \
  --original_resolution --output_dir="$OUT/eval" --strategy=one_device

say "5/6 predict on synthetic photos, one real photo (scikit-image's astronaut) and a video"
"$PY" data_prep/write_synthetic_source.py "$OUT/photos_raw" --count 5 --size 360 > /dev/null
mkdir -p "$OUT/photos"
cp "$OUT"/photos_raw/content/All_data/train/image/0000[0-2].jpg "$OUT/photos/"
"$PY" -c "import skimage.data, PIL.Image as I; I.fromarray(skimage.data.astronaut()).save('$OUT/photos/astronaut.jpg')"
"$PY" data_prep/write_synthetic_video.py "$OUT/photos/moving_face.mp4" --frames 90 > /dev/null
"$PY" -m facepars.predict --model_path="$OUT/model" --output_dir="$OUT/predictions" "$OUT/photos"
if [ "$REAL_FACES" = 1 ]; then
  say "5b/6 real faces: does the model parse the astronaut, Grace Hopper and LFW's faces?"
  "$PY" bench/real_faces_bench.py --model_path="$OUT/model" --out="$OUT/real_faces.png"
fi

say "6/6 export: SavedModel and TFLite (float32, int8) with parity checks"
"$PY" -m facepars.export --model_path="$OUT/model" --output_dir="$OUT/export" --data_dir="$OUT/data" \
  --tflite=float32,int8

say "done in $(( $(date +%s) - start ))s. Look at:"
echo "  $OUT/class_distribution.png        class distribution of the data"
echo "  $OUT/eval/test_confusion.png       confusion matrix (test split)"
echo "  $OUT/eval/test_report.json         per-class precision / recall / F1 / IoU"
echo "  $OUT/predictions/*.overlay.jpg     overlays on synthetic faces and the astronaut"
echo "  $OUT/predictions/moving_face.*     the video: overlay mp4, per-frame labels, summary"
echo "  $OUT/export/                       SavedModel, TFLite, export_report.json"
echo "  tensorboard --logdir $OUT/model/tensorboard"
