"""The documented install covers the documented commands: in a venv made from requirements.txt alone (no
development requirements), the README's ONNX export and ONNX evaluation commands run as written.

The venv is kept in ~/.cache/srcnn (SRCNN_CACHE), named by the hash of requirements.txt, so it is
installed once per change of the requirements (pip's own cache makes that install quick too).
"""
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("SRCNN_CACHE", Path.home() / ".cache" / "srcnn"))
INSTALL_TIMEOUT = 1800


def plain_venv():
    requirements = (REPO / "requirements.txt").read_bytes()
    venv = CACHE / f"venv-requirements-{hashlib.sha256(requirements).hexdigest()[:16]}"
    python = venv / "bin" / "python"
    stamp = venv / ".installed"
    if stamp.is_file() and python.is_file():
        return python
    shutil.rmtree(venv, ignore_errors=True)
    base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    venv.parent.mkdir(parents=True, exist_ok=True)
    for cmd in ([str(base), "-m", "venv", str(venv)],
                [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r",
                 str(REPO / "requirements.txt")]):
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False)
        assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    stamp.write_text(hashlib.sha256(requirements).hexdigest() + "\n")
    return python


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
    python = plain_venv()
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
