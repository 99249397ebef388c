#!/usr/bin/env bash
# Data-parallel SRCNN training on DEVICE_NUM GPUs of this node (NCCL), started with msrun, or with mpirun
# when LAUNCHER=mpirun.
set -u -o pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

USAGE="usage: $(basename "$0") DEVICE_NUM VISIBLE_DEVICES DATA_PATH OUTPUT_PATH [PRE_TRAINED_PATH]
  DEVICE_NUM        GPUs on this node, 1-8 (one process each); the global batch is batch_size x all processes
  VISIBLE_DEVICES   DEVICE_NUM comma-separated GPU ids, e.g. 0,1,2,3 (exported as CUDA_VISIBLE_DEVICES)
  DATA_PATH         MindRecord made by src/create_dataset.py, or the folder holding it
  OUTPUT_PATH       checkpoints (rank 0), train_log.jsonl, log/worker_<rank>.log, msrun.log or mpirun.log
  PRE_TRAINED_PATH  checkpoint to start from (optional)
environment:
  TRAIN_ARGS='--train_steps=20'  extra train.py flags       DRY_RUN=1  print the command only
  LAUNCHER=msrun (default) or mpirun; MPIRUN_ARGS  extra mpirun options (e.g. '--hostfile hosts')
  WORKER_NUM (processes on all nodes, default DEVICE_NUM), NODE_RANK, MASTER_ADDR, MASTER_PORT
  (default 8118): msrun on several nodes, run this on each node with NODE_RANK 0..N-1 (ModelArts
  multi-node jobs: from VC_WORKER_HOSTS, VC_TASK_INDEX; DEVICE_NUM must equal MA_NUM_GPUS)"

check_nargs 4 5 "$@"
DEVICE_NUM=$(check_int DEVICE_NUM "$1" 1 8) || exit 2
VISIBLE_DEVICES=$2
if ! [[ $VISIBLE_DEVICES =~ ^[0-9]+(,[0-9]+)*$ ]]; then
    fail_usage "VISIBLE_DEVICES must be comma-separated GPU ids like 0,1,2,3, got '$VISIBLE_DEVICES'"
fi
IFS=, read -r -a IDS <<< "$VISIBLE_DEVICES"
if ((${#IDS[@]} != DEVICE_NUM)); then
    fail_usage "VISIBLE_DEVICES '$VISIBLE_DEVICES' lists ${#IDS[@]} GPU(s) but DEVICE_NUM is $DEVICE_NUM"
fi
if [[ $(printf '%s\n' "${IDS[@]}" | sort -n | uniq -d) ]]; then
    fail_usage "VISIBLE_DEVICES '$VISIBLE_DEVICES' repeats a GPU id"
fi
train_paths "$3" "$4"
if (($# == 5)); then pre_trained_path "$5"; fi
if [[ -n ${LOCAL_WORKER_NUM:-} && $LOCAL_WORKER_NUM != "$DEVICE_NUM" ]]; then
    fail_setup "LOCAL_WORKER_NUM=$LOCAL_WORKER_NUM differs from DEVICE_NUM=$DEVICE_NUM (the GPUs of this node)"
fi
if [[ -n ${MA_NUM_GPUS:-} && $MA_NUM_GPUS != "$DEVICE_NUM" ]]; then
    fail_setup "DEVICE_NUM=$DEVICE_NUM differs from MA_NUM_GPUS=$MA_NUM_GPUS, the GPUs ModelArts gave this node"
fi
LAUNCHER=${LAUNCHER:-msrun}
case "$LAUNCHER" in
    msrun) msrun_settings "$DEVICE_NUM" "$DEVICE_NUM" ;;
    mpirun) TOTAL=$(check_int WORKER_NUM "${WORKER_NUM:-$DEVICE_NUM}" 1) || exit 2 ;;
    *) fail_setup "LAUNCHER must be msrun or mpirun, got '$LAUNCHER'" ;;
esac
find_python
ENV_PREFIX=("CUDA_VISIBLE_DEVICES=$VISIBLE_DEVICES")
if [[ $LAUNCHER == msrun ]]; then
    run_msrun "$OUTPUT_PATH" "$DATA_PATH" "$PRE_TRAINED_PATH" --device_target=GPU --run_distribute=true
fi

# mpirun: every rank writes log/worker_<rank>.log, like msrun, and drives the GPU of its local rank
# (DEVICE_ID, an index into CUDA_VISIBLE_DEVICES)
need_plain_python mpirun
MPI_EXTRA=()
if [[ -n ${MPIRUN_ARGS:-} ]]; then
    read -r -a MPI_EXTRA <<< "$MPIRUN_ARGS"
fi
# shellcheck disable=SC2016  # expanded by each rank's shell
RANK_SHELL='export DEVICE_ID=${OMPI_COMM_WORLD_LOCAL_RANK:-${MPI_LOCALRANKID:-0}}; exec "$0" "$@" > "$SRCNN_LOG_DIR/worker_${OMPI_COMM_WORLD_RANK:-${PMI_RANK:-0}}.log" 2>&1'
MPIRUN=(mpirun -n "$TOTAL" --allow-run-as-root -x PATH -x CUDA_VISIBLE_DEVICES -x SRCNN_LOG_DIR "${MPI_EXTRA[@]}"
    bash -c "$RANK_SHELL" python)
launch mpirun "${ENV_PREFIX[@]/#/--env=}" "--env=SRCNN_LOG_DIR=$OUTPUT_PATH/log" "${MPIRUN[@]/#/--runner=}" \
    --data_path="$DATA_PATH" --output_path="$OUTPUT_PATH" --pre_trained_path="$PRE_TRAINED_PATH" -- \
    --device_target=GPU --run_distribute=true
