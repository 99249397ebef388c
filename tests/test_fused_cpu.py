"""The fused CPU kernels (src/fused_cpu.py, src/cpu_kernels/srcnn_fused.cc): inference against nn.Conv2d
(training's outputs and gradients: tests/test_network.py), the build cache, and the fallback when the
kernels cannot be built."""
import itertools
import os
import re

import numpy as np
import pytest

import src  # noqa: F401
from tests.conftest import randomize, rel_err, requires_compiler

ms = pytest.importorskip("mindspore")

from src.device import init_context  # noqa: E402
from src.fused_cpu import FusedSRCNN  # noqa: E402
from src.kernel_build import KernelUnavailable, build_library  # noqa: E402
from src.srcnn import ARCHS, PADDINGS, SRCNN  # noqa: E402

init_context("CPU")


@requires_compiler
@pytest.mark.parametrize("arch,padding", list(itertools.product(ARCHS, PADDINGS)))
def test_fused_kernel_matches_conv2d(arch, padding, monkeypatch):
    rng = np.random.default_rng(5)
    # widths: the shipped 64/32, and channel counts that are not multiples of the kernel's vector blocks
    for n1, n2 in ((64, 32), (8, 4), (40, 24)):
        net = SRCNN(arch, n1=n1, n2=n2, padding=padding)
        randomize(net, n1 + n2, std=0.1)
        net.set_train(False)
        fused = FusedSRCNN(net)
        shapes = [(2, 1, 37, 29), (1, 1, 70, 41)] + ([(1, 1, 1, 1), (1, 1, 2, 3)] if padding != "valid" else [])
        for shape in shapes:
            x = ms.Tensor(rng.random(shape, dtype=np.float32))
            expected = net(x).asnumpy()
            for threads in ("1", "3"):  # rows split between threads, and not
                monkeypatch.setenv("SRCNN_CPU_THREADS", threads)
                got = fused(x).asnumpy()
                assert got.shape == expected.shape, (n1, n2, shape)
                assert rel_err(expected, got) <= 1e-5, (n1, n2, shape, threads)


@requires_compiler
def test_fused_kernel_is_built_once_per_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SRCNN_KERNEL_CACHE", str(tmp_path))
    path = build_library()
    assert os.path.dirname(os.path.dirname(path)) == str(tmp_path) and os.path.isfile(path)
    built = os.stat(path).st_mtime_ns
    assert build_library() == path and os.stat(path).st_mtime_ns == built  # cached, not rebuilt
    assert os.listdir(os.path.dirname(path)) == [os.path.basename(path)]  # no partial files left
    monkeypatch.setenv("MS_CUSTOM_AOT_WHITE_LIST", str(tmp_path))  # MindSpore's allow-list, honoured
    net = SRCNN("9-1-5", n1=8, n2=4, padding="zeros")
    x = ms.Tensor(np.random.default_rng(1).random((1, 1, 20, 20), dtype=np.float32))
    assert rel_err(net(x).asnumpy(), FusedSRCNN(net)(x).asnumpy()) <= 1e-5


@pytest.mark.parametrize("setting,reason", [({"CXX": "/nonexistent/c++"}, "no C++ compiler found"),
                                            ({"CXX": "false"}, "failed on"),
                                            ({"SRCNN_FUSED_CPU": "0"}, "SRCNN_FUSED_CPU=0"),
                                            ({"MS_CUSTOM_AOT_WHITE_LIST": "/nonexistent/allowed"},
                                             "outside MS_CUSTOM_AOT_WHITE_LIST")])
def test_without_the_kernel_inference_falls_back_to_the_gemm_graph(setting, reason, tmp_path, monkeypatch,
                                                                   capsys):
    from src.inference import Predictor
    from src.network import build_network
    from src.srcnn_gemm import SRCNNGemm, SRCNNGemmInference

    monkeypatch.setenv("SRCNN_KERNEL_CACHE", str(tmp_path))  # an empty cache: the build is attempted
    for key, value in setting.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(KernelUnavailable, match=re.escape(reason)):
        build_library()
    net = SRCNN("9-1-5", n1=8, n2=4, padding="replicate")
    randomize(net, 3)
    predictor = Predictor(net)
    assert isinstance(predictor.runner, SRCNNGemmInference)
    assert reason in capsys.readouterr().err
    lr_y = np.random.default_rng(4).random((23, 19)).astype(np.float32)
    assert rel_err(net(ms.Tensor(lr_y[None, None])).asnumpy()[0, 0], predictor(lr_y)) <= 1e-5
    assert isinstance(build_network("9-1-5", 8, 4, "replicate", "CPU", training=True), SRCNNGemm)
    assert "SRCNNGemm" in capsys.readouterr().err  # training says so too
