#!/usr/bin/env bash
# Data-parallel SRCNN training on Ascend devices BEGIN_DEVICE..BEGIN_DEVICE+DEVICE_NUM-1 of one server with
# an HCCL rank table: one background process per device (the table's rank, --device_id=<id>, DEVICE_ID, RANK_ID,
# RANK_SIZE, RANK_TABLE_FILE), each in OUTPUT_PATH/device<id>/ with its train.log.
set -u -o pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

USAGE="usage: $(basename "$0") DATA_PATH OUTPUT_PATH BEGIN_DEVICE DEVICE_NUM RANK_TABLE_FILE [PRE_TRAINED_PATH]
  DATA_PATH         MindRecord made by src/create_dataset.py, or the folder holding it
  OUTPUT_PATH       checkpoints (rank 0), train_log.jsonl, device<id>/train.log per device
  BEGIN_DEVICE      first device id, 0-7
  DEVICE_NUM        devices, 1-8, with BEGIN_DEVICE + DEVICE_NUM <= 8; the global batch is batch_size x DEVICE_NUM
  RANK_TABLE_FILE   HCCL rank table (JSON, e.g. made by hccl_tools.py) listing exactly these devices
  PRE_TRAINED_PATH  checkpoint to start from (optional)
environment: TRAIN_ARGS='--train_steps=20' extra train.py flags; DRY_RUN=1 print the commands only"

check_nargs 5 6 "$@"
train_paths "$1" "$2"
BEGIN_DEVICE=$(check_int BEGIN_DEVICE "$3" 0 7) || exit 2
DEVICE_NUM=$(check_int DEVICE_NUM "$4" 1 8) || exit 2
if ((BEGIN_DEVICE + DEVICE_NUM > 8)); then
    fail_usage "BEGIN_DEVICE + DEVICE_NUM must be <= 8 (a server has devices 0-7), got $BEGIN_DEVICE + $DEVICE_NUM"
fi
check_file RANK_TABLE_FILE "$5"
RANK_TABLE=$(abs_path "$5")
if (($# == 6)); then pre_trained_path "$6"; fi
find_python
launch rank_table --rank_table="$RANK_TABLE" --begin_device="$BEGIN_DEVICE" --device_num="$DEVICE_NUM" \
    --data_path="$DATA_PATH" --output_path="$OUTPUT_PATH" --pre_trained_path="$PRE_TRAINED_PATH" -- \
    --device_target=Ascend --run_distribute=true
