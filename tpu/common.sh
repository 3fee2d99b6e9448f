# Shared by the tpu/ scripts: settings, and run-or-print for --dry-run.
# Override any of these in the environment.
: "${PROJECT:=$(gcloud config get-value project 2>/dev/null || true)}"
: "${PROJECT:=my-project}"                 # gcloud's default project, when it has one
: "${ZONE:=us-central2-b}"                 # v4; for v5e e.g. us-west4-a
: "${TPU_NAME:=facepars-tpu}"
: "${ACCELERATOR_TYPE:=v4-8}"              # or v5litepod-8
# The TPU VM image: the framework-free base image for the accelerator, because
# create.sh installs TensorFlow itself (the tpu extra, TF >= 2.20 from the libtpu
# index) and Google's newest TF images (tpu-vm-tf-*) trail that. See tpu/README.md.
case "$ACCELERATOR_TYPE" in
  v5litepod*|v5e*) _base_image=v2-alpha-tpuv5-lite ;;
  v5p*) _base_image=v2-alpha-tpuv5 ;;
  v6e*) _base_image=v2-alpha-tpuv6e ;;
  *) _base_image=tpu-ubuntu2204-base ;;
esac
: "${RUNTIME_VERSION:=$_base_image}"
: "${BUCKET:=gs://my-bucket/facepars}"
: "${CONFIG:=pspnet_resnet50}"
: "${RUN:=$(date +%Y%m%d-%H%M%S)}"

DRY_RUN=0
for arg in "$@"; do
  [ "$arg" = "--dry-run" ] && DRY_RUN=1
done

run() {
  if [ "$DRY_RUN" = 1 ]; then
    printf '%q ' "$@"; echo
  else
    "$@"
  fi
}

on_tpu() {  # run a command on every worker of the TPU VM
  run gcloud compute tpus tpu-vm ssh "$TPU_NAME" --project="$PROJECT" --zone="$ZONE" \
    --worker=all --command="$1"
}
