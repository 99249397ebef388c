#!/usr/bin/env bash
# Shared by the evaluation launchers (run_eval_*.sh, run_onnx_eval_*.sh): argument errors and the logged run.
# The sourcing script sets USAGE (its usage text) before sourcing this file; usage, fail_usage and find_python
# come from common.sh, as for the training launchers.
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

script=$(basename "$0")

# --help prints the usage and exits 0; otherwise the argument count must be MIN..MAX.
check_args() {  # MIN MAX "$@"
    local min=$1 max=$2
    shift 2
    if [[ $# -eq 1 && ( $1 == -h || $1 == --help ) ]]; then
        usage 2>&1
        exit 0
    fi
    if [[ $# -lt ${min} || $# -gt ${max} ]]; then
        fail_usage "expected ${min} or ${max} arguments, got $#"
    fi
}

check_device_id() {
    [[ "$1" =~ ^[0-7]$ ]] || fail_usage "DEVICE_ID must be an integer from 0 to 7, got '$1'"
}

check_common() {  # DATA_PATH NAME MODEL_PATH SCALE
    [[ -d "$1" ]] || fail_usage "DATA_PATH $1 is not a folder"
    [[ -f "$3" ]] || fail_usage "$2 $3 is not a file"
    [[ "$4" =~ ^[234]$ ]] || fail_usage "SCALE must be 2, 3 or 4, got '$4'"
}

# Run ENTRY (eval.py or eval_onnx.py) with ARGS, its output in LOG_DIR/NAME.log and NAME.json; print the
# result line, or the log's last lines and the entry's exit status on failure.
run_logged_eval() {  # NAME ENTRY DESCRIPTION ARGS...
    local name=$1 entry=$2 description=$3
    shift 3
    find_python
    local log_dir=${LOG_DIR:-./output/logs}
    mkdir -p "${log_dir}" || fail_usage "cannot create LOG_DIR ${log_dir}"
    local log="${log_dir}/${name}.log"
    echo "${script}: evaluating ${description}; log: ${log}"
    "${PYTHON}" "${REPO_ROOT}/${entry}" "$@" --output_json="${log_dir}/${name}.json" >"${log}" 2>&1
    local status=$?
    if [[ ${status} -ne 0 ]]; then
        echo "${script}: error: ${entry} failed (exit ${status}); last lines of ${log}:" >&2
        tail -n 5 "${log}" >&2
        exit "${status}"
    fi
    grep '^warning: ' "${log}" >&2
    grep '^result ' "${log}" | tail -n 1
    echo "${script}: done; table in ${log}, JSON in ${log_dir}/${name}.json"
}
