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

script=$(basename "$0")
repo_root=$(cd "$(dirname "$0")/.." && pwd)

usage() {
    cat >&2 <<USAGE
usage: bash ${script} DATA_PATH DEVICE_ID ONNX_MODEL_PATH [SCALE]
  DATA_PATH        folder of ground-truth images (e.g. Set5)
  DEVICE_ID        GPU index, 0-7 (exported as CUDA_VISIBLE_DEVICES)
  ONNX_MODEL_PATH  .onnx file written by export.py --file_format=ONNX
  SCALE            2, 3 or 4 (default 2)
environment: PYTHON (interpreter), LOG_DIR (default ./output/logs)
USAGE
}

# A bad argument: one line, "error: <what is wrong> (<the usage line>; ...)", exit 2.
fail_usage() {
    local line
    line=$(usage 2>&1 | head -n 1)
    echo "error: $* (${line}; run with --help for details)" >&2
    exit 2
}

if [[ $# -eq 1 && ( $1 == -h || $1 == --help ) ]]; then
    usage 2>&1
    exit 0
fi
if [[ $# -lt 3 || $# -gt 4 ]]; then
    fail_usage "expected 3 or 4 arguments, got $#"
fi
data_path=$1
device_id=$2
onnx_path=$3
scale=${4:-2}

[[ -d "${data_path}" ]] || fail_usage "DATA_PATH ${data_path} is not a folder"
[[ "${device_id}" =~ ^[0-7]$ ]] || fail_usage "DEVICE_ID must be an integer from 0 to 7, got '${device_id}'"
[[ -f "${onnx_path}" ]] || fail_usage "ONNX_MODEL_PATH ${onnx_path} is not a file"
[[ "${scale}" =~ ^[234]$ ]] || fail_usage "SCALE must be 2, 3 or 4, got '${scale}'"

if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "${repo_root}/.venv/bin/python" ]]; then PYTHON="${repo_root}/.venv/bin/python"; else PYTHON=python3; fi
fi
log_dir=${LOG_DIR:-./output/logs}
mkdir -p "${log_dir}" || fail_usage "cannot create LOG_DIR ${log_dir}"
log="${log_dir}/onnx_eval_gpu.log"
export CUDA_VISIBLE_DEVICES="${device_id}"

echo "${script}: evaluating ${onnx_path} on ${data_path} x${scale} (GPU ${device_id}); log: ${log}"
"${PYTHON}" "${repo_root}/eval_onnx.py" --data_path="${data_path}" --onnx_path="${onnx_path}" \
    --scale="${scale}" --device_target=GPU --device_id=0 \
    --output_json="${log_dir}/onnx_eval_gpu.json" >"${log}" 2>&1
status=$?
if [[ ${status} -ne 0 ]]; then
    echo "${script}: error: eval_onnx.py failed (exit ${status}); last lines of ${log}:" >&2
    tail -n 5 "${log}" >&2
    exit "${status}"
fi
grep '^warning: ' "${log}" >&2
grep '^result ' "${log}" | tail -n 1
echo "${script}: done; table in ${log}, JSON in ${log_dir}/onnx_eval_gpu.json"
