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

script=$(basename "$0")
repo_root=$(cd "$(dirname "$0")/.." && pwd)

usage() {
    cat >&2 <<USAGE
usage: bash ${script} DEVICE_ID DATA_PATH CHECKPOINT_PATH [SCALE]
  DEVICE_ID        GPU device index, 0-7
  DATA_PATH        folder of ground-truth images (e.g. Set5)
  CHECKPOINT_PATH  .ckpt file written by train.py
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
device_id=$1
data_path=$2
checkpoint_path=$3
scale=${4:-2}

[[ "${device_id}" =~ ^[0-7]$ ]] || fail_usage "DEVICE_ID must be an integer from 0 to 7, got '${device_id}'"
[[ -d "${data_path}" ]] || fail_usage "DATA_PATH ${data_path} is not a folder"
[[ -f "${checkpoint_path}" ]] || fail_usage "CHECKPOINT_PATH ${checkpoint_path} is not a file"
[[ "${scale}" =~ ^[234]$ ]] || fail_usage "SCALE must be 2, 3 or 4, got '${scale}'"

if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "${repo_root}/.venv/bin/python" ]]; then PYTHON="${repo_root}/.venv/bin/python"; else PYTHON=python3; fi
fi
log_dir=${LOG_DIR:-./output/logs}
mkdir -p "${log_dir}" || fail_usage "cannot create LOG_DIR ${log_dir}"
log="${log_dir}/eval_gpu.log"

echo "${script}: evaluating ${checkpoint_path} on ${data_path} x${scale} (GPU ${device_id}); log: ${log}"
"${PYTHON}" "${repo_root}/eval.py" --data_path="${data_path}" --checkpoint_path="${checkpoint_path}" \
    --scale="${scale}" --device_target=GPU --device_id="${device_id}" \
    --output_json="${log_dir}/eval_gpu.json" >"${log}" 2>&1
status=$?
if [[ ${status} -ne 0 ]]; then
    echo "${script}: error: eval.py failed (exit ${status}); last lines of ${log}:" >&2
    tail -n 5 "${log}" >&2
    exit "${status}"
fi
grep '^result ' "${log}" | tail -n 1
echo "${script}: done; table in ${log}, JSON in ${log_dir}/eval_gpu.json"
