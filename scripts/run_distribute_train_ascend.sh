#!/usr/bin/env bash
# Data-parallel SRCNN training on Ascend devices BEGIN_DEVICE..BEGIN_DEVICE+DEVICE_NUM-1 of one server with
# an HCCL rank table: one background process per device, each in OUTPUT_PATH/device<id>/ with its train.log.
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
check_exists DATA_PATH "$1"
DATA_PATH=$(abs_path "$1")
OUTPUT_PATH=$(abs_path "$2")
BEGIN_DEVICE=$(check_int BEGIN_DEVICE "$3" 0 7) || exit 2
DEVICE_NUM=$(check_int DEVICE_NUM "$4" 1 8) || exit 2
if ((BEGIN_DEVICE + DEVICE_NUM > 8)); then
    fail_usage "BEGIN_DEVICE + DEVICE_NUM must be <= 8 (a server has devices 0-7), got $BEGIN_DEVICE + $DEVICE_NUM"
fi
check_file RANK_TABLE_FILE "$5"
RANK_TABLE=$(abs_path "$5")
PRE_TRAINED_PATH=""
if (($# == 6)); then
    check_file PRE_TRAINED_PATH "$6"
    PRE_TRAINED_PATH=$(abs_path "$6")
fi
find_python

# "device_id rank_id" for every device of the rank table; each device we start must be listed, and only those
RANKS=$("$PYTHON" - "$RANK_TABLE" <<'PY'
import json, sys
try:
    with open(sys.argv[1], encoding="utf-8") as handle:
        table = json.load(handle)
    for server in table["server_list"]:
        for device in server["device"]:
            print(int(device["device_id"]), int(device["rank_id"]))
except (OSError, ValueError, KeyError, TypeError) as err:
    print(f"not a rank table with server_list[].device[].device_id/rank_id ({type(err).__name__}: {err})")
    sys.exit(1)
PY
) || fail_usage "RANK_TABLE_FILE '$RANK_TABLE' is $RANKS"
LISTED=$(wc -l <<< "$RANKS")
if ((LISTED != DEVICE_NUM)); then
    fail_usage "RANK_TABLE_FILE '$RANK_TABLE' lists $LISTED device(s) but DEVICE_NUM is $DEVICE_NUM"
fi
RANK_OF=()
for ((device = BEGIN_DEVICE; device < BEGIN_DEVICE + DEVICE_NUM; device++)); do
    RANK_OF[device]=$(awk -v d="$device" '$1 == d {print $2}' <<< "$RANKS")
    [[ -n ${RANK_OF[device]} ]] || fail_usage "RANK_TABLE_FILE '$RANK_TABLE' has no device $device"
done
LATER_FLAGS=("--device_id=<each device of the rank table>")
train_command "$DATA_PATH" "$OUTPUT_PATH" "$PRE_TRAINED_PATH" --device_target=Ascend --run_distribute=true
prepare_output OUTPUT_PATH "$OUTPUT_PATH"

for ((device = BEGIN_DEVICE; device < BEGIN_DEVICE + DEVICE_NUM; device++)); do
    rank=${RANK_OF[device]}
    dir="$OUTPUT_PATH/device$device"
    env=("DEVICE_ID=$device" "RANK_ID=$rank" "RANK_SIZE=$DEVICE_NUM" "RANK_TABLE_FILE=$RANK_TABLE")
    cmd=("$PYTHON" "${TRAIN_CMD[@]}" "--device_id=$device")
    if is_dry_run; then
        echo "cd $(shell_quote "$dir") && $(print_command "${env[@]}" -- "${cmd[@]}") > train.log 2>&1 &"
        continue
    fi
    mkdir -p -- "$dir" || fail_setup "cannot create $dir"
    start_rank "rank $rank (device $device)" "$dir" "$dir/train.log" "${env[@]}" -- "${cmd[@]}"
done
is_dry_run && exit 0
echo "waiting for $DEVICE_NUM process(es)..."
wait_ranks
