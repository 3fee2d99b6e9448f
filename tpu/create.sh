#!/usr/bin/env bash
# Create a Cloud TPU VM and install facepars with its TPU extra on every worker.
#   tpu/create.sh [--dry-run]
set -euo pipefail
source "$(dirname "$0")/common.sh"
run gcloud compute tpus tpu-vm create "$TPU_NAME" --project="$PROJECT" --zone="$ZONE" \
  --accelerator-type="$ACCELERATOR_TYPE" --version="$RUNTIME_VERSION"
on_tpu "python3 -m pip install --upgrade pip && \
  git clone https://github.com/YOUR_ORG/facepars.git ~/facepars 2>/dev/null || (cd ~/facepars && git pull); \
  cd ~/facepars && python3 -m pip install -e '.[tpu]' \
  -f https://storage.googleapis.com/libtpu-releases/index.html"
