#!/usr/bin/env bash
# Evaluate an SRCNN checkpoint on GPU with eval.py (PSNR/SSIM table, SRCNN_v1 protocol).
#
# Usage: bash scripts/run_eval_gpu.sh DEVICE_ID DATA_PATH CHECKPOINT_PATH [SCALE]
#   DEVICE_ID        GPU index 0-7, passed as --device_id (CUDA_VISIBLE_DEVICES is left as it is)
#   DATA_PATH        folder of ground-truth images (e.g. Set5)
#   CHECKPOINT_PATH  .ckpt file written by train.py
#   SCALE            2, 3 or 4 (default 2)
# Environment: PYTHON (default: <repo>/.venv/bin/python if present, else python3),
#              LOG_DIR (default ./output/logs): eval_gpu.log and eval_gpu.json are written there.
# Exit status: 0 on success, 2 for bad arguments, otherwise eval.py's non-zero status
# (e.g. 2 with "error: device_target=GPU is not available" on a machine without one).
set -u

USAGE="usage: bash $(basename "$0") DEVICE_ID DATA_PATH CHECKPOINT_PATH [SCALE]
  DEVICE_ID        GPU device index, 0-7
  DATA_PATH        folder of ground-truth images (e.g. Set5)
  CHECKPOINT_PATH  .ckpt file written by train.py
  SCALE            2, 3 or 4 (default 2)
environment: PYTHON (interpreter), LOG_DIR (default ./output/logs)"
# shellcheck source=scripts/eval_common.sh
source "$(dirname "$0")/eval_common.sh"

check_args 3 4 "$@"
device_id=$1 data_path=$2 checkpoint_path=$3 scale=${4:-2}
check_device_id "${device_id}"
check_common "${data_path}" CHECKPOINT_PATH "${checkpoint_path}" "${scale}"
run_logged_eval eval_gpu eval.py "${checkpoint_path} on ${data_path} x${scale} (GPU ${device_id})" \
    --data_path="${data_path}" --checkpoint_path="${checkpoint_path}" --scale="${scale}" \
    --device_target=GPU --device_id="${device_id}"
