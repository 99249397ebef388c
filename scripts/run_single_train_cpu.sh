#!/usr/bin/env bash
# SRCNN training in one CPU process.
set -u -o pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

USAGE="usage: $(basename "$0") DATA_PATH OUTPUT_PATH [PRE_TRAINED_PATH]
  DATA_PATH         MindRecord made by src/create_dataset.py, or the folder holding it
  OUTPUT_PATH       checkpoints (ckpt_0/), train_log.jsonl and train.log
  PRE_TRAINED_PATH  checkpoint to start from (optional)
environment: TRAIN_ARGS='--train_steps=20 --batch_size=32' extra train.py flags; DRY_RUN=1 print the command only"

check_nargs 2 3 "$@"
train_paths "$1" "$2"
if (($# == 3)); then pre_trained_path "$3"; fi
find_python
launch single --data_path="$DATA_PATH" --output_path="$OUTPUT_PATH" --pre_trained_path="$PRE_TRAINED_PATH" -- \
    --device_target=CPU
