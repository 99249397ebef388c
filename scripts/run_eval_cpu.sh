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

script=$(basename "$0")
repo_root=$(cd "$(dirname "$0")/.." && pwd)

usage() {
    cat >&2 <<USAGE
usage: bash ${script} DATA_PATH CHECKPOINT_PATH [SCALE]
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
if [[ $# -lt 2 || $# -gt 3 ]]; then
    fail_usage "expected 2 or 3 arguments, got $#"
fi
data_path=$1
checkpoint_path=$2
scale=${3:-2}

[[ -d "${data_path}" ]] || fail_usage "DATA_PATH ${data_path} is not a folder"
[[ -f "${checkpoint_path}" ]] || fail_usage "CHECKPOINT_PATH ${checkpoint_path} is not a file"
[[ "${scale}" =~ ^[234]$ ]] || fail_usage "SCALE must be 2, 3 or 4, got '${scale}'"

if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "${repo_root}/.venv/bin/python" ]]; then PYTHON="${repo_root}/.venv/bin/python"; else PYTHON=python3; fi
fi
log_dir=${LOG_DIR:-./output/logs}
mkdir -p "${log_dir}" || fail_usage "cannot create LOG_DIR ${log_dir}"
log="${log_dir}/eval_cpu.log"

echo "${script}: evaluating ${checkpoint_path} on ${data_path} x${scale} (CPU); log: ${log}"
"${PYTHON}" "${repo_root}/eval.py" --data_path="${data_path}" --checkpoint_path="${checkpoint_path}" \
    --scale="${scale}" --device_target=CPU --output_json="${log_dir}/eval_cpu.json" >"${log}" 2>&1
status=$?
if [[ ${status} -ne 0 ]]; then
    echo "${script}: error: eval.py failed (exit ${status}); last lines of ${log}:" >&2
    tail -n 5 "${log}" >&2
    exit "${status}"
fi
grep '^result ' "${log}" | tail -n 1
echo "${script}: done; table in ${log}, JSON in ${log_dir}/eval_cpu.json"
