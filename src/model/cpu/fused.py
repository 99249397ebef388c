"""SRCNN on CPU as fused MindSpore operators: ``ops.Custom`` (func_type="aot") running the C++ kernels in
src/model/cpu/srcnn_fused.cc, built on first use with the system C++ compiler.

Why: MindSpore's CPU primitives run SRCNN as separate passes (im2col, GEMM, bias, ReLU, col2im) over
full-size activations (64 x H x W floats), which is memory-bound; the kernels keep the working set in the
cache and accumulate in registers (benchmarks/README.md: a 512x512 image in ~13 ms against ~32 ms for
onnxruntime and ~87 ms for the batched-matmul graph; the shipped recipe's training step in ~49 ms against
~120 ms). ``FusedSRCNNInference`` reads the nn.Conv2d Parameters of a plain ``SRCNN`` at every call;
``FusedSRCNNTrain`` (the CPU training network) is an SRCNN with the same Parameters. Every arch and padding
mode; outputs and gradients equal nn.Conv2d's to float32 rounding (tests/integration/test_fused_cpu.py,
tests/integration/test_network.py).

The library is built by src/model/cpu/kernel_build.py. Where it cannot be (no compiler, SRCNN_FUSED_CPU=0,
...), inference and training fall back to the batched-matmul formulation (src/model/cpu/gemm.py), with a
one-line note: src.model.network.pick_formulation decides. SRCNN_CPU_THREADS caps the kernels' threads
(default: the CPUs this process may use). SRCNN_CPU_ALGO picks the 5x5 hidden layer's algorithm:
``winograd`` (F(4x4, 5x5), fewer multiplications), ``direct`` (the reference) or ``auto`` (the default:
Winograd unless the layer's output is under 3 pixels high or wide); the kernel reads it at every call.
"""
import os

import mindspore as ms
import mindspore.ops as ops

from src.model.cpu.kernel_build import build_library
from src.model.srcnn import SRCNN, border, parse_arch
from src.utils.errors import UserError

ALGOS = ("auto", "direct", "winograd")


def check_cpu_algo():
    """SRCNN_CPU_ALGO, refused unless one of ALGOS (the kernel would treat a typo as 'auto')."""
    algo = os.environ.get("SRCNN_CPU_ALGO", "auto")
    if algo not in ALGOS:
        raise UserError(f"SRCNN_CPU_ALGO={algo!r}: expected one of {', '.join(ALGOS)}")
    return algo


class FusedSRCNNInference:
    """Callable like the network: x [N, 1, H, W] float32 Tensor -> SRCNN(x), computed by the fused kernel
    with ``net``'s current Parameters (so training updates are seen). Any image size, no compilation per
    shape: the operator runs eagerly (one operator, nothing for a graph to fuse)."""

    def __init__(self, net):
        check_cpu_algo()
        self.net = net
        self.library = build_library()
        shrink = 2 * border(net.arch) if net.padding == "valid" else 0

        def out_shape(x_shape, *_):
            return [x_shape[0], 1, x_shape[2] - shrink, x_shape[3] - shrink]

        self.op = ops.Custom(f"{self.library}:srcnn_forward_{net.padding}", out_shape=out_shape,
                             out_dtype=lambda x_dtype, *_: x_dtype, func_type="aot")
        self.min_size = shrink + 1

    def __call__(self, x):
        net = self.net
        if x.dtype != ms.float32:
            raise UserError(f"the fused CPU kernel takes float32 images, got {x.dtype}")
        if len(x.shape) != 4 or x.shape[1] != 1 or min(x.shape[2:]) < self.min_size:
            raise UserError(f"image batch of shape {tuple(x.shape)}: expected [N, 1, H, W] with H, W >= "
                            f"{self.min_size} for arch {net.arch} with padding={net.padding}")
        return self.op(x, net.conv1.weight, net.conv1.bias, net.conv2.weight, net.conv2.bias,
                       net.conv3.weight, net.conv3.bias)


def _padded_channels(n):
    """Channel counts inside the kernel: padded to a multiple of 16 (CPAD in the C++ source, which refuses
    activations of any other shape)."""
    return (n + 15) // 16 * 16


class FusedSRCNNTrain(SRCNN):
    """SRCNN (the same Parameters) whose forward and backward are the kernel's training operators: the CPU
    training network. The forward operator also returns both hidden activations (pixel-major, channels
    padded), which the backward operator takes with the output's gradient to return the six Parameter
    gradients; the image gets none (it needs none). Graph mode, static shapes, float32."""

    def __init__(self, arch="9-1-5", n1=64, n2=32, padding="replicate"):
        check_cpu_algo()
        super().__init__(arch, n1, n2, padding)
        library = build_library()
        kernels = parse_arch(arch)
        shrink = [k - 1 - 2 * pad for k, pad in zip(kernels, self.pads)]
        c1, c2 = _padded_channels(n1), _padded_channels(n2)

        def forward_shapes(x_shape, *_):
            batch, _, height, width = x_shape
            h1, w1 = height - shrink[0], width - shrink[0]
            h2, w2 = h1 - shrink[1], w1 - shrink[1]
            return [batch, 1, h2 - shrink[2], w2 - shrink[2]], [batch, h1, w1, c1], [batch, h2, w2, c2]

        backward = ops.Custom(f"{library}:srcnn_train_backward_{padding}",
                              out_shape=lambda x, w1, b1, w2, b2, w3, b3, *_: (w1, b1, w2, b2, w3, b3),
                              out_dtype=lambda x, *_: (x,) * 6, func_type="aot")
        zeros_like = ops.ZerosLike()

        def bprop(x, w1, b1, w2, b2, w3, b3, out, dout):
            grads = backward(x, w1, b1, w2, b2, w3, b3, out[1], out[2], dout[0])
            return (zeros_like(x),) + tuple(grads)

        self.fused = ops.Custom(f"{library}:srcnn_train_forward_{padding}", out_shape=forward_shapes,
                                out_dtype=lambda x, *_: (x, x, x), func_type="aot", bprop=bprop)

    def construct(self, x):
        return self.fused(x, self.conv1.weight, self.conv1.bias, self.conv2.weight, self.conv2.bias,
                          self.conv3.weight, self.conv3.bias)[0]
