#!/usr/bin/env bash
# Fetch MindSpore Lite for the inference harness in ascend310_infer/: the C++ API (headers + shared
# libraries) and, with --converter, a Python 3.7 environment holding the Lite model converter.
#
# Usage: scripts/fetch_mindspore_lite.sh [--converter] [DEST]
#   DEST         cache folder (default: $SRCNN_CACHE/mindspore-lite-VERSION, SRCNN_CACHE=~/.cache/srcnn)
#   --converter  also make DEST/py37 (a Python 3.7 venv with the mindspore-lite wheel installed: its
#                converter turns export.py's ONNX models into the MINDIR form the Lite runtime reads)
#                and print its python instead of the Lite folder
#
# Both come from the PyPI wheel mindspore-lite==2.0.0 (CPython 3.7 build, ~170 MB), downloaded once
# into DEST/wheel: unzipped for the C++ API (any Python with pip can fetch it), installed into the venv
# for the converter (its Python binding needs CPython 3.7). Running again is a no-op once in place.
# On success the one line on stdout is the folder to use as MS_LITE_HOME (include/api/*.h and lib/*.so),
# or with --converter the converter's python; progress goes to stderr.
#
# Runs one at a time per DEST (flock on DEST/.lock): a second run waits, then finds everything in place,
# so concurrent runs never replace a folder another one is making or using.
#
# Environment: PYTHON (interpreter whose pip downloads the wheel, default python3), MS_LITE_PYTHON (the
# Python 3.7 for --converter; default python3.7 on PATH, else the newest ~/.pyenv/versions/3.7.*),
# MS_LITE_VERSION (default 2.0.0), MS_LITE_PY_VERSION (wheel tag, default 3.7), SRCNN_CACHE.
# Exit status: 0 on success; 3 for --converter on a machine with no Python 3.7 (what this machine lacks,
# said in the one error line; tests skip on it); 1 for any other failure.
set -euo pipefail

NO_PYTHON37=3

# One line "fetch_mindspore_lite.sh: error: ...", exit 1 (or the status given with --status=N first).
die() {
    local status=1
    if [[ $1 == --status=* ]]; then
        status=${1#--status=}
        shift
    fi
    echo "fetch_mindspore_lite.sh: error: $*" >&2
    exit "${status}"
}

converter=0
dest=""
for arg in "$@"; do
    case "${arg}" in
        --converter) converter=1 ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
            exit 0
            ;;
        -*) die "unknown option '${arg}' (see --help)" ;;
        *)
            [[ -z "${dest}" ]] || die "more than one DEST given ('${dest}', '${arg}')"
            dest=${arg}
            ;;
    esac
done

py=${PYTHON:-python3}
version=${MS_LITE_VERSION:-2.0.0}
py_version=${MS_LITE_PY_VERSION:-3.7}
dest=${dest:-"${SRCNN_CACHE:-${HOME}/.cache/srcnn}/mindspore-lite-${version}"}

mkdir -p "${dest}" || die "cannot create ${dest}"
dest=$(cd "${dest}" && pwd)
command -v flock >/dev/null 2>&1 ||
    die "flock (util-linux) not found: it keeps concurrent runs from replacing each other's files in ${dest}"
exec 9>>"${dest}/.lock" || die "cannot open the lock file ${dest}/.lock"
if ! flock -n 9; then
    echo "waiting for another fetch_mindspore_lite.sh working in ${dest} ..." >&2
    flock 9 || die "cannot lock ${dest}/.lock"
fi
home="${dest}/mindspore_lite"
stamp="${dest}/.mindspore_lite-${version}.done"
venv="${dest}/py37"
venv_stamp="${dest}/.py37-${version}.done"

work=""
cleanup() { [[ -z "${work}" ]] || rm -rf "${work}"; }
trap cleanup EXIT

