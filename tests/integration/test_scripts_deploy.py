"""The deployment/evaluation shell scripts: syntax, shellcheck, usage text and argument checks.

None of these runs a model (the arguments are rejected before Python starts); the end-to-end runs of
run_infer_310.sh and run_onnx_eval_gpu.sh are in tests/integration/test_deploy.py.
"""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = ["run_infer_310.sh", "run_onnx_eval_gpu.sh", "run_onnx_eval_cpu.sh", "run_eval_ascend.sh",
           "run_eval_gpu.sh", "run_eval_cpu.sh"]


def bash(script, *args, env=None):
    return subprocess.run(["bash", str(REPO / "scripts" / script), *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture()
def files(tmp_path):
    """An existing folder and model/checkpoint files, so only the argument under test is wrong."""
    data = tmp_path / "data"
    data.mkdir()
    model = tmp_path / "model.bin"
    model.write_bytes(b"x")
    return data, model


@pytest.mark.parametrize("script", SCRIPTS)
def test_syntax_and_shellcheck(script):
    path = REPO / "scripts" / script
    proc = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck not installed (apt-get install shellcheck)")
    # -x follows the shared file the scripts source (scripts/eval_common.sh)
    proc = subprocess.run(["shellcheck", "-x", str(path.relative_to(REPO))], cwd=REPO, capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("script", SCRIPTS)
def test_no_arguments_prints_usage_naming_the_script(script):
    proc = bash(script)
    assert proc.returncode == 2
    assert f"usage: bash {script} " in proc.stderr
    assert proc.stderr.startswith("error: expected "), proc.stderr
    assert len(proc.stderr.splitlines()) == 1, proc.stderr  # the repository's one-line error
    assert proc.stdout == ""


# (script, arguments with {data}/{model} placeholders, words the error must contain)
BAD_ARGUMENTS = [
    ("run_eval_gpu.sh", ["8", "{data}", "{model}"], ["DEVICE_ID", "0 to 7", "'8'"]),
    ("run_eval_gpu.sh", ["x", "{data}", "{model}"], ["DEVICE_ID", "'x'"]),
    ("run_eval_ascend.sh", ["-1", "{data}", "{model}"], ["DEVICE_ID", "'-1'"]),
    ("run_eval_ascend.sh", ["0", "{data}", "{model}", "5"], ["SCALE", "'5'"]),
    ("run_eval_cpu.sh", ["{data}", "{model}", "x2"], ["SCALE", "'x2'"]),
    ("run_eval_cpu.sh", ["{data}/missing", "{model}"], ["DATA_PATH", "missing"]),
    ("run_eval_cpu.sh", ["{data}", "{data}/none.ckpt"], ["CHECKPOINT_PATH", "none.ckpt"]),
    ("run_onnx_eval_gpu.sh", ["{data}", "10", "{model}"], ["DEVICE_ID", "'10'"]),
    ("run_onnx_eval_gpu.sh", ["{data}", "0", "{data}/none.onnx"], ["ONNX_MODEL_PATH", "none.onnx"]),
    ("run_onnx_eval_cpu.sh", ["{data}", "{model}", "1"], ["SCALE", "'1'"]),
    ("run_infer_310.sh", ["{model}", "{data}", "{data}/out", "9"], ["DEVICE_ID", "'9'"]),
    ("run_infer_310.sh", ["{model}", "{data}", "{data}/out", "0", "512"], ["IMAGE_HEIGHT and IMAGE_WIDTH"]),
    ("run_infer_310.sh", ["{model}", "{data}", "{data}/out", "0", "512", "0"], ["IMAGE_WIDTH", "'0'"]),
    ("run_infer_310.sh", ["{data}/none.mindir", "{data}", "{data}/out"], ["MODEL_PATH", "none.mindir"]),
    ("run_infer_310.sh", ["{model}", "{data}", "{data}/out"], ["MODEL_PATH", "model.bin", ".onnx", ".mindir"]),
]


@pytest.mark.parametrize("script, args, words", BAD_ARGUMENTS, ids=lambda v: v if isinstance(v, str) else None)
def test_bad_arguments_are_rejected(script, args, words, files):
    data, model = files
    proc = bash(script, *(a.format(data=data, model=model) for a in args))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    first = proc.stderr.splitlines()[0]
    assert first.startswith("error: ") and len(proc.stderr.splitlines()) == 1, proc.stderr
    for word in words:
        assert word in first, first
    assert f"usage: bash {script} " in proc.stderr
    assert not (data / "out").exists()


@pytest.mark.parametrize("variable, value", [("SCALE", "5"), ("DEVICE_TYPE", "GPU"), ("INFER_RUNNER", "lite")])
def test_run_infer_310_checks_its_environment(variable, value, files):
    data, model = files
    proc = bash("run_infer_310.sh", model, data, data / "out", env=dict(os.environ, **{variable: value}))
    assert proc.returncode == 2
    assert variable in proc.stderr.splitlines()[0] and f"'{value}'" in proc.stderr.splitlines()[0]
