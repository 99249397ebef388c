"""The oneDNN ISA cap of src/__init__.py in real processes: the user's value kept, a parent's default
recomputed (the choice per entry point: tests/unit/test_onednn_default.py)."""
import os
import subprocess
import sys
import tempfile

from src import RUNS_CONVOLUTION_KERNELS, default_onednn_isa
from tests.conftest import REPO_ROOT


def isa_seen_by(script_name, env):
    """Run a script named ``script_name`` that imports src and prints the cap it ended up with."""
    with tempfile.TemporaryDirectory() as folder:
        script = os.path.join(folder, script_name)
        with open(script, "w", encoding="utf-8") as handle:
            handle.write(f"import sys; sys.path.insert(0, {str(REPO_ROOT)!r})\nimport os, src\n"
                         "print(os.environ['ONEDNN_MAX_CPU_ISA'])\n")
        return subprocess.run([sys.executable, script], env=env, capture_output=True, text=True,
                              check=True).stdout.strip()


def test_user_value_wins_and_inherited_default_is_recomputed():
    env = {k: v for k, v in os.environ.items() if k not in ("ONEDNN_MAX_CPU_ISA", "SRCNN_ONEDNN_DEFAULT")}
    assert isa_seen_by("export.py", dict(env, ONEDNN_MAX_CPU_ISA="AVX2")) == "AVX2"
    assert isa_seen_by("train.py", dict(env, ONEDNN_MAX_CPU_ISA="SSE41")) == "SSE41"
    # what this pytest process was given by src/__init__.py is a default, not a user's choice
    inherited = dict(env, ONEDNN_MAX_CPU_ISA="AVX512_CORE", SRCNN_ONEDNN_DEFAULT="AVX512_CORE")
    assert isa_seen_by(RUNS_CONVOLUTION_KERNELS[0], inherited) == "AVX2"
    assert isa_seen_by("eval.py", inherited) == default_onednn_isa("eval.py")
