"""Build the MindSpore Lite C++ inference harness (ascend310_infer/) and check its flags and link.

The MindSpore Lite C++ API comes from the PyPI wheel mindspore-lite==2.0.0,
fetched by scripts/fetch_mindspore_lite.sh (cached in ~/.cache/srcnn) unless
MS_LITE_HOME points at an unpacked copy.  No Ascend device is needed: the
harness runs on CPU here; tests/integration/test_lite_deploy.py runs real models through it.
"""
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import held_flock

REPO_ROOT = Path(__file__).resolve().parents[2]
INFER_DIR = REPO_ROOT / "ascend310_infer"
BUILD_SH = INFER_DIR / "build.sh"
FETCH_SH = REPO_ROOT / "scripts" / "fetch_mindspore_lite.sh"
BINARY = INFER_DIR / "out" / "main"

FETCH_TIMEOUT = 900
BUILD_TIMEOUT = 900
RUN_TIMEOUT = 300


def _run(cmd, env=None, timeout=RUN_TIMEOUT, cwd=None):
    return subprocess.run(
        [str(c) for c in cmd],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        timeout=timeout,
        check=False,
    )


def _is_lite_home(path):
    return (Path(path) / "include" / "api" / "model.h").is_file() and (Path(path) / "lib").is_dir()


@pytest.fixture(scope="module")
def lite_home():
    env_home = os.environ.get("MS_LITE_HOME")
    if env_home:
        assert _is_lite_home(env_home), f"MS_LITE_HOME={env_home} has no include/api/model.h and lib/"
        return Path(env_home).resolve()
    proc = _run(["bash", FETCH_SH], env=dict(os.environ, PYTHON=sys.executable), timeout=FETCH_TIMEOUT)
    assert proc.returncode == 0, f"fetch_mindspore_lite.sh failed:\n{proc.stderr[-3000:]}"
    home = Path(proc.stdout.strip().splitlines()[-1])
    assert _is_lite_home(home), f"fetch_mindspore_lite.sh printed {home}, which has no include/api/model.h"
    return home


