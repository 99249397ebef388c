"""The fused CPU kernels (src/model/cpu/fused.py, src/model/cpu/srcnn_fused.cc): inference against nn.Conv2d
(training's outputs and gradients: tests/integration/test_network.py), the build cache, and the fallback when the
kernels cannot be built."""
import itertools
import os
import platform
import re

import numpy as np
import pytest

import src  # noqa: F401
from tests.conftest import (
    ALGO_TOLERANCE,
    assert_training_matches_conv2d,
    randomize,
    rel_err,
    requires_compiler,
    srcnn_backward_float64,
    srcnn_float64,
)

ms = pytest.importorskip("mindspore")

from src.model.checkpoint import PARAM_NAMES  # noqa: E402
from src.model.cpu import kernel_build  # noqa: E402
from src.model.cpu.fused import FusedSRCNNInference, FusedSRCNNTrain  # noqa: E402
from src.model.cpu.kernel_build import KernelUnavailable, build_library  # noqa: E402
from src.model.srcnn import ARCHS, PADDINGS, SRCNN  # noqa: E402
from src.model_utils.device import init_context  # noqa: E402
from src.utils.errors import UserError  # noqa: E402

init_context("CPU")


# every arch and padding by the direct algorithm; Winograd (the 5x5 hidden layer: 9-5-5) for every padding
INFERENCE_CASES = [(arch, padding, "direct") for arch, padding in itertools.product(ARCHS, PADDINGS)] + \
                  [("9-5-5", padding, "winograd") for padding in PADDINGS]


@requires_compiler
@pytest.mark.parametrize("arch,padding,algo", INFERENCE_CASES)
def test_fused_kernel_matches_conv2d(arch, padding, algo, monkeypatch):
    monkeypatch.setenv("SRCNN_CPU_ALGO", algo)
    rng = np.random.default_rng(5)
    # widths: the shipped 64/32, and channel counts that are not multiples of the kernel's vector blocks
    for n1, n2 in ((64, 32), (8, 4), (40, 24)):
        net = SRCNN(arch, n1=n1, n2=n2, padding=padding)
        randomize(net, n1 + n2, std=0.1)
        net.set_train(False)
        fused = FusedSRCNNInference(net)
        shapes = [(2, 1, 37, 29), (1, 1, 70, 41)] + ([(1, 1, 1, 1), (1, 1, 2, 3)] if padding != "valid" else [])
        for shape in shapes:
            x = ms.Tensor(rng.random(shape, dtype=np.float32))
            expected = net(x).asnumpy()
            for threads in ("1", "3"):  # rows split between threads, and not
                monkeypatch.setenv("SRCNN_CPU_THREADS", threads)
                got = fused(x).asnumpy()
                assert got.shape == expected.shape, (n1, n2, shape)
                assert rel_err(expected, got) <= ALGO_TOLERANCE[algo], (n1, n2, shape, threads)


