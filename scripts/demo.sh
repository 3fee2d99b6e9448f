#!/usr/bin/env bash
# The README's main job on the built-in synthetic faces; every step is a real CLI.
set -euo pipefail
PY=${PY:-python}
OUT=${DEMO_DIR:-demo_output}
mkdir -p "$OUT"
echo "== 1. prepare: synthetic faces -> sharded TFRecords in $OUT/data"
"$PY" -m facepars.prepare --source=synthetic --num_examples=600 --seed=0 \
  --output_dir="$OUT/data" --overwrite
echo "== 2. verify the shards and draw the class distribution"
"$PY" -m facepars.verify --data_dir="$OUT/data" --chart="$OUT/class_distribution.png"
echo "== done: outputs in $OUT/ (class_distribution.png, data/)"
