#!/usr/bin/env bash
# SRCNN training on one GPU: CUDA_VISIBLE_DEVICES=DEVICE_ID, so the process sees it as its device 0.
set -u -o pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

USAGE="usage: $(basename "$0") DEVICE_ID DATA_PATH OUTPUT_PATH [PRE_TRAINED_PATH]
  DEVICE_ID         GPU to train on, 0-7
  DATA_PATH         MindRecord made by src/create_dataset.py, or the folder holding it
  OUTPUT_PATH       checkpoints (ckpt_0/), train_log.jsonl and train.log
  PRE_TRAINED_PATH  checkpoint to start from (optional)
environment: TRAIN_ARGS='--train_steps=20 --batch_size=32' extra train.py flags; DRY_RUN=1 print the command only"

check_nargs 3 4 "$@"
DEVICE_ID=$(check_int DEVICE_ID "$1" 0 7) || exit 2
train_paths "$2" "$3"
if (($# == 4)); then pre_trained_path "$4"; fi
find_python
launch single --env="CUDA_VISIBLE_DEVICES=$DEVICE_ID" --data_path="$DATA_PATH" --output_path="$OUTPUT_PATH" \
    --pre_trained_path="$PRE_TRAINED_PATH" -- --device_target=GPU --device_id=0
