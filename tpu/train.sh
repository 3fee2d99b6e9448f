#!/usr/bin/env bash
# Launch facepars.train on the TPU VM (all workers), bf16, model_dir on GCS.
#   tpu/train.sh [--dry-run]          CONFIG=lraspp_mobilenetv3 tpu/train.sh
set -euo pipefail
source "$(dirname "$0")/common.sh"
# run_resuming.sh restarts train after a maintenance event or preemption notice that
# leaves the VM up (train saves a backup at the step and exits 143); backups also go
# to model_dir every --config.backup_every_steps steps and at every epoch end.
on_tpu "cd ~/facepars && nohup tpu/run_resuming.sh python3 -m facepars.train --config=$CONFIG \
  --config.steps_per_execution=50 --config.backup_every_steps=500 \
  --data_dir=$BUCKET/data --model_dir=$BUCKET/runs/$CONFIG-$RUN \
  --strategy=tpu --precision=mixed_bfloat16 > ~/train-$RUN.log 2>&1 &"
echo "# model_dir: $BUCKET/runs/$CONFIG-$RUN ; if the VM itself was taken, recreate it" \
  "(tpu/create.sh) and RUN=$RUN tpu/train.sh resumes at the step after its last backup"
