#!/usr/bin/env bash
# Copy prepared shards (facepars.prepare output) to GCS, or prepare straight into GCS.
#   tpu/upload_data.sh LOCAL_DATA_DIR [--dry-run]
set -euo pipefail
source "$(dirname "$0")/common.sh"
LOCAL=${1:?usage: tpu/upload_data.sh LOCAL_DATA_DIR [--dry-run]}
run gcloud storage cp -r "$LOCAL/manifest.json" "$LOCAL"/*.tfrecord "$BUCKET/data/"
echo "# then: python -m facepars.verify --data_dir=$BUCKET/data"
