#!/usr/bin/env bash
# Evaluate an exported SRCNN ONNX model on CPU with eval_onnx.py (onnxruntime, no MindSpore needed).
#
# Usage: bash scripts/run_onnx_eval_cpu.sh DATA_PATH ONNX_MODEL_PATH [SCALE]
#   DATA_PATH        folder of ground-truth images (e.g. Set5)
#   ONNX_MODEL_PATH  .onnx file written by export.py --file_format=ONNX
#   SCALE            2, 3 or 4 (default 2)
# Environment: PYTHON (default: <repo>/.venv/bin/python if present, else python3),
#              LOG_DIR (default ./output/logs): onnx_eval_cpu.log and onnx_eval_cpu.json are written there.
# Exit status: 0 on success, 2 for bad arguments, otherwise eval_onnx.py's non-zero status.
set -u

USAGE="usage: bash $(basename "$0") DATA_PATH ONNX_MODEL_PATH [SCALE]
  DATA_PATH        folder of ground-truth images (e.g. Set5)
  ONNX_MODEL_PATH  .onnx file written by export.py --file_format=ONNX
  SCALE            2, 3 or 4 (default 2)
environment: PYTHON (interpreter), LOG_DIR (default ./output/logs)"
# shellcheck source=scripts/eval_common.sh
source "$(dirname "$0")/eval_common.sh"

check_args 2 3 "$@"
data_path=$1 onnx_path=$2 scale=${3:-2}
check_common "${data_path}" ONNX_MODEL_PATH "${onnx_path}" "${scale}"
run_logged_eval onnx_eval_cpu eval_onnx.py "${onnx_path} on ${data_path} x${scale} (CPU)" \
    --data_path="${data_path}" --onnx_path="${onnx_path}" --scale="${scale}" --device_target=CPU
