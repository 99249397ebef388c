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

script=$(basename "$0")
repo_root=$(cd "$(dirname "$0")/.." && pwd)

usage() {
    cat >&2 <<USAGE
usage: bash ${script} DATA_PATH ONNX_MODEL_PATH [SCALE]
  DATA_PATH        folder of ground-truth images (e.g. Set5)
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
if [[ $# -lt 2 || $# -gt 3 ]]; then
    fail_usage "expected 2 or 3 arguments, got $#"
fi
data_path=$1
onnx_path=$2
scale=${3:-2}

[[ -d "${data_path}" ]] || fail_usage "DATA_PATH ${data_path} is not a folder"
[[ -f "${onnx_path}" ]] || fail_usage "ONNX_MODEL_PATH ${onnx_path} is not a file"
[[ "${scale}" =~ ^[234]$ ]] || fail_usage "SCALE must be 2, 3 or 4, got '${scale}'"

if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "${repo_root}/.venv/bin/python" ]]; then PYTHON="${repo_root}/.venv/bin/python"; else PYTHON=python3; fi
fi
log_dir=${LOG_DIR:-./output/logs}
mkdir -p "${log_dir}" || fail_usage "cannot create LOG_DIR ${log_dir}"
log="${log_dir}/onnx_eval_cpu.log"

echo "${script}: evaluating ${onnx_path} on ${data_path} x${scale} (CPU); log: ${log}"
"${PYTHON}" "${repo_root}/eval_onnx.py" --data_path="${data_path}" --onnx_path="${onnx_path}" \
    --scale="${scale}" --device_target=CPU --output_json="${log_dir}/onnx_eval_cpu.json" >"${log}" 2>&1
status=$?
if [[ ${status} -ne 0 ]]; then
    echo "${script}: error: eval_onnx.py failed (exit ${status}); last lines of ${log}:" >&2
    tail -n 5 "${log}" >&2
    exit "${status}"
fi
grep '^result ' "${log}" | tail -n 1
echo "${script}: done; table in ${log}, JSON in ${log_dir}/onnx_eval_cpu.json"
