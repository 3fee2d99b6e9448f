#!/usr/bin/env bash
# Delete the TPU VM (the data and runs stay in GCS).
#   tpu/teardown.sh [--dry-run]
set -euo pipefail
source "$(dirname "$0")/common.sh"
run gcloud compute tpus tpu-vm delete "$TPU_NAME" --project="$PROJECT" --zone="$ZONE" --quiet
