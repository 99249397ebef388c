"""The oneDNN ISA cap of src/__init__.py: AVX-512 for the convolution-free CPU paths, AVX2 for the entry
points that run MindSpore's own convolution kernels, the user's value kept, a parent's default recomputed."""
import os
import subprocess
import sys

import pytest

from src import RUNS_CONVOLUTION_KERNELS, default_onednn_isa
from tests.conftest import REPO_ROOT

AVX512 = {"avx2", "avx512f", "avx512bw", "avx512vl", "avx512dq"}


@pytest.mark.parametrize("script, flags, expected", [
    ("/repo/train.py", AVX512, "AVX512_CORE"),
    ("eval.py", AVX512, "AVX512_CORE"),
    ("train.py", {"avx2", "fma"}, "AVX2"),  # no AVX-512: the cap changes nothing, AVX2 says so
    ("train.py", AVX512 - {"avx512vl"}, "AVX2"),
    ("/repo/export.py", AVX512, "AVX2"),
    ("scripts/run_infer_reference.py", AVX512, "AVX2"),
])
def test_default_isa_follows_the_work_and_the_cpu(script, flags, expected):
    assert default_onednn_isa(script, flags) == expected


def isa_seen_by(script_name, env):
    code = (f"import sys; sys.argv = [{script_name!r}]; sys.path.insert(0, {str(REPO_ROOT)!r}); import src, os; "
            "print(os.environ['ONEDNN_MAX_CPU_ISA'])")
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_user_value_wins_and_inherited_default_is_recomputed():
    env = {k: v for k, v in os.environ.items() if k not in ("ONEDNN_MAX_CPU_ISA", "SRCNN_ONEDNN_DEFAULT")}
    assert isa_seen_by("export.py", dict(env, ONEDNN_MAX_CPU_ISA="AVX2")) == "AVX2"
    assert isa_seen_by("train.py", dict(env, ONEDNN_MAX_CPU_ISA="SSE41")) == "SSE41"
    # what this pytest process was given by src/__init__.py is a default, not a user's choice
    inherited = dict(env, ONEDNN_MAX_CPU_ISA="AVX512_CORE", SRCNN_ONEDNN_DEFAULT="AVX512_CORE")
    assert isa_seen_by(RUNS_CONVOLUTION_KERNELS[0], inherited) == "AVX2"
    assert isa_seen_by("eval.py", inherited) == default_onednn_isa("eval.py")
