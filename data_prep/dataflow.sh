#!/usr/bin/env bash
# Run facepars.prepare, or facepars.predict on a photo corpus, on Google Cloud
# Dataflow; --dry-run prints the commands only.
#
#   data_prep/dataflow.sh SOURCE INPUT_URL OUTPUT_URL [--dry-run] [prepare flags ...]
#   data_prep/dataflow.sh celebamask_hq gs://my-bucket/raw/celebamask_hq \
#       gs://my-bucket/facepars/celebamask256 --image_size=256 --on_error=skip
#   data_prep/dataflow.sh predict MODEL_URL OUTPUT_URL [--dry-run] [predict flags ...] PHOTOS...
#   data_prep/dataflow.sh predict gs://my-bucket/export/saved_model gs://my-bucket/parsed \
#       --faces=detect 'gs://my-bucket/photos/*.jpg'
#
# Steps: build facepars's wheel; bake it with TensorFlow into a worker image on
# top of Beam's own SDK image (Cloud Build); submit prepare with that image. The
# driver (this machine) lists the source and plans the shards, Dataflow's workers
# convert and write them, the driver writes the manifest. See data_prep/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

: "${PROJECT:=$(gcloud config get-value project 2>/dev/null || true)}"
: "${PROJECT:=my-project}"
: "${REGION:=us-central1}"
: "${BUCKET:=gs://my-bucket/facepars}"          # temp and staging files go under it
: "${NUM_WORKERS:=10}"                           # start; Dataflow scales up to MAX_WORKERS
: "${MAX_WORKERS:=50}"
: "${MACHINE_TYPE:=n2-standard-4}"
: "${BEAM_VERSION:=2.77.0}"
: "${PYTHON_VERSION:=3.11}"
: "${IMAGE:=${REGION}-docker.pkg.dev/${PROJECT}/facepars/prepare-worker:$(sed -n 's/^__version__ = "\(.*\)"/\1/p' facepars/__init__.py)}"

if [ $# -lt 3 ] || { [ "$1" = predict ] && [ $# -lt 4 ]; }; then
  echo "usage: $0 SOURCE INPUT_URL OUTPUT_URL [--dry-run] [prepare flags ...]" >&2
  echo "       $0 predict MODEL_URL OUTPUT_URL [--dry-run] [predict flags ...] PHOTOS..." >&2
  exit 2
fi
SOURCE=$1 INPUT=$2 OUTPUT=$3
shift 3
DRY_RUN=0 EXTRA=()
for arg in "$@"; do
  if [ "$arg" = "--dry-run" ]; then DRY_RUN=1; else EXTRA+=("$arg"); fi
done

run() {
  if [ "$DRY_RUN" = 1 ]; then printf '%q ' "$@"; echo; else "$@"; fi
}

# 1. The wheel the workers install (facepars itself; TensorFlow comes from the image).
run rm -rf dist
run python3 -m pip wheel --no-deps --wheel-dir dist .

# 2. The worker image: Beam's SDK image for this Python and Beam, plus facepars[cpu,detect].
run gcloud builds submit --project="$PROJECT" --region="$REGION" \
  --config=data_prep/dataflow_image.yaml \
  --substitutions="_IMAGE=$IMAGE,_BEAM_VERSION=$BEAM_VERSION,_PYTHON_VERSION=$PYTHON_VERSION" .

# 3. The job. The driver needs facepars[cpu,dataflow] installed where this runs.
OPTIONS="runner=DataflowRunner,project=$PROJECT,region=$REGION"
OPTIONS+=",temp_location=$BUCKET/dataflow/tmp,staging_location=$BUCKET/dataflow/staging"
OPTIONS+=",sdk_container_image=$IMAGE,num_workers=$NUM_WORKERS,max_num_workers=$MAX_WORKERS"
KIND=prepare
[ "$SOURCE" = predict ] && KIND=predict
OPTIONS+=",machine_type=$MACHINE_TYPE,job_name=facepars-$KIND-$(date +%Y%m%d-%H%M%S)"
if [ "$SOURCE" = predict ]; then  # INPUT is the model; the photos are among EXTRA
  run python3 -m facepars.predict --model_path="$INPUT" --output_dir="$OUTPUT" --runner=beam \
    --beam_pipeline_options="$OPTIONS" "${EXTRA[@]}"
else
  run python3 -m facepars.prepare --source="$SOURCE" --input_dir="$INPUT" \
    --output_dir="$OUTPUT" --runner=beam --beam_pipeline_options="$OPTIONS" "${EXTRA[@]}"
fi
