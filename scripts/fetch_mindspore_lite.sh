#!/usr/bin/env bash
# Fetch the MindSpore Lite C++ API (headers + shared libraries) for building
# the Ascend 310 inference harness in ascend310_infer/.
#
# Usage: scripts/fetch_mindspore_lite.sh [DEST]      (default DEST: <repo>/.lite)
#
# The C++ API ships inside the PyPI wheel mindspore-lite==2.0.0 (CPython 3.7
# build, ~170 MB).  The wheel is only unzipped, never installed, so any Python
# with pip can fetch it.  On success the one line written to stdout is the
# directory to use as MS_LITE_HOME (it holds include/api/*.h and lib/*.so);
# progress messages go to stderr.  Running it again is a no-op once the files
# are in place.
#
# Environment: PYTHON (interpreter whose pip is used, default python3),
# MS_LITE_VERSION (default 2.0.0), MS_LITE_PY_VERSION (wheel tag, default 3.7).
set -euo pipefail

die() {
    echo "fetch_mindspore_lite.sh: error: $*" >&2
    exit 1
}

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "${script_dir}/.." && pwd)

dest=${1:-"${repo_root}/.lite"}
py=${PYTHON:-python3}
version=${MS_LITE_VERSION:-2.0.0}
py_version=${MS_LITE_PY_VERSION:-3.7}

mkdir -p "${dest}" || die "cannot create ${dest}"
dest=$(cd "${dest}" && pwd)
home="${dest}/mindspore_lite"
stamp="${dest}/.mindspore_lite-${version}.done"

is_complete() {
    [[ -f "${stamp}" && -f "${home}/include/api/model.h" && -d "${home}/lib" ]]
}

if is_complete; then
    echo "mindspore-lite ${version} already present in ${home}" >&2
    echo "${home}"
    exit 0
fi

command -v "${py}" >/dev/null 2>&1 || die "python interpreter '${py}' not found (set PYTHON)"

work=$(mktemp -d "${dest}/.fetch.XXXXXX")
trap 'rm -rf "${work}"' EXIT

echo "downloading mindspore-lite==${version} (python ${py_version} wheel, ~170 MB) ..." >&2
if ! "${py}" -m pip download --disable-pip-version-check --no-deps --only-binary=:all: \
        --python-version "${py_version}" "mindspore-lite==${version}" \
        -d "${work}/wheel" >"${work}/pip.log" 2>&1; then
    reason=$(grep -E 'ERROR|Error|error' "${work}/pip.log" | tail -n 1 || true)
    die "pip could not download mindspore-lite==${version} for python ${py_version} (needs access to PyPI)${reason:+: ${reason}}"
fi

shopt -s nullglob
wheels=("${work}"/wheel/mindspore_lite-*.whl)
shopt -u nullglob
[[ ${#wheels[@]} -eq 1 ]] || die "expected one mindspore_lite wheel in ${work}/wheel, found ${#wheels[@]}"

echo "unpacking $(basename "${wheels[0]}") ..." >&2
if command -v unzip >/dev/null 2>&1; then
    unzip -q -o "${wheels[0]}" 'mindspore_lite/*' -d "${work}/x" || die "unzip failed on ${wheels[0]}"
else
    "${py}" -m zipfile -e "${wheels[0]}" "${work}/x" || die "could not unpack ${wheels[0]}"
fi
[[ -f "${work}/x/mindspore_lite/include/api/model.h" ]] ||
    die "the wheel has no mindspore_lite/include/api/model.h; layout changed?"

# Replace any partial copy, then move the new one in place in one step.
rm -rf "${home}"
mv "${work}/x/mindspore_lite" "${home}"
echo "${version}" >"${stamp}"
echo "mindspore-lite ${version} unpacked into ${home}" >&2
echo "${home}"
