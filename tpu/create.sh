#!/usr/bin/env bash
# Create a Cloud TPU VM and install this checkout of facepars (HEAD, via git
# archive) with its TPU extra on every worker.
#   tpu/create.sh [--dry-run]
set -euo pipefail
source "$(dirname "$0")/common.sh"
run gcloud compute tpus tpu-vm create "$TPU_NAME" --project="$PROJECT" --zone="$ZONE" \
  --accelerator-type="$ACCELERATOR_TYPE" --version="$RUNTIME_VERSION"
archive=/tmp/facepars-$RUN.tar.gz
run git -C "$(dirname "$0")/.." archive --format=tar.gz --prefix=facepars/ -o "$archive" HEAD
run gcloud compute tpus tpu-vm scp "$archive" "$TPU_NAME":facepars.tar.gz --project="$PROJECT" \
  --zone="$ZONE" --worker=all
on_tpu "rm -rf ~/facepars && tar -xzf ~/facepars.tar.gz -C ~ && \
  python3 -m pip install --upgrade pip && cd ~/facepars && python3 -m pip install -e '.[tpu]' \
  -f https://storage.googleapis.com/libtpu-releases/index.html"