@requires_compiler
@pytest.mark.parametrize("arch,padding,algo", list(itertools.product(ARCHS, PADDINGS, ("direct", "winograd"))))
def test_training_operators_match_float64_at_the_shipped_width(arch, padding, algo, monkeypatch):
    """The training operators at n1=64, n2=32 against a float64 numpy SRCNN: the forward's output and hidden
    activations; the backward's six gradients for a random output gradient, given the forward's activations
    (the float64 backward takes its ReLU derivatives from them too). Comparing whole training steps with
    nn.Conv2d at this width would test the seeds: among ~10^5 pre-activations one lies within float32 rounding
    of the ReLU's kink (~1e-6 of the largest), where any two float32 implementations may disagree on its
    derivative and a gradient changes by ~1e-3."""
    from mindspore import ops

    monkeypatch.setenv("SRCNN_CPU_ALGO", algo)
    tolerance = ALGO_TOLERANCE[algo]
    n1, n2 = 64, 32
    net = SRCNN(arch, n1=n1, n2=n2, padding=padding)
    randomize(net, 41)
    weights = {p.name: p.asnumpy() for p in net.trainable_params()}
    rng = np.random.default_rng(42)
    x = rng.random((2, 1, 23, 21), dtype=np.float32)
    y64, inputs, pre = srcnn_float64(weights, x, padding)
    library = build_library()
    sizes = [z.shape[2:] for z in pre]
    forward = ops.Custom(f"{library}:srcnn_train_forward_{padding}", func_type="aot",
                         out_shape=lambda *_: (list(y64.shape), [2, *sizes[0], n1], [2, *sizes[1], n2]),
                         out_dtype=lambda x_dtype, *_: (x_dtype,) * 3)
    backward = ops.Custom(f"{library}:srcnn_train_backward_{padding}", func_type="aot",
                          out_shape=lambda x, w1, b1, w2, b2, w3, b3, *_: (w1, b1, w2, b2, w3, b3),
                          out_dtype=lambda x_dtype, *_: (x_dtype,) * 6)
    params = [ms.Tensor(weights[name]) for name in PARAM_NAMES]
    y, a1, a2 = forward(ms.Tensor(x), *params)
    assert rel_err(y64, y.asnumpy()) <= tolerance
    activations = [a.asnumpy().transpose(0, 3, 1, 2) for a in (a1, a2)]  # pixel-major -> NCHW (64, 32: unpadded)
    for z, a in zip(pre, activations):
        assert rel_err(np.maximum(z, 0), a) <= tolerance
    dy = rng.normal(size=y64.shape).astype(np.float32)
    grads = backward(ms.Tensor(x), *params, a1, a2, ms.Tensor(dy))
    expected = srcnn_backward_float64(weights, inputs, [a > 0 for a in activations], dy, padding)
    for name, want, got in zip(PARAM_NAMES, expected, grads):
        assert rel_err(want, got.asnumpy()) <= tolerance, name


@requires_compiler
def test_fused_kernel_is_built_once_per_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SRCNN_KERNEL_CACHE", str(tmp_path))
    path = build_library()
    assert os.path.dirname(os.path.dirname(path)) == str(tmp_path) and os.path.isfile(path)
    built = os.stat(path).st_mtime_ns
    assert build_library() == path and os.stat(path).st_mtime_ns == built  # cached, not rebuilt
    assert os.listdir(os.path.dirname(path)) == [os.path.basename(path)]  # no partial files left
    assert os.stat(path).st_mode & 0o055 == 0o055  # group and others may load it from a shared cache
    monkeypatch.setenv("MS_CUSTOM_AOT_WHITE_LIST", str(tmp_path))  # MindSpore's allow-list, honoured
    net = SRCNN("9-1-5", n1=8, n2=4, padding="zeros")
    x = ms.Tensor(np.random.default_rng(1).random((1, 1, 20, 20), dtype=np.float32))
    assert rel_err(net(x).asnumpy(), FusedSRCNNInference(net)(x).asnumpy()) <= 1e-5


@pytest.mark.parametrize("setting,reason", [({"CXX": "/nonexistent/c++"}, "no C++ compiler found"),
                                            ({"CXX": "false"}, "failed on"),
                                            ({"SRCNN_FUSED_CPU": "0"}, "SRCNN_FUSED_CPU=0"),
                                            ({"MS_CUSTOM_AOT_WHITE_LIST": "/nonexistent/allowed"},
                                             "outside MS_CUSTOM_AOT_WHITE_LIST")])
