"""The oneDNN ISA cap src/__init__.py picks: AVX-512 for the convolution-free CPU paths, AVX2 for the entry
points that run MindSpore's own convolution kernels (in real processes: tests/integration/test_onednn_setting.py)."""
import pytest

from src import default_onednn_isa


@pytest.mark.parametrize("entry_point, expected", [
    ("/repo/train.py", "AVX512_CORE"),
    ("eval.py", "AVX512_CORE"),
    ("", "AVX512_CORE"),  # python -c, an interactive session
    ("/repo/export.py", "AVX2"),
    ("scripts/run_infer_reference.py", "AVX2"),
])
def test_default_isa_follows_the_work(entry_point, expected):
    assert default_onednn_isa(entry_point) == expected
