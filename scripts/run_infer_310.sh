#!/usr/bin/env bash
# Offline inference of an exported SRCNN model (Ascend 310 style) and its PSNR/SSIM:
#   [convert_for_lite.py] -> preprocess.py -> ascend310_infer/out/main (built if missing) -> postprocess.py
#
# Usage: bash scripts/run_infer_310.sh MODEL_PATH DATA_PATH OUTPUT_PATH [DEVICE_ID] [IMAGE_HEIGHT IMAGE_WIDTH]
#   MODEL_PATH     a model written by export.py:
#                    .onnx    converted by the MindSpore Lite 2.0.0 converter into OUTPUT_PATH/lite_model/
#                             (skipped when already converted from the same file); static or dynamic size
#                    .mindir  run as it is: a MINDIR the harness's Lite runtime reads (on Ascend, a Lite
#                             matching the MindSpore that exported it); static size
#   DATA_PATH      folder of ground-truth images (e.g. Set5)
#   OUTPUT_PATH    folder for everything this run writes:
#                    lite_model/<name>.mindir                         the converted model (ONNX input)
#                    lite_model/<name>.shape                          its input size, "H W" or "dynamic"
#                    preprocess/00_data/*.bin, preprocess/meta.json  model inputs (preprocess.py)
#                    result_Files/*_0.bin                            model outputs
#                    setup.log, convert.log, shape.log, preprocess.log, build.log, infer.log, acc.log   logs
#                    result.json                                      PSNR/SSIM as JSON
#   DEVICE_ID      Ascend device index 0-7 (default 0)
#   IMAGE_HEIGHT IMAGE_WIDTH
#                  the size the images are padded to; by default the static model's input size (read
#                  from the model), or for a dynamic model the largest image's
# Environment:
#   SCALE=2|3|4              super-resolution factor (default 2)
#   DEVICE_TYPE=Ascend|CPU   device of the C++ harness (default Ascend)
#   INFER_RUNNER=harness|reference
#                            harness (default): ascend310_infer/out/main (MindSpore Lite C++); the Lite
#                            converter and C++ API come from scripts/fetch_mindspore_lite.sh (cached in
#                            ~/.cache/srcnn), or the C++ API from MS_LITE_HOME;
#                            reference: scripts/run_infer_reference.py, the same job on CPU in Python
#                            (MindSpore, MINDIR models only), for machines without the Lite runtime
#   PYTHON                   interpreter (default: <repo>/.venv/bin/python if present, else python3)
# Exit status: 0 on success, 2 for bad arguments or an ONNX model the converter refuses (its one
# "error: ..." line), 1 if a step fails (its log is named and tailed).
set -u

script=$(basename "$0")
repo_root=$(cd "$(dirname "$0")/.." && pwd)

usage() {
    cat >&2 <<USAGE
usage: bash ${script} MODEL_PATH DATA_PATH OUTPUT_PATH [DEVICE_ID] [IMAGE_HEIGHT IMAGE_WIDTH]
  MODEL_PATH     model written by export.py: ONNX (converted for MindSpore Lite) or MINDIR
  DATA_PATH      folder of ground-truth images (e.g. Set5)
  OUTPUT_PATH    folder for inputs, outputs, logs and result.json
  DEVICE_ID      Ascend device index, 0-7 (default 0)
  IMAGE_HEIGHT IMAGE_WIDTH
                 size the images are padded to (default: the static model's, or the largest image's)
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

# Run a step with its output in a log; on failure name the log and show its end. With --user-error, a
# step that exits 2 (the user's input is wrong, said in one "error: ..." line) ends this script the same
# way: that line alone, exit 2.
run_step() {
    local user_error=0
    if [[ $1 == --user-error ]]; then
        user_error=1
        shift
    fi
    local name=$1 log=$2
    shift 2
    echo "${script}: ${name} (log: ${log})"
    "$@" >"${log}" 2>&1
    local status=$?
    if [[ ${status} -eq 2 && ${user_error} -eq 1 ]] && grep -q -m 1 '^error: ' "${log}"; then
        grep -m 1 '^error: ' "${log}" >&2
        exit 2
    fi
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
model_path=$1
data_path=$2
output_path=$3
device_id=${4:-0}
image_height=${5:-}
image_width=${6:-}
scale=${SCALE:-2}
device_type=${DEVICE_TYPE:-Ascend}
runner=${INFER_RUNNER:-harness}

[[ -f "${model_path}" ]] || fail_usage "MODEL_PATH ${model_path} is not a file"
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
case "${model_path,,}" in
    *.onnx) model_format=ONNX ;;
    *.mindir) model_format=MINDIR ;;
    *) fail_usage "MODEL_PATH ${model_path} is neither a .onnx nor a .mindir file (export.py writes both)" ;;
esac
[[ "${runner}" == harness || "${model_format}" == MINDIR ]] ||
    fail_usage "INFER_RUNNER=reference runs MINDIR models only, got the ONNX model ${model_path} (use the harness, or eval_onnx.py)"

if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "${repo_root}/.venv/bin/python" ]]; then PYTHON="${repo_root}/.venv/bin/python"; else PYTHON=python3; fi
fi
mkdir -p "${output_path}" || fail_usage "cannot create OUTPUT_PATH ${output_path}"
preprocess_dir="${output_path}/preprocess"
result_dir="${output_path}/result_Files"

