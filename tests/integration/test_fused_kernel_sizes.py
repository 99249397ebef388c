"""The fused kernel's training operators for kernel sizes the shipped archs do not use but the kernel admits
(odd, last layer up to 7: srcnn_fused.cc's last_weight_grad dispatches on it; layer 1 and 3's one-channel
convolutions), called through ctypes against the float64 SRCNN of tests/conftest.py. No MindSpore."""
import ctypes
import itertools
import platform

import numpy as np
import pytest

from tests.conftest import ALGO_TOLERANCE, rel_err, requires_compiler, srcnn_backward_float64, srcnn_float64


def _call(function, arrays):
    from src.model.cpu.kernel_build import entry_point_call

    return entry_point_call(function, arrays)()


def _padded(n):
    return (n + 15) // 16 * 16


@requires_compiler
@pytest.mark.parametrize("kernels,padding,algo", [
    (k, p, a) for k, p, a in itertools.product(((9, 5, 3), (9, 5, 7), (5, 3, 1), (3, 5, 5)),
                                               ("replicate", "zeros", "valid"), ("direct", "winograd"))
    if a == "direct" or k[1] == 5])
@pytest.mark.parametrize("march", ["native", "x86-64-v3", "x86-64"] if platform.machine() in ("x86_64", "AMD64")
                         else ["native"])
def test_training_operators_for_other_kernel_sizes(kernels, padding, algo, march, monkeypatch):
    """Also built for AVX2 and SSE2 CPUs (8- and 4-float vectors, their own register blocks)."""
    from src.model.cpu.kernel_build import build_library

    monkeypatch.setenv("SRCNN_CPU_ALGO", algo)
    if march != "native":
        monkeypatch.setenv("SRCNN_KERNEL_MARCH", march)
    library = ctypes.CDLL(build_library())
    k1, k2, k3 = kernels
    n1, n2, batch, size = 24, 16, 3, 23
    rng = np.random.default_rng(sum(kernels))
    shapes = {"conv1.weight": (n1, 1, k1, k1), "conv1.bias": (n1,), "conv2.weight": (n2, n1, k2, k2),
              "conv2.bias": (n2,), "conv3.weight": (1, n2, k3, k3), "conv3.bias": (1,)}
    weights = {name: rng.normal(0, 0.1, shape).astype(np.float32) for name, shape in shapes.items()}
    x = rng.random((batch, 1, size, size), dtype=np.float32)
    expected, inputs, pre = srcnn_float64(weights, x, padding)
    sizes = [inputs[1].shape[2] - (0 if padding == "valid" else k2 - 1),
             inputs[2].shape[2] - (0 if padding == "valid" else k3 - 1)]
    y = np.zeros(expected.shape, np.float32)
    a1 = np.zeros((batch, sizes[0], sizes[0], _padded(n1)), np.float32)
    a2 = np.zeros((batch, sizes[1], sizes[1], _padded(n2)), np.float32)
    params = [np.ascontiguousarray(weights[name]) for name in shapes]
    dy = rng.normal(0, 1, expected.shape).astype(np.float32)
    grads = [np.zeros_like(p) for p in params]
    for threads in ("1", "2"):
        monkeypatch.setenv("SRCNN_CPU_THREADS", threads)
        assert _call(getattr(library, f"srcnn_train_forward_{padding}"), [x, *params, y, a1, a2]) == 0
        assert rel_err(expected, y) <= ALGO_TOLERANCE[algo], (threads, "y")
        masks = [(a1[..., :n1] > 0).transpose(0, 3, 1, 2), (a2[..., :n2] > 0).transpose(0, 3, 1, 2)]
        want = srcnn_backward_float64(weights, inputs, masks, dy, padding)
        assert _call(getattr(library, f"srcnn_train_backward_{padding}"), [x, *params, a1, a2, dy, *grads]) == 0
        for name, w, g in zip(shapes, want, grads):
            assert rel_err(w, g) <= ALGO_TOLERANCE[algo], (threads, name)
