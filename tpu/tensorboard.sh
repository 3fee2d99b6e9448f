#!/usr/bin/env bash
# TensorBoard on your machine against the GCS model_dir(s).
#   tpu/tensorboard.sh [--dry-run]
set -euo pipefail
source "$(dirname "$0")/common.sh"
run tensorboard --logdir "$BUCKET/runs" --port 6006