def test_without_the_kernel_inference_falls_back_to_the_gemm_graph(setting, reason, tmp_path, monkeypatch,
                                                                   capsys):
    from src.infer.mindspore_backend import MindSporePredictor
    from src.model.cpu.gemm import GemmSRCNNInference, GemmSRCNNTrain
    from src.model.network import build_network

    monkeypatch.setenv("SRCNN_KERNEL_CACHE", str(tmp_path))  # an empty cache: the build is attempted
    monkeypatch.setattr(kernel_build, "_NOTED", set())  # the note is printed once per process
    for key, value in setting.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(KernelUnavailable, match=re.escape(reason)):
        build_library()
    net = SRCNN("9-1-5", n1=8, n2=4, padding="replicate")
    randomize(net, 3)
    predictor = MindSporePredictor(net)
    assert isinstance(predictor.runner, GemmSRCNNInference)
    assert reason in capsys.readouterr().err
    lr_y = np.random.default_rng(4).random((23, 19)).astype(np.float32)
    assert rel_err(net(ms.Tensor(lr_y[None, None])).asnumpy()[0, 0], predictor(lr_y)) <= 1e-5
    assert isinstance(build_network("9-1-5", 8, 4, "replicate", "CPU", training=True), GemmSRCNNTrain)
    assert "GemmSRCNNTrain" in capsys.readouterr().err  # training says so too


@requires_compiler
@pytest.mark.parametrize("padding,algo", list(itertools.product(PADDINGS, ("direct", "winograd"))))
def test_fused_training_on_tiny_images_and_any_thread_count(padding, algo, monkeypatch):
    """Replicate padding's gradient folded onto 1-pixel-wide images, images split between 1 or 2 threads;
    Winograd on partial tiles (sizes not multiples of 4, images smaller than one tile)."""
    monkeypatch.setenv("SRCNN_CPU_ALGO", algo)
    shapes = [(3, 1, 17, 20), (1, 1, 18, 17)] if padding == "valid" else [(3, 1, 1, 1), (2, 1, 2, 5), (1, 1, 9, 1)]
    if algo == "winograd":  # more than one tile, none whole
        shapes += [(2, 1, 27, 23)] if padding == "valid" else [(2, 1, 11, 6)]
    for threads in ("1", "2"):
        monkeypatch.setenv("SRCNN_CPU_THREADS", threads)
        assert_training_matches_conv2d(FusedSRCNNTrain, "9-5-5", padding, 8, 4, shapes, weight_seed=int(threads),
                                       input_seed=int(threads), std=0.1, tolerance=ALGO_TOLERANCE[algo])


@requires_compiler
@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86-64 targets")
@pytest.mark.parametrize("march", ["x86-64-v3", "x86-64"])
def test_fused_kernels_built_for_avx2_and_sse2_cpus(march, tmp_path, monkeypatch):
    """The same source on CPUs without AVX-512 (8- and 4-float vectors): inference and training, direct and
    Winograd."""
    monkeypatch.setenv("SRCNN_KERNEL_CACHE", str(tmp_path))
    monkeypatch.setenv("SRCNN_KERNEL_MARCH", march)
    net = SRCNN("9-5-5", n1=40, n2=24, padding="replicate")
    randomize(net, 21, std=0.1)
    fused = FusedSRCNNInference(net)
    assert fused.library.startswith(str(tmp_path))
    x = ms.Tensor(np.random.default_rng(22).random((2, 1, 35, 23), dtype=np.float32))
    for algo, tolerance in ALGO_TOLERANCE.items():
        monkeypatch.setenv("SRCNN_CPU_ALGO", algo)
        assert rel_err(net(x).asnumpy(), fused(x).asnumpy()) <= tolerance, algo
    monkeypatch.setenv("SRCNN_CPU_ALGO", "direct")
    assert_training_matches_conv2d(FusedSRCNNTrain, "9-3-5", "zeros", 40, 24, [(3, 1, 21, 26)], weight_seed=23,
                                   input_seed=23, std=0.1)
    monkeypatch.setenv("SRCNN_CPU_ALGO", "winograd")
    assert_training_matches_conv2d(FusedSRCNNTrain, "9-5-5", "valid", 40, 24, [(2, 1, 27, 30)], weight_seed=24,
                                   input_seed=24, std=0.1, tolerance=ALGO_TOLERANCE["winograd"])


