#!/usr/bin/env bash
# Evaluate an exported SRCNN ONNX model on a GPU with eval_onnx.py (onnxruntime, no MindSpore needed).
#
# Usage: bash scripts/run_onnx_eval_gpu.sh DATA_PATH DEVICE_ID ONNX_MODEL_PATH [SCALE]
#   DATA_PATH        folder of ground-truth images (e.g. Set5)
#   DEVICE_ID        GPU index 0-7; exported as CUDA_VISIBLE_DEVICES, so the run uses that GPU
#   ONNX_MODEL_PATH  .onnx file written by export.py --file_format=ONNX
#   SCALE            2, 3 or 4 (default 2)
# Without a usable CUDAExecutionProvider eval_onnx.py warns and runs on CPU.
# Environment: PYTHON (default: <repo>/.venv/bin/python if present, else python3),
#              LOG_DIR (default ./output/logs): onnx_eval_gpu.log and onnx_eval_gpu.json are written there.
# Exit status: 0 on success, 2 for bad arguments, otherwise eval_onnx.py's non-zero status.
set -u

USAGE="usage: bash $(basename "$0") DATA_PATH DEVICE_ID ONNX_MODEL_PATH [SCALE]
  DATA_PATH        folder of ground-truth images (e.g. Set5)
  DEVICE_ID        GPU index, 0-7 (exported as CUDA_VISIBLE_DEVICES)
  ONNX_MODEL_PATH  .onnx file written by export.py --file_format=ONNX
  SCALE            2, 3 or 4 (default 2)
environment: PYTHON (interpreter), LOG_DIR (default ./output/logs)"
# shellcheck source=scripts/eval_common.sh
source "$(dirname "$0")/eval_common.sh"

check_args 3 4 "$@"
data_path=$1 device_id=$2 onnx_path=$3 scale=${4:-2}
check_device_id "${device_id}"
check_common "${data_path}" ONNX_MODEL_PATH "${onnx_path}" "${scale}"
export CUDA_VISIBLE_DEVICES="${device_id}"
run_logged_eval onnx_eval_gpu eval_onnx.py "${onnx_path} on ${data_path} x${scale} (GPU ${device_id})" \
    --data_path="${data_path}" --onnx_path="${onnx_path}" --scale="${scale}" --device_target=GPU \
    --device_id=0  # the one GPU CUDA_VISIBLE_DEVICES leaves visible
