#!/usr/bin/env bash
# Multi-GPU and multi-worker hosts (MultiWorkerMirroredStrategy).
#   One host, all its GPUs:   python -m facepars.train --strategy=mirrored ...
#   N hosts: run this on each, with WORKERS="host1:12345,host2:12345" and INDEX=0..N-1
#   (the same RUN on every host; INDEX 0 is the chief, which writes model_dir).
#   tpu/multi_worker.sh [--dry-run]
set -euo pipefail
source "$(dirname "$0")/common.sh"
: "${WORKERS:?set WORKERS=host1:port,host2:port}"
: "${INDEX:?set INDEX to the position of this host in WORKERS, 0 is the chief}"
hosts=""
IFS=',' read -r -a list <<< "$WORKERS"
for h in "${list[@]}"; do hosts="$hosts\"$h\","; done
export TF_CONFIG="{\"cluster\": {\"worker\": [${hosts%,}]}, \"task\": {\"type\": \"worker\", \"index\": $INDEX}}"
echo "# TF_CONFIG=$TF_CONFIG"
# A SIGTERM to any worker stops every worker at the same step, each saving its
# backup; run_resuming.sh restarts this host's worker (the others restart theirs).
run "$(dirname "$0")/run_resuming.sh" python -m facepars.train --config="$CONFIG" \
  --strategy=multi_worker --precision=mixed_float16 --config.backup_every_steps=500 \
  --data_dir="$BUCKET/data" --model_dir="$BUCKET/runs/$CONFIG-$RUN"
