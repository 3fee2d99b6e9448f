#!/usr/bin/env bash
# Get a raw dataset onto disk, in the layout facepars.prepare reads (docs/data.md).
#   data_prep/fetch.sh kaggle|celebamask_hq|lapa DEST [--dry-run]
# kaggle needs the Kaggle CLI (pip install kaggle) and ~/.kaggle/kaggle.json;
# CelebAMask-HQ and LaPa are on Google Drive: gdown (pip install gdown) fetches
# the public share links below. Then check what arrived:
#   python data_prep/inspect_raw.py --source=... --input_dir=DEST
set -euo pipefail
SOURCE=${1:?usage: fetch.sh kaggle|celebamask_hq|lapa DEST [--dry-run]}
DEST=${2:?usage: fetch.sh kaggle|celebamask_hq|lapa DEST [--dry-run]}
DRY_RUN=0; [ "${3:-}" = "--dry-run" ] && DRY_RUN=1
run() { if [ "$DRY_RUN" = 1 ]; then printf '%q ' "$@"; echo; else "$@"; fi; }
run mkdir -p "$DEST"
case "$SOURCE" in
  kaggle)  # 22,188 pairs, ~3 GB: content/All_data/{train,val}/{image,seg}
    run kaggle datasets download -d ashish2001/multiclass-face-segmentation -p "$DEST" --unzip ;;
  celebamask_hq)  # 30,000 images + per-part masks, ~3 GB, plus CelebA's partition file
    # Links as published by the authors (github.com/switchablenorms/CelebAMask-HQ).
    run gdown --folder "${CELEBAMASK_HQ_URL:-https://drive.google.com/drive/folders/0B4qLcYyJmiz0TXY1NG02bzZVRGs}" -O "$DEST"
    run gdown "${CELEBA_PARTITION_URL:-https://drive.google.com/uc?id=0B7EVK8r0v71pY0NSMzRuSXJEVkk}" -O "$DEST/list_eval_partition.txt"
    echo "# unzip CelebAMask-HQ.zip in $DEST so that CelebA-HQ-img/ and CelebAMask-HQ-mask-anno/ sit in it" ;;
  lapa)  # 22,168 images: {train,val,test}/{images,labels}
    # Link as published by the authors (github.com/jd-opensource/lapa-dataset).
    run gdown "${LAPA_URL:-https://drive.google.com/uc?id=1EtyCtiQZt2Y5qrb7Twhq3-sQ-_Yel99f}" -O "$DEST/LaPa.tar.gz"
    run tar -xzf "$DEST/LaPa.tar.gz" -C "$DEST" --strip-components=1 ;;
  *) echo "unknown source $SOURCE (kaggle, celebamask_hq, lapa)" >&2; exit 2 ;;
esac