@requires_compiler
def test_bad_inputs_are_refused_not_read_out_of_bounds():
    net = SRCNN("9-1-5", n1=8, n2=4, padding="valid")
    fused = FusedSRCNNInference(net)
    with pytest.raises(UserError, match=r"H, W >= 13 for arch 9-1-5 with padding=valid"):
        fused(ms.Tensor(np.zeros((1, 1, 12, 30), np.float32)))
    with pytest.raises(UserError, match="float32"):
        fused(ms.Tensor(np.zeros((1, 1, 20, 20), np.float16)))
    # the kernel itself checks every shape: activations that do not match the weights are an error code
    from mindspore import ops

    backward = ops.Custom(f"{fused.library}:srcnn_train_backward_valid",
                          out_shape=lambda x, w1, b1, w2, b2, w3, b3, *_: (w1, b1, w2, b2, w3, b3),
                          out_dtype=lambda x, *_: (x,) * 6, func_type="aot")
    x = ms.Tensor(np.zeros((1, 1, 20, 20), np.float32))
    a1_unpadded = ms.Tensor(np.zeros((1, 12, 12, 8), np.float32))  # channels not padded to 16
    a2 = ms.Tensor(np.zeros((1, 12, 12, 16), np.float32))
    dy = ms.Tensor(np.zeros((1, 1, 8, 8), np.float32))
    weights = [net.conv1.weight, net.conv1.bias, net.conv2.weight, net.conv2.bias, net.conv3.weight,
               net.conv3.bias]
    with pytest.raises(RuntimeError, match="is 4"):
        backward(x, *weights, a1_unpadded, a2, dy)[0].asnumpy()


@requires_compiler
def test_algorithm_setting(monkeypatch):
    """SRCNN_CPU_ALGO: auto picks Winograd for a 5x5 layer's outputs of 3 pixels or more (its results are
    Winograd's, not direct's), winograd leaves layers that are not 5x5 direct, and a typo is a user error."""
    net = SRCNN("9-5-5", n1=16, n2=16, padding="zeros")
    randomize(net, 31, std=0.1)
    x = ms.Tensor(np.random.default_rng(32).random((1, 1, 19, 22), dtype=np.float32))
    fused = FusedSRCNNInference(net)
    outputs = {}
    for algo in ("direct", "winograd", "auto"):
        monkeypatch.setenv("SRCNN_CPU_ALGO", algo)
        outputs[algo] = fused(x).asnumpy()
    assert not np.array_equal(outputs["direct"], outputs["winograd"])
    np.testing.assert_array_equal(outputs["auto"], outputs["winograd"])
    tiny = ms.Tensor(np.random.default_rng(33).random((1, 1, 2, 9), dtype=np.float32))  # 2 rows: direct
    outputs = {}
    for algo in ("direct", "auto"):
        monkeypatch.setenv("SRCNN_CPU_ALGO", algo)
        outputs[algo] = fused(tiny).asnumpy()
    np.testing.assert_array_equal(outputs["auto"], outputs["direct"])
    net915 = SRCNN("9-1-5", n1=16, n2=16, padding="zeros")
    fused915 = FusedSRCNNInference(net915)
    monkeypatch.setenv("SRCNN_CPU_ALGO", "winograd")
    winograd = fused915(x).asnumpy()
    monkeypatch.setenv("SRCNN_CPU_ALGO", "direct")
    np.testing.assert_array_equal(winograd, fused915(x).asnumpy())
    monkeypatch.setenv("SRCNN_CPU_ALGO", "fast")
    with pytest.raises(UserError, match="SRCNN_CPU_ALGO='fast': expected one of auto, direct, winograd"):
        FusedSRCNNInference(net)
    with pytest.raises(UserError, match="SRCNN_CPU_ALGO"):
        FusedSRCNNTrain("9-5-5", n1=8, n2=4)
