#!/usr/bin/env bash
# Data-parallel SRCNN training on CPU processes with msrun (MindSpore's dynamic cluster, mccl collectives).
set -u -o pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

USAGE="usage: $(basename "$0") WORKER_NUM DATA_PATH OUTPUT_PATH [PRE_TRAINED_PATH]
  WORKER_NUM        training processes in all (>= 1); each takes batch_size patches per step,
                    so the global batch is batch_size x WORKER_NUM
  DATA_PATH         MindRecord made by src/create_dataset.py, or the folder holding it
  OUTPUT_PATH       checkpoints (rank 0), train_log.jsonl, log/worker_<rank>.log, msrun.log
  PRE_TRAINED_PATH  checkpoint to start from (optional)
environment:
  TRAIN_ARGS='--train_steps=20 --n1=8'  extra train.py flags     DRY_RUN=1  print the command only
  LOCAL_WORKER_NUM, NODE_RANK, MASTER_ADDR, MASTER_PORT (default 8118)  several nodes: run this on
  each node with LOCAL_WORKER_NUM processes, NODE_RANK 0..N-1 and node 0's address as MASTER_ADDR
  (ModelArts multi-node jobs: taken from VC_WORKER_HOSTS and VC_TASK_INDEX); MS_NODE_TIMEOUT (default 30):
  seconds without heartbeat after which a rank is lost and the job stops"

check_nargs 3 4 "$@"
WORKERS=$(check_int WORKER_NUM "$1" 1) || exit 2
train_paths "$2" "$3"
if (($# == 4)); then pre_trained_path "$4"; fi
modelarts_hosts  # MA_HOSTS now; msrun_settings does not read them again
if ((${#MA_HOSTS[@]} > 1)) && [[ -z ${LOCAL_WORKER_NUM:-} ]]; then
    # a ModelArts multi-node job: WORKER_NUM processes spread evenly over its hosts
    ((WORKERS % ${#MA_HOSTS[@]} == 0)) || fail_setup "WORKER_NUM $WORKERS cannot be spread evenly over the" \
        "${#MA_HOSTS[@]} hosts of VC_WORKER_HOSTS"
    LOCAL_WORKER_NUM=$((WORKERS / ${#MA_HOSTS[@]}))
fi
msrun_settings "$WORKERS" "$WORKERS"
if [[ -n ${WORKER_NUM:-} && $WORKER_NUM != "$WORKERS" ]]; then
    fail_setup "the environment's WORKER_NUM=$WORKER_NUM differs from the argument WORKER_NUM=$WORKERS"
fi
find_python
run_msrun "$OUTPUT_PATH" "$DATA_PATH" "$PRE_TRAINED_PATH" --device_target=CPU --run_distribute=true
