#!/usr/bin/env bash
# Data-parallel SRCNN training on DEVICE_NUM Ascend devices of this node with msrun (no rank table).
set -u -o pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

USAGE="usage: $(basename "$0") DATA_PATH OUTPUT_PATH DEVICE_NUM [PRE_TRAINED_PATH]
  DATA_PATH         MindRecord made by src/create_dataset.py, or the folder holding it
  OUTPUT_PATH       checkpoints (rank 0), train_log.jsonl, log/worker_<rank>.log, msrun.log
  DEVICE_NUM        Ascend devices on this node, 1-8 (one process each, devices 0..DEVICE_NUM-1);
                    the global batch is batch_size x all processes
  PRE_TRAINED_PATH  checkpoint to start from (optional)
environment:
  TRAIN_ARGS='--train_steps=20'  extra train.py flags       DRY_RUN=1  print the command only
  WORKER_NUM (processes on all nodes, default DEVICE_NUM), NODE_RANK, MASTER_ADDR, MASTER_PORT
  (default 8118): on several nodes, run this on each node with NODE_RANK 0..N-1 (ModelArts
  multi-node jobs: from VC_WORKER_HOSTS and VC_TASK_INDEX)"

check_nargs 3 4 "$@"
train_paths "$1" "$2"
DEVICE_NUM=$(check_int DEVICE_NUM "$3" 1 8) || exit 2
if (($# == 4)); then pre_trained_path "$4"; fi
if [[ -n ${LOCAL_WORKER_NUM:-} && $LOCAL_WORKER_NUM != "$DEVICE_NUM" ]]; then
    fail_setup "LOCAL_WORKER_NUM=$LOCAL_WORKER_NUM differs from DEVICE_NUM=$DEVICE_NUM (the devices of this node)"
fi
msrun_settings "$DEVICE_NUM" "$DEVICE_NUM"
if [[ -n ${RANK_TABLE_FILE:-} ]]; then
    echo "note: ignoring RANK_TABLE_FILE=$RANK_TABLE_FILE: msrun builds the cluster without a rank table" >&2
    unset RANK_TABLE_FILE
fi
find_python
run_msrun "$OUTPUT_PATH" "$DATA_PATH" "$PRE_TRAINED_PATH" --device_target=Ascend --run_distribute=true