# The model the harness loads, and its input size ("H W", or "dynamic").
lite_model=${model_path}
if [[ "${runner}" == harness && "${model_format}" == ONNX ]]; then
    echo "${script}: MindSpore Lite converter (log: ${output_path}/setup.log)"
    if ! converter_python=$(PYTHON="${PYTHON}" bash "${repo_root}/scripts/fetch_mindspore_lite.sh" --converter \
        2>"${output_path}/setup.log"); then
        die "cannot set up the MindSpore Lite converter: $(tail -n 1 "${output_path}/setup.log")"
    fi
    name=$(basename "${model_path}")
    lite_model="${output_path}/lite_model/${name%.*}.mindir"
    shape_file="${output_path}/lite_model/${name%.*}.shape"
    rm -f "${shape_file}"
    run_step --user-error "converting ${model_path} for MindSpore Lite" "${output_path}/convert.log" \
        "${converter_python}" "${repo_root}/scripts/convert_for_lite.py" --onnx_path="${model_path}" \
        --output_file="${lite_model}" --shape_file="${shape_file}"
    grep -E '^(converted|.* is already converted)' "${output_path}/convert.log" | tail -n 1
    shape=$(cat "${shape_file}" 2>/dev/null)
elif [[ -z "${image_height}" ]]; then
    # MindSpore may write to stdout and stderr too: its messages go to shape.log, the size is the "H W" line.
    if ! shape=$("${PYTHON}" "${repo_root}/scripts/run_infer_reference.py" --mindir_path="${model_path}" \
        --print_input_shape 2>"${output_path}/shape.log"); then
        die "cannot read a static input size from ${model_path} ($(tail -n 1 "${output_path}/shape.log")); export a" \
            "static model (export.py --image_height=H --image_width=W) or give IMAGE_HEIGHT IMAGE_WIDTH"
    fi
    shape=$(grep -E '^[0-9]+ [0-9]+$' <<<"${shape}" | tail -n 1)
else
    shape="${image_height} ${image_width}"
fi
[[ "${shape}" =~ ^(dynamic|[1-9][0-9]* [1-9][0-9]*)$ ]] ||
    die "no input size (\"H W\" or \"dynamic\") read from ${model_path}, got '${shape}'"
if [[ "${shape}" == dynamic ]]; then
    if [[ -z "${image_height}" ]]; then
        image_height=0 image_width=0  # preprocess.py pads to the largest image
    fi
    echo "${script}: the model takes any input size"
elif [[ -z "${image_height}" ]]; then
    read -r image_height image_width <<<"${shape}"
    echo "${script}: model input size ${image_height}x${image_width} (HxW), read from ${model_path}"
fi

run_step "preprocess" "${output_path}/preprocess.log" \
    "${PYTHON}" "${repo_root}/preprocess.py" --data_path="${data_path}" --output_path="${preprocess_dir}" \
    --scale="${scale}" --image_height="${image_height}" --image_width="${image_width}"

rm -rf "${result_dir}"
if [[ "${runner}" == reference ]]; then
    run_step "inference (reference runner, CPU)" "${output_path}/infer.log" \
        "${PYTHON}" "${repo_root}/scripts/run_infer_reference.py" --mindir_path="${model_path}" \
        --input_path="${preprocess_dir}/00_data" --result_path="${result_dir}" --device_type=CPU \
        --device_id="${device_id}"
else
    harness="${repo_root}/ascend310_infer/out/main"
    if [[ ! -x "${harness}" ]]; then
        if [[ -z "${MS_LITE_HOME:-}" ]]; then
            if ! MS_LITE_HOME=$(PYTHON="${PYTHON}" bash "${repo_root}/scripts/fetch_mindspore_lite.sh" \
                2>>"${output_path}/setup.log"); then
                die "cannot fetch the MindSpore Lite C++ API: $(tail -n 1 "${output_path}/setup.log")"
            fi
        fi
        run_step "building ${harness}" "${output_path}/build.log" \
            env MS_LITE_HOME="${MS_LITE_HOME}" PYTHON="${PYTHON}" bash "${repo_root}/ascend310_infer/build.sh"
    fi
    # The size of the preprocessed inputs: a dynamic model is resized to it, a static one must match.
    if ! input_size=$("${PYTHON}" -c 'import json, sys; m = json.load(open(sys.argv[1])); print(m["height"], m["width"], sep=",")' \
        "${preprocess_dir}/meta.json" 2>&1); then
        die "cannot read the input size from ${preprocess_dir}/meta.json (${input_size})"
    fi
    run_step "inference (${harness}, ${device_type} ${device_id})" "${output_path}/infer.log" \
        "${harness}" --mindir_path="${lite_model}" --input_path="${preprocess_dir}/00_data" \
        --result_path="${result_dir}" --device_type="${device_type}" --device_id="${device_id}" \
        --input_shape="${input_size}"
    head -n 1 "${output_path}/infer.log"
fi
grep 'average latency' "${output_path}/infer.log" | tail -n 1

run_step "postprocess" "${output_path}/acc.log" \
    "${PYTHON}" "${repo_root}/postprocess.py" --data_path="${data_path}" --result_path="${result_dir}" \
    --preprocess_path="${preprocess_dir}" --scale="${scale}" --output_json="${output_path}/result.json"
grep '^result ' "${output_path}/acc.log" | tail -n 1
echo "${script}: done; table in ${output_path}/acc.log, JSON in ${output_path}/result.json"
