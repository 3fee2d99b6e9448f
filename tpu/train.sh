#!/usr/bin/env bash
# Launch facepars.train on the TPU VM (all workers), bf16, model_dir on GCS.
#   tpu/train.sh [--dry-run]          CONFIG=lraspp_mobilenetv3 tpu/train.sh
set -euo pipefail
source "$(dirname "$0")/common.sh"
on_tpu "cd ~/facepars && nohup python3 -m facepars.train --config=$CONFIG \
  --config.steps_per_execution=50 --data_dir=$BUCKET/data --model_dir=$BUCKET/runs/$CONFIG-$RUN \
  --strategy=tpu --precision=mixed_bfloat16 > ~/train-$RUN.log 2>&1 &"
echo "# model_dir: $BUCKET/runs/$CONFIG-$RUN ; after a preemption, RUN=$RUN tpu/train.sh resumes it"
