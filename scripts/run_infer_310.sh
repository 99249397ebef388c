#!/usr/bin/env bash
# Offline inference of an exported SRCNN MINDIR (Ascend 310 style) and its PSNR/SSIM:
#   preprocess.py -> ascend310_infer/out/main (built if missing) -> postprocess.py
#
# Usage: bash scripts/run_infer_310.sh MINDIR_PATH DATA_PATH OUTPUT_PATH [DEVICE_ID] [IMAGE_HEIGHT IMAGE_WIDTH]
#   MINDIR_PATH    static-shape MINDIR (export.py --file_format=MINDIR --image_height=H --image_width=W)
#   DATA_PATH      folder of ground-truth images (e.g. Set5)
#   OUTPUT_PATH    folder for everything this run writes:
#                    preprocess/00_data/*.bin, preprocess/meta.json  model inputs (preprocess.py)
#                    result_Files/*_0.bin                            model outputs
#                    preprocess.log, build.log, infer.log, acc.log   logs
#                    result.json                                      PSNR/SSIM as JSON
#   DEVICE_ID      Ascend device index 0-7 (default 0)
#   IMAGE_HEIGHT IMAGE_WIDTH
#                  the model's input size; by default read from the MINDIR (needs MindSpore)
# Environment:
#   SCALE=2|3|4              super-resolution factor (default 2)
#   DEVICE_TYPE=Ascend|CPU   device of the C++ harness (default Ascend)
#   INFER_RUNNER=harness|reference
#                            harness (default): ascend310_infer/out/main (MindSpore Lite C++);
#                            reference: scripts/run_infer_reference.py, the same job on CPU in Python
#                            (MindSpore), for machines whose Lite runtime cannot read the MINDIR
#   PYTHON                   interpreter (default: <repo>/.venv/bin/python if present, else python3)
# Exit status: 0 on success, 2 for bad arguments, 1 if a step fails (its log is named and tailed).
set -u

script=$(basename "$0")
repo_root=$(cd "$(dirname "$0")/.." && pwd)

usage() {
    cat >&2 <<USAGE
usage: bash ${script} MINDIR_PATH DATA_PATH OUTPUT_PATH [DEVICE_ID] [IMAGE_HEIGHT IMAGE_WIDTH]
  MINDIR_PATH    static-shape MINDIR model (export.py --image_height=H --image_width=W)
  DATA_PATH      folder of ground-truth images (e.g. Set5)
  OUTPUT_PATH    folder for inputs, outputs, logs and result.json
  DEVICE_ID      Ascend device index, 0-7 (default 0)
  IMAGE_HEIGHT IMAGE_WIDTH
                 model input size (default: read from the MINDIR, needs MindSpore)
environment: SCALE=2|3|4 (default 2), DEVICE_TYPE=Ascend|CPU (default Ascend),
             INFER_RUNNER=harness|reference (default harness), PYTHON (interpreter)
USAGE
}

# A bad argument: one line, "error: <what is wrong> (<the usage line>; ...)", exit 2.
fail_usage() {
    local line
    line=$(usage 2>&1 | head -n 1)
    echo "error: $* (${line}; run with --help for details)" >&2
    exit 2
}

die() {
    echo "${script}: error: $*" >&2
    exit 1
}

# Run a step with its output in a log; on failure name the log and show its end.
run_step() {
    local name=$1 log=$2
    shift 2
    echo "${script}: ${name} (log: ${log})"
    "$@" >"${log}" 2>&1
    local status=$?
    if [[ ${status} -ne 0 ]]; then
        echo "${script}: error: ${name} failed (exit ${status}); last lines of ${log}:" >&2
        tail -n 5 "${log}" >&2
        exit 1
    fi
}

