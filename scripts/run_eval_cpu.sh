#!/usr/bin/env bash
# Evaluate an SRCNN checkpoint on CPU with eval.py (PSNR/SSIM table, SRCNN_v1 protocol).
#
# Usage: bash scripts/run_eval_cpu.sh DATA_PATH CHECKPOINT_PATH [SCALE]
#   DATA_PATH        folder of ground-truth images (e.g. Set5)
#   CHECKPOINT_PATH  .ckpt file written by train.py
#   SCALE            2, 3 or 4 (default 2)
# Environment: PYTHON (default: <repo>/.venv/bin/python if present, else python3),
#              LOG_DIR (default ./output/logs): eval_cpu.log and eval_cpu.json are written there.
# Exit status: 0 on success, 2 for bad arguments, otherwise eval.py's non-zero status.
set -u

USAGE="usage: bash $(basename "$0") DATA_PATH CHECKPOINT_PATH [SCALE]
  DATA_PATH        folder of ground-truth images (e.g. Set5)
  CHECKPOINT_PATH  .ckpt file written by train.py
  SCALE            2, 3 or 4 (default 2)
environment: PYTHON (interpreter), LOG_DIR (default ./output/logs)"
# shellcheck source=scripts/eval_common.sh
source "$(dirname "$0")/eval_common.sh"

check_args 2 3 "$@"
data_path=$1 checkpoint_path=$2 scale=${3:-2}
check_common "${data_path}" CHECKPOINT_PATH "${checkpoint_path}" "${scale}"
run_logged_eval eval_cpu eval.py "${checkpoint_path} on ${data_path} x${scale} (CPU)" \
    --data_path="${data_path}" --checkpoint_path="${checkpoint_path}" --scale="${scale}" \
    --device_target=CPU