@pytest.fixture(scope="module")
def run_env(lite_home):
    env = dict(os.environ)
    lib = str(lite_home / "lib")
    env["LD_LIBRARY_PATH"] = lib + (":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
    return env


@pytest.fixture(scope="module")
def harness(lite_home):
    env = dict(os.environ, MS_LITE_HOME=str(lite_home), BUILD_JOBS="1")
    proc = _run(["bash", BUILD_SH], env=env, timeout=BUILD_TIMEOUT)
    assert proc.returncode == 0, f"build.sh failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return BINARY


def _no_lite_python(tmp_path):
    """An interpreter that cannot see site-packages, hence neither mindspore_lite nor mindspore."""
    wrapper = tmp_path / "python3"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -I -S "$@"\n')
    wrapper.chmod(0o755)
    check = _run([wrapper, "-c", "import importlib.util as u; print(u.find_spec('mindspore_lite'))"])
    assert check.stdout.strip() == "None", check.stdout + check.stderr
    return wrapper


# --- shell scripts -----------------------------------------------------------


@pytest.mark.parametrize("script", [FETCH_SH, BUILD_SH], ids=lambda p: p.name)
def test_shell_scripts_lint(script):
    proc = _run(["bash", "-n", script])
    assert proc.returncode == 0, proc.stderr
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck not installed (apt-get install shellcheck)")
    proc = _run(["shellcheck", script])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_fetch_waits_for_another_run_on_the_same_cache(tmp_path):
    """A second fetch_mindspore_lite.sh on a cache another run has locked waits for it, then uses what it
    left in place (here a Lite folder made by hand) instead of replacing it."""
    dest = tmp_path / "cache"
    (dest / "mindspore_lite" / "include" / "api").mkdir(parents=True)
    (dest / "mindspore_lite" / "include" / "api" / "model.h").write_text("// made by the other run\n")
    (dest / "mindspore_lite" / "lib").mkdir()
    (dest / ".mindspore_lite-2.0.0.done").write_text("2.0.0\n")
    env = dict(os.environ, MS_LITE_VERSION="2.0.0")
    with held_flock(dest / ".lock") as other_run:
        fetch = subprocess.Popen(["bash", str(FETCH_SH), str(dest)], env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        try:
            first = fetch.stderr.readline()
            assert first.startswith(f"waiting for another fetch_mindspore_lite.sh working in {dest}"), first
            assert fetch.poll() is None  # still waiting
        finally:
            other_run.release()
            out, err = fetch.communicate(timeout=RUN_TIMEOUT)
    assert fetch.returncode == 0, err
    assert out == f"{dest / 'mindspore_lite'}\n" and "already present" in err
    assert (dest / "mindspore_lite" / "include" / "api" / "model.h").read_text() == "// made by the other run\n"


def test_build_fails_clearly_without_lite(tmp_path):
    env = dict(os.environ, MS_LITE_HOME="/nonexistent", PYTHON=str(_no_lite_python(tmp_path)))
    proc = _run(["bash", BUILD_SH], env=env, timeout=120)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert "MS_LITE_HOME" in last, proc.stderr
    assert "error" in last


def test_build_finds_lite_through_python_package(tmp_path, lite_home):
    # A mindspore_lite package laid out like the wheel, seen only through PYTHONPATH.
    pkg = tmp_path / "site" / "mindspore_lite"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "include").symlink_to(lite_home / "include")
    (pkg / "lib").symlink_to(lite_home / "lib")
    wrapper = tmp_path / "python3"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH="{tmp_path / "site"}" exec "{sys.executable}" -S "$@"\n')
    wrapper.chmod(0o755)
    env = dict(os.environ, MS_LITE_HOME="/nonexistent", PYTHON=str(wrapper))
    proc = _run(["bash", BUILD_SH, "--print-lite-home"], env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()) == pkg


# --- the built harness -------------------------------------------------------


def test_build_produces_executable(harness):
    assert harness.is_file()
    assert os.access(harness, os.X_OK)
    assert harness.stat().st_mode & stat.S_IXUSR


def test_link_resolved_mindspore_symbols(harness, lite_home):
    """Every mindspore:: symbol out/main needs is defined by the library it links."""
    needed = _run(["readelf", "-d", harness]).stdout
    libs = re.findall(r"Shared library: \[(lib(?:mindspore[^\]]*))\]", needed)
    assert libs, needed
    undefined = {
        line.split()[-1].split("@")[0]
        for line in _run(["nm", "-u", harness]).stdout.splitlines()
        if "mindspore" in line
    }
    names = {"Model5Build", "Model7Predict", "Model9GetInputs"}
    assert all(any(n in s for s in undefined) for n in names), sorted(undefined)
    defined = set()
    for lib in libs:
        out = _run(["nm", "-D", "--defined-only", lite_home / "lib" / lib]).stdout
        defined.update(line.split()[-1].split("@")[0] for line in out.splitlines() if line.strip())
    assert undefined <= defined, sorted(undefined - defined)


def test_help_prints_usage(harness, run_env):
    proc = _run([harness, "--help"], env=run_env)
    assert proc.returncode == 0, proc.stderr
    for flag in ("--mindir_path", "--input_path", "--result_path", "--device_type", "--device_id"):
        assert flag in proc.stdout
    assert proc.stdout.startswith("Usage:")


def test_help_starts_without_ld_library_path(harness):
    """The build embeds the Lite lib/ folder as RPATH."""
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    proc = _run([harness, "--help"], env=env)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--bogus=1"], "--bogus"),
        (["--input_path=x"], "--mindir_path"),
        (["--mindir_path=x", "--input_path=y", "--device_type=GPU"], "--device_type"),
        (["--mindir_path=x", "--input_path=y", "--device_id=-1"], "--device_id"),
    ],
)
def test_bad_flags_fail_with_one_line(harness, run_env, args, needle):
    proc = _run([harness] + args, env=run_env)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], proc.stderr


def _error_lines(stderr):
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_non_model_file_fails(harness, run_env, tmp_path):
    bogus = tmp_path / "not_a_model.mindir"
    bogus.write_text("this is not a MINDIR model\n")
    inputs = tmp_path / "in"
    inputs.mkdir()
    np.zeros((1, 1, 8, 8), np.float32).tofile(inputs / "img.bin")
    proc = _run(
        [harness, f"--mindir_path={bogus}", f"--input_path={inputs}",
         f"--result_path={tmp_path / 'out'}", "--device_type=CPU"],
        env=run_env,
    )
    assert proc.returncode != 0
    assert proc.stdout == ""
    errors = _error_lines(proc.stderr)
    assert len(errors) == 1 and str(bogus) in errors[0], proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == errors[0]


def test_missing_input_folder_fails(harness, run_env, tmp_path):
    model = tmp_path / "m.mindir"
    model.write_bytes(b"x")
    proc = _run([harness, f"--mindir_path={model}", f"--input_path={tmp_path / 'nope'}"], env=run_env)
    assert proc.returncode != 0
    assert _error_lines(proc.stderr) == [proc.stderr.strip()], proc.stderr
    assert "nope" in proc.stderr