if [[ $# -eq 1 && ( $1 == -h || $1 == --help ) ]]; then
    usage 2>&1
    exit 0
fi
if [[ $# -lt 3 || $# -gt 6 || $# -eq 5 ]]; then
    fail_usage "expected 3, 4 or 6 arguments (IMAGE_HEIGHT and IMAGE_WIDTH go together), got $#"
fi
mindir_path=$1
data_path=$2
output_path=$3
device_id=${4:-0}
image_height=${5:-}
image_width=${6:-}
scale=${SCALE:-2}
device_type=${DEVICE_TYPE:-Ascend}
runner=${INFER_RUNNER:-harness}

[[ -f "${mindir_path}" ]] || fail_usage "MINDIR_PATH ${mindir_path} is not a file"
[[ -d "${data_path}" ]] || fail_usage "DATA_PATH ${data_path} is not a folder"
[[ "${device_id}" =~ ^[0-7]$ ]] || fail_usage "DEVICE_ID must be an integer from 0 to 7, got '${device_id}'"
if [[ -n "${image_height}" ]]; then
    [[ "${image_height}" =~ ^[1-9][0-9]*$ ]] || fail_usage "IMAGE_HEIGHT must be a positive integer, got '${image_height}'"
    [[ "${image_width}" =~ ^[1-9][0-9]*$ ]] || fail_usage "IMAGE_WIDTH must be a positive integer, got '${image_width}'"
fi
[[ "${scale}" =~ ^[234]$ ]] || fail_usage "SCALE must be 2, 3 or 4, got '${scale}'"
[[ "${device_type}" == Ascend || "${device_type}" == CPU ]] ||
    fail_usage "DEVICE_TYPE must be Ascend or CPU, got '${device_type}'"
[[ "${runner}" == harness || "${runner}" == reference ]] ||
    fail_usage "INFER_RUNNER must be harness or reference, got '${runner}'"

if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "${repo_root}/.venv/bin/python" ]]; then PYTHON="${repo_root}/.venv/bin/python"; else PYTHON=python3; fi
fi
mkdir -p "${output_path}" || fail_usage "cannot create OUTPUT_PATH ${output_path}"
preprocess_dir="${output_path}/preprocess"
result_dir="${output_path}/result_Files"

if [[ -z "${image_height}" ]]; then
    if ! shape=$("${PYTHON}" "${repo_root}/scripts/run_infer_reference.py" --mindir_path="${mindir_path}" \
        --print_input_shape 2>&1); then
        die "cannot read a static input size from ${mindir_path} ($(echo "${shape}" | tail -n 1)); export a" \
            "static model (export.py --image_height=H --image_width=W) or give IMAGE_HEIGHT IMAGE_WIDTH"
    fi
    read -r image_height image_width <<<"$(echo "${shape}" | tail -n 1)"
    echo "${script}: model input size ${image_height}x${image_width} (HxW), read from ${mindir_path}"
fi

run_step "preprocess" "${output_path}/preprocess.log" \
    "${PYTHON}" "${repo_root}/preprocess.py" --data_path="${data_path}" --output_path="${preprocess_dir}" \
    --scale="${scale}" --image_height="${image_height}" --image_width="${image_width}"

rm -rf "${result_dir}"
if [[ "${runner}" == reference ]]; then
    run_step "inference (reference runner, CPU)" "${output_path}/infer.log" \
        "${PYTHON}" "${repo_root}/scripts/run_infer_reference.py" --mindir_path="${mindir_path}" \
        --input_path="${preprocess_dir}/00_data" --result_path="${result_dir}" --device_type=CPU \
        --device_id="${device_id}"
else
    harness="${repo_root}/ascend310_infer/out/main"
    if [[ ! -x "${harness}" ]]; then
        run_step "building ${harness}" "${output_path}/build.log" \
            env PYTHON="${PYTHON}" bash "${repo_root}/ascend310_infer/build.sh"
    fi
    run_step "inference (${harness}, ${device_type} ${device_id})" "${output_path}/infer.log" \
        "${harness}" --mindir_path="${mindir_path}" --input_path="${preprocess_dir}/00_data" \
        --result_path="${result_dir}" --device_type="${device_type}" --device_id="${device_id}"
fi
grep 'average latency' "${output_path}/infer.log" | tail -n 1

run_step "postprocess" "${output_path}/acc.log" \
    "${PYTHON}" "${repo_root}/postprocess.py" --data_path="${data_path}" --result_path="${result_dir}" \
    --preprocess_path="${preprocess_dir}" --scale="${scale}" --output_json="${output_path}/result.json"
grep '^result ' "${output_path}/acc.log" | tail -n 1
echo "${script}: done; table in ${output_path}/acc.log, JSON in ${output_path}/result.json"
