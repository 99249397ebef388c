#!/usr/bin/env bash
# Build the MINDIR inference harness: ascend310_infer/out/main.
#
# The MindSpore Lite C++ API (include/api/*.h + lib/*.so) is looked up in order:
#   1. MS_LITE_HOME, a folder holding include/api/model.h and lib/
#      (or runtime/include/api/model.h and runtime/lib/, the Lite tarball layout);
#   2. the mindspore_lite package of the Python interpreter $PYTHON (default python3);
#   3. the mindspore package of that interpreter, if it ships include/api/model.h;
#   4. only when MS_LITE_HOME is unset: $SRCNN_CACHE/mindspore-lite-2.0.0/mindspore_lite
#      (SRCNN_CACHE=~/.cache/srcnn), where scripts/fetch_mindspore_lite.sh unpacks it by default.
#
# CMake: the one on PATH, else one installed from PyPI (pip install cmake) into $SRCNN_CACHE/cmake,
# made once with $PYTHON.
#
# Usage: ascend310_infer/build.sh [--print-lite-home]
#   --print-lite-home  only print the Lite folder that would be used and exit
#                      (its lib/ is what LD_LIBRARY_PATH needs to run out/main elsewhere).
#
# Environment: MS_LITE_HOME, PYTHON, BUILD_JOBS (default 1), CMAKE_BUILD_TYPE
# (default Release), CMAKE_ARGS (extra arguments for the cmake configure step).
set -euo pipefail

die() {
    echo "build.sh: error: $*" >&2
    exit 1
}

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
py=${PYTHON:-python3}

print_home=0
for arg in "$@"; do
    case "${arg}" in
        --print-lite-home) print_home=1 ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
            exit 0
            ;;
        *) die "unknown argument '${arg}' (see --help)" ;;
    esac
done

# Print the API root of a candidate folder (itself or its runtime/ child).
lite_root() {
    local dir=$1
    if [[ -f "${dir}/include/api/model.h" && -d "${dir}/lib" ]]; then
        (cd "${dir}" && pwd)
    elif [[ -f "${dir}/runtime/include/api/model.h" && -d "${dir}/runtime/lib" ]]; then
        (cd "${dir}/runtime" && pwd)
    else
        return 1
    fi
}

# Folder of a Python package, located without importing it.
python_pkg_dir() {
    command -v "${py}" >/dev/null 2>&1 || return 1
    "${py}" - "$1" 2>/dev/null <<'EOF'
import importlib.util, os, sys
spec = importlib.util.find_spec(sys.argv[1])
if spec is None or not spec.origin:
    sys.exit(1)
print(os.path.dirname(spec.origin))
EOF
}

lite_home=""
tried=()
if [[ -n "${MS_LITE_HOME:-}" ]]; then
    if lite_home=$(lite_root "${MS_LITE_HOME}"); then
        echo "build.sh: using MS_LITE_HOME=${lite_home}" >&2
    else
        lite_home=""
        echo "build.sh: warning: MS_LITE_HOME=${MS_LITE_HOME} has no include/api/model.h and lib/; trying ${py}" >&2
        tried+=("MS_LITE_HOME=${MS_LITE_HOME}")
    fi
fi
if [[ -z "${lite_home}" ]]; then
    for pkg in mindspore_lite mindspore; do
        if pkg_dir=$(python_pkg_dir "${pkg}") && lite_home=$(lite_root "${pkg_dir}"); then
            echo "build.sh: using the ${pkg} package of ${py}: ${lite_home}" >&2
            break
        fi
        lite_home=""
    done
    [[ -n "${lite_home}" ]] || tried+=("the mindspore_lite/mindspore packages of ${py}")
fi
if [[ -z "${lite_home}" && -z "${MS_LITE_HOME:-}" ]]; then
    cached_lite="${SRCNN_CACHE:-${HOME}/.cache/srcnn}/mindspore-lite-${MS_LITE_VERSION:-2.0.0}/mindspore_lite"
    if lite_home=$(lite_root "${cached_lite}"); then
        echo "build.sh: using ${lite_home} (from scripts/fetch_mindspore_lite.sh)" >&2
    else
        lite_home=""
        tried+=("${cached_lite}")
    fi
fi
if [[ -z "${lite_home}" ]]; then
    msg="MindSpore Lite C++ API not found (tried: $(printf '%s; ' "${tried[@]}" | sed 's/; $//'));"
    die "${msg} set MS_LITE_HOME to a folder with include/api/model.h and lib/, e.g. MS_LITE_HOME=\$(scripts/fetch_mindspore_lite.sh)"
fi

if [[ ${print_home} -eq 1 ]]; then
    echo "${lite_home}"
    exit 0
fi

cmake=$(command -v cmake || true)
if [[ -z "${cmake}" ]]; then
    cmake_venv="${SRCNN_CACHE:-${HOME}/.cache/srcnn}/cmake"
    if [[ ! -x "${cmake_venv}/bin/cmake" ]]; then
        echo "build.sh: no cmake on PATH: installing it from PyPI into ${cmake_venv}" >&2
        rm -rf "${cmake_venv}"
        if ! { "${py}" -m venv "${cmake_venv}" &&
            "${cmake_venv}/bin/python" -m pip install -q --disable-pip-version-check cmake; } >&2; then
            rm -rf "${cmake_venv}"
            die "cmake not found and could not be installed with ${py} -m pip (apt-get install cmake, or pip install cmake)"
        fi
    fi
    cmake="${cmake_venv}/bin/cmake"
fi
command -v "${CXX:-c++}" >/dev/null 2>&1 || die "no C++ compiler '${CXX:-c++}' (apt-get install g++, or set CXX)"

build_dir="${script_dir}/build"
# A build tree configured from another checkout or Lite install cannot be reused.
if [[ -f "${build_dir}/CMakeCache.txt" ]] &&
    ! grep -qxF "CMAKE_HOME_DIRECTORY:INTERNAL=${script_dir}" "${build_dir}/CMakeCache.txt"; then
    rm -rf "${build_dir}"
fi

# CMAKE_ARGS is split on purpose: it holds several cmake arguments.
# shellcheck disable=SC2086
"${cmake}" -S "${script_dir}" -B "${build_dir}" \
    -DCMAKE_BUILD_TYPE="${CMAKE_BUILD_TYPE:-Release}" \
    -DMS_LITE_HOME="${lite_home}" ${CMAKE_ARGS:-} >&2 ||
    die "cmake configure failed (see messages above)"
"${cmake}" --build "${build_dir}" -j "${BUILD_JOBS:-1}" >&2 ||
    die "compilation failed (see messages above)"

[[ -x "${script_dir}/out/main" ]] || die "build finished but ${script_dir}/out/main is missing"
echo "build.sh: built ${script_dir}/out/main (MindSpore Lite libraries: ${lite_home}/lib)" >&2