# The wheel, downloaded once into DEST/wheel; prints its path.
fetch_wheel() {
    shopt -s nullglob
    local wheels=("${dest}"/wheel/mindspore_lite-"${version}"-*.whl)
    shopt -u nullglob
    if [[ ${#wheels[@]} -eq 1 ]]; then
        echo "${wheels[0]}"
        return
    fi
    command -v "${py}" >/dev/null 2>&1 || die "python interpreter '${py}' not found (set PYTHON)"
    local tmp
    tmp=$(mktemp -d "${dest}/.wheel.XXXXXX")
    echo "downloading mindspore-lite==${version} (python ${py_version} wheel, ~170 MB) ..." >&2
    if ! "${py}" -m pip download --disable-pip-version-check --no-deps --only-binary=:all: \
            --python-version "${py_version}" "mindspore-lite==${version}" \
            -d "${tmp}" >"${tmp}/pip.log" 2>&1; then
        local reason
        reason=$(grep -E 'ERROR|Error|error' "${tmp}/pip.log" | tail -n 1 || true)
        rm -rf "${tmp}"
        die "pip could not download mindspore-lite==${version} for python ${py_version} (needs access to PyPI)${reason:+: ${reason}}"
    fi
    shopt -s nullglob
    wheels=("${tmp}"/mindspore_lite-*.whl)
    shopt -u nullglob
    [[ ${#wheels[@]} -eq 1 ]] || { rm -rf "${tmp}"; die "expected one mindspore_lite wheel from pip, found ${#wheels[@]}"; }
    rm -rf "${dest}/wheel"
    mkdir -p "${dest}/wheel"
    mv "${wheels[0]}" "${dest}/wheel/"
    rm -rf "${tmp}"
    echo "${dest}/wheel/$(basename "${wheels[0]}")"
}

# The C++ API: the wheel's mindspore_lite/ folder, unzipped into DEST/mindspore_lite.
fetch_runtime() {
    if [[ -f "${stamp}" && -f "${home}/include/api/model.h" && -d "${home}/lib" ]]; then
        echo "mindspore-lite ${version} already present in ${home}" >&2
        return
    fi
    local wheel
    wheel=$(fetch_wheel)
    work=$(mktemp -d "${dest}/.fetch.XXXXXX")
    echo "unpacking $(basename "${wheel}") ..." >&2
    if command -v unzip >/dev/null 2>&1; then
        unzip -q -o "${wheel}" 'mindspore_lite/*' -d "${work}/x" || die "unzip failed on ${wheel}"
    else
        "${py}" -m zipfile -e "${wheel}" "${work}/x" || die "could not unpack ${wheel}"
    fi
    [[ -f "${work}/x/mindspore_lite/include/api/model.h" ]] ||
        die "the wheel has no mindspore_lite/include/api/model.h; layout changed?"
    # Replace any partial copy, then move the new one in place in one step.
    rm -rf "${home}"
    mv "${work}/x/mindspore_lite" "${home}"
    echo "${version}" >"${stamp}"
    echo "mindspore-lite ${version} unpacked into ${home}" >&2
}

# A CPython 3.7 interpreter for the converter venv; prints its path.
find_python37() {
    local candidates=() candidate
    if [[ -n "${MS_LITE_PYTHON:-}" ]]; then
        candidates=("${MS_LITE_PYTHON}")
    else
        # python3.7 on PATH may be a pyenv shim for a version not selected here: try each in turn.
        candidate=$(command -v python3.7 || true)
        [[ -z "${candidate}" ]] || candidates+=("${candidate}")
        while IFS= read -r candidate; do
            candidates+=("${candidate}")
        done < <(find "${PYENV_ROOT:-${HOME}/.pyenv}/versions" -maxdepth 3 -path '*/3.7.*/bin/python3.7' \
            2>/dev/null | sort -rV)
    fi
    for candidate in "${candidates[@]}"; do
        if "${candidate}" -c 'import sys, venv; sys.exit(sys.version_info[:2] != (3, 7))' >/dev/null 2>&1; then
            echo "${candidate}"
            return
        fi
    done
    die --status="${NO_PYTHON37}" "no Python 3.7 found (tried: ${candidates[*]:-python3.7 on PATH, ~/.pyenv/versions/3.7.*}): the mindspore-lite ${version} converter is built for CPython 3.7 only; install one (e.g. pyenv install 3.7.16) or set MS_LITE_PYTHON=/path/to/python3.7"
}

# The converter: DEST/py37, a venv with the downloaded wheel installed.
fetch_converter() {
    if [[ -f "${venv_stamp}" && -x "${venv}/bin/python" ]]; then
        echo "mindspore-lite ${version} converter already present in ${venv}" >&2
        return
    fi
    local wheel python37
    python37=$(find_python37)
    wheel=$(fetch_wheel)
    rm -rf "${venv}"
    echo "making ${venv} with ${python37} and installing $(basename "${wheel}") ..." >&2
    "${python37}" -m venv "${venv}" || die "${python37} -m venv ${venv} failed"
    if ! "${venv}/bin/python" -m pip install -q --disable-pip-version-check "${wheel}" >"${dest}/py37-pip.log" 2>&1; then
        rm -rf "${venv}"
        die "pip could not install ${wheel} into ${venv} (see ${dest}/py37-pip.log)"
    fi
    "${venv}/bin/python" -c 'import mindspore_lite; mindspore_lite.Converter' 2>"${dest}/py37-import.log" ||
        die "mindspore_lite does not import in ${venv} (see ${dest}/py37-import.log)"
    echo "${version}" >"${venv_stamp}"
    echo "mindspore-lite ${version} converter installed in ${venv}" >&2
}

if [[ ${converter} -eq 1 ]]; then
    fetch_converter
    echo "${venv}/bin/python"
else
    fetch_runtime
    echo "${home}"
fi
