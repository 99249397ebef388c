"""The documented install covers the documented commands: in a venv made from requirements.txt alone (no
development requirements), the README's ONNX export and ONNX evaluation commands run as written.

The venv is kept in ~/.cache/srcnn (SRCNN_CACHE), named by the hash of requirements.txt, so it is
installed once per change of the requirements (pip's own cache makes that install quick too). A venv is
~3 GB: making one deletes the venvs of other requirements that no run is using (see plain_venv).
"""
import contextlib
import fcntl
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import held_flock

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("SRCNN_CACHE", Path.home() / ".cache" / "srcnn"))
VENV_PREFIX = "venv-requirements-"
INSTALL_TIMEOUT = 1800


def in_use_lock(venv):
    return venv.with_name(venv.name + ".lock")


def delete_unused_venvs(cache, keep):
    """Deletes every VENV_PREFIX* venv of ``cache`` but ``keep`` whose lock no run holds (the caller holds the
    cache lock)."""
    for venv in sorted(cache.glob(VENV_PREFIX + "*")):
        if venv == keep or not venv.is_dir():
            continue
        with open(in_use_lock(venv), "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # another run (another worktree, CI) is using it
            shutil.rmtree(venv, ignore_errors=True)
            os.remove(lock.name)


@contextlib.contextmanager
def plain_venv():
    """The python of the venv made from requirements.txt alone, made if missing.

    Concurrent runs (two worktrees, CI beside a developer) share CACHE: making or deleting venvs happens
    under an exclusive flock of CACHE/venv-requirements.lock, and a run holds a shared flock of
    <venv>.lock while it uses that venv, which keeps the others from deleting it. The lock files are
    opened under the cache lock, so a deleted lock file can never be one a run is about to hold."""
    requirements = (REPO / "requirements.txt").read_bytes()
    venv = CACHE / f"{VENV_PREFIX}{hashlib.sha256(requirements).hexdigest()[:16]}"
    python = venv / "bin" / "python"
    stamp = venv / ".installed"
    CACHE.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as locks:
        cache_lock = locks.enter_context(open(CACHE / "venv-requirements.lock", "a"))
        fcntl.flock(cache_lock, fcntl.LOCK_EX)
        in_use = locks.enter_context(open(in_use_lock(venv), "a"))
        fcntl.flock(in_use, fcntl.LOCK_SH)
        if not (stamp.is_file() and python.is_file()):
            delete_unused_venvs(CACHE, keep=venv)  # before making this one: the disk holds one venv, not two
            shutil.rmtree(venv, ignore_errors=True)
            make_venv(venv)
            stamp.write_text(hashlib.sha256(requirements).hexdigest() + "\n")
        fcntl.flock(cache_lock, fcntl.LOCK_UN)
        yield python


def make_venv(venv):
    base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    for cmd in ([str(base), "-m", "venv", str(venv)],
                [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                 "--no-compile", "-r", str(REPO / "requirements.txt")]):
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False)
        assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"


def readme_command(script, must_contain=""):
    """The README's ``python SCRIPT ...`` line (the first one containing ``must_contain``), as arguments:
    the comment and the optional ``[...]`` parts dropped."""
    for block in re.findall(r"^```bash\n(.*?)^```", (REPO / "README.md").read_text(encoding="utf-8"), re.S | re.M):
        for line in block.splitlines():
            if line.startswith(f"python {script} ") and must_contain in line:
                line = re.sub(r"\[[^\]]*\]", "", line.split("#")[0])
                return shlex.split(line)[2:]
    pytest.fail(f"README.md has no 'python {script} ...{must_contain}' command")


def test_readme_onnx_export_and_evaluation_from_requirements_txt(tmp_path, datasets_dir):
    with plain_venv() as python:
        check_readme_commands(python, tmp_path, datasets_dir)


def check_readme_commands(python, tmp_path, datasets_dir):
    freeze = subprocess.run([str(python), "-m", "pip", "freeze"], capture_output=True, text=True, check=True).stdout
    assert not re.search(r"^(pytest|hypothesis|scikit-image)==", freeze, re.M), freeze  # only requirements.txt

    shutil.copy(REPO / "pretrained" / "srcnn_x2.ckpt", tmp_path / "srcnn_x2.ckpt")
    (tmp_path / "Set5").symlink_to(datasets_dir / "Set5")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    export_args = readme_command("export.py", "--file_format=ONNX")
    assert export_args == ["--checkpoint_path=srcnn_x2.ckpt", "--file_format=ONNX"]
    proc = subprocess.run([str(python), str(REPO / "export.py"), *export_args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert (tmp_path / "srcnn.onnx").is_file() and "as ONNX" in proc.stdout

    eval_args = readme_command("eval_onnx.py")
    assert "--onnx_path=srcnn.onnx" in eval_args and "--data_path=Set5" in eval_args
    proc = subprocess.run([str(python), str(REPO / "eval_onnx.py"), *eval_args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    last = proc.stdout.strip().splitlines()[-1]
    psnr = float(re.fullmatch(r"result \{'PSNR': ([\d.]+), 'SSIM': [\d.]+\}", last).group(1))
    assert 36 < psnr < 37, last  # the shipped x2 on Set5 (eval.py: 36.52)


def test_unused_venvs_are_deleted_and_venvs_in_use_are_kept(tmp_path):
    old, busy, keep = (tmp_path / f"{VENV_PREFIX}{name}" for name in ("old", "busy", "keep"))
    for venv in (old, busy, keep):
        (venv / "bin").mkdir(parents=True)
    (tmp_path / "other").mkdir()
    with held_flock(in_use_lock(busy), shared=True):  # another run using `busy`, as plain_venv() does
        delete_unused_venvs(tmp_path, keep=keep)
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
            [busy.name, in_use_lock(busy).name, keep.name, "other"])
    delete_unused_venvs(tmp_path, keep=keep)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([keep.name, "other"])
