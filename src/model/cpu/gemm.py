"""SRCNN as batched matrix products: MindSpore's CPU backend without the fused kernel (src/model/cpu/fused.py), i.e.
where no C++ compiler is available, under mixed precision, or with SRCNN_FUSED_CPU=0.

oneDNN (MindSpore's CPU backend) runs SRCNN's convolutions with plain NCHW layouts as im2col + GEMM, poorly
for the 1-channel first and last layers (their weight gradients dominate a step) and slowly for the 64 -> 32
channel 3x3/5x5 middle layer. Here every layer is a batched matrix product on activations kept as
[N, C, H*W] (NCHW, so no transposes anywhere), with weights broadcast over the batch:

- layer 1 (1 -> n1, f1 x f1): im2col ``cols`` [N, f1*f1, H*W] (Im2Col; for replicate padding two Gathers with
  precomputed indices), then W1 [n1, f1*f1] @ cols. The image needs no gradient, so im2col runs once.
- layer 2: 1x1 is W2 @ h. For f2 x f2 kernels, im2col along x only (unfold with a 1 x f2 kernel: n1*f2 rows)
  and one "tap plane" per output channel and kernel row (W2 as [n2*f2, n1*f2]), summed over the kernel rows
  by col2im with an f2 x 1 kernel: about a fifth of the memory traffic of a full im2col or full tap planes.
- layer 3 (n2 -> 1, f3 x f3): one plane per kernel tap (W3 as [f3*f3, n2] @ h) and col2im adds the planes
  shifted by their taps.
col2im (``TapSum``) has a hand-written backward (im2col of the gradient): MindSpore's generated gradient of
Col2Im is ~50x slower than im2col. So do the products (``BatchedMatMul``: the generated gradient of a
broadcast matmul transposes its operands) and the bias (``BiasAdd``: BiasAddGrad, a reduction, is ~3x
slower than a product with a ones vector).

Padding: col2im's own cropping/zero padding gives 'valid' and 'zeros'. Replicate padding of a per-pixel map
is the map of the replicate-padded input, so replicated borders are computed by extending layer 1's grid
(the Gather indices repeat the edge pixels' columns): by p2 + p3 for 9-1-5 (no padding op at all), by p2 when
layer 2 is spatial, whose output planes for layer 3 are then padded by concatenation (``ReplicatePad``).

The parameters are SRCNN's own nn.Conv2d parameters, so checkpoints are interchangeable; outputs and all
gradients match nn.Conv2d to float32 rounding (tests/integration/test_network.py). No convolution primitive is used, so
the formulation runs with oneDNN's AVX-512 GEMMs (src/__init__.py allows them; plain NCHW convolutions
would get reference kernels under AVX-512; see benchmarks/README.md).

One implementation, ``GemmLayers`` (the layers; weights as arguments), serves both uses: ``GemmSRCNNTrain``
(the fallback CPU training network, static shapes: replicated borders by precomputed Gather indices) and
``GemmSRCNNInference`` (inference of a plain ``SRCNN`` with its own Parameters, dynamic shapes: one compilation
for every image size, replicated borders by concatenation; src.infer.mindspore_backend.MindSporePredictor's fallback on CPU).
benchmarks/gemm_per_shape.py compiles GemmLayers per image size for inference.
"""
import mindspore as ms
import mindspore.nn as nn
import mindspore.ops as ops
import numpy as np

from src.model.srcnn import SRCNN, parse_arch


def _clamp_grid(size, ext):
    """Positions -ext .. size + ext - 1 clamped into the image: a replicate-extended axis."""
    return np.clip(np.arange(size + 2 * ext) - ext, 0, size - 1)


@ops.constexpr
def _replicate_taps_index(size, k, ext):
    """int32 [k, size + 2*ext]: along one axis of length `size`, the source position of kernel tap i at
    point y of the grid extended by `ext` replicated pixels per side: c(c(y - ext) + i - p), c = clamp into
    [0, size), p = (k - 1) // 2. (Replicate padding for the convolution, then the extension.)"""
    rows = _clamp_grid(size, ext)[None, :] + np.arange(k)[:, None] - (k - 1) // 2
    return ms.Tensor(np.clip(rows, 0, size - 1).astype(np.int32))


@ops.constexpr
def _ones_column(batch, length, dtype):
    return ms.Tensor(np.ones((batch, length, 1), np.float32), dtype)


@ops.constexpr
def _size_tensor(height, width):
    return ms.Tensor([height, width], ms.int32)



def _size(height, width):
    """A dynamic output size as the int32 [2] tensor Col2Im takes."""
    return ops.stack([ops.scalar_to_tensor(height, ms.int32), ops.scalar_to_tensor(width, ms.int32)])


class BatchedMatMul(nn.Cell):
    """w [M, K] @ x [N, K, L] -> [N, M, L] (w broadcast over the batch), with a backward of two batched
    products: dx = w^T @ dout, dw = sum over the batch of dout @ x^T."""

    def __init__(self):
        super().__init__()
        self.matmul = ops.BatchMatMul()
        self.matmul_ta = ops.BatchMatMul(transpose_a=True)
        self.matmul_tb = ops.BatchMatMul(transpose_b=True)

    def construct(self, w, x):
        return self.matmul(ops.broadcast_to(w, (x.shape[0],) + w.shape), x)

    def bprop(self, w, x, out, dout):
        dx = self.matmul_ta(ops.broadcast_to(w, (x.shape[0],) + w.shape), dout)
        return self.matmul_tb(dout, x).sum(0), dx


class BiasAdd(nn.Cell):
    """x [N, C, L] + b [C]; the bias gradient as a product with a ones vector (~3x faster than BiasAddGrad)."""

    def __init__(self):
        super().__init__()
        self.matmul = ops.BatchMatMul()

    def construct(self, x, b):
        return ops.bias_add(x, b)

    def bprop(self, x, b, out, dout):
        batch, channels, length = dout.shape
        db = self.matmul(dout, _ones_column(batch, length, dout.dtype)).reshape(batch, channels).sum(0)
        return dout, db


class Unfold(nn.Cell):
    """im2col: [N, C, H, W] -> [N, C*ky*kx, L], as ops.unfold. The primitive is made once here: ops.unfold
    makes it inside the graph, which failed to compile in some hand-written backwards ("func graph is
    empty")."""

    def __init__(self, kernel, padding):
        super().__init__()
        self.im2col = ops.operations.Im2Col(ksizes=kernel, strides=1, dilations=1, pads=padding)

    def construct(self, x):
        out = self.im2col(x)
        return out.reshape(out.shape[0], -1, out.shape[3])


class TapSum(nn.Cell):
    """col2im: planes [N, C*ky*kx, H*W] -> [N, C, H + ky - 1 - 2*qy, W + kx - 1 - 2*qx], each output pixel the
    sum of its ky x kx taps' planes (taps reversed: col2im scatters where a convolution gathers), with qy/qx
    pixels cropped per side (q = k - 1: a 'valid' convolution; q = k - 1 - p: zero padding by p). The
    backward is im2col of the gradient. ``dynamic``: H, W known only when the graph runs."""

    def __init__(self, channels, kernel, crop, dynamic=False):
        super().__init__()
        self.channels, self.kernel, self.crop, self.dynamic = channels, kernel, crop, dynamic
        self.col2im = ops.operations.Col2Im(kernel_size=kernel, padding=crop)
        self.im2col = Unfold(kernel, crop)

    def out_size(self, height, width):
        (ky, kx), (qy, qx) = self.kernel, self.crop
        return height + ky - 1 - 2 * qy, width + kx - 1 - 2 * qx

    def construct(self, planes, height, width):
        ky, kx = self.kernel
        out_height, out_width = self.out_size(height, width)
        size = _size(out_height, out_width) if self.dynamic else _size_tensor(out_height, out_width)
        return self.col2im(planes.reshape(planes.shape[0], self.channels, ky * kx, -1), size)

    def bprop(self, planes, height, width, out, dout):
        return self.im2col(dout), 0, 0


class ReplicatePad(nn.Cell):
    """[N, C, H, W] -> [N, C, H + 2p, W + 2p], edges repeated (by concatenation: contiguous copies); the
    backward adds each repeated edge's gradient back onto the edge (a Gather's generated backward, a
    scatter-add, and PadV3's are several times slower)."""

    def __init__(self, p):
        super().__init__()
        self.p = p

    def construct(self, x):
        return _replicate_pad(x, self.p)

    def bprop(self, x, out, dout):
        return (_fold_edges(_fold_edges(dout, self.p, 3), self.p, 2),)


def _replicate_pad(x, p):
    """[N, C, H, W] -> [N, C, H + 2p, W + 2p], edges repeated, by concatenation (contiguous copies; PadV3,
    behind ops.pad, is several times slower on CPU). Any H, W >= 1; dynamic shapes."""
    top, bottom = x[:, :, :1], x[:, :, -1:]
    x = ops.concat([top] * p + [x] + [bottom] * p, 2)
    left, right = x[:, :, :, :1], x[:, :, :, -1:]
    return ops.concat([left] * p + [x] + [right] * p, 3)


def _fold_edges(grad, p, axis):
    """The adjoint of repeating the first and last entries p times along `axis` (2 or 3)."""
    size = grad.shape[axis] - 2 * p
    if size == 1:
        return grad.sum(axis, keepdims=True)
    first = grad[:, :, :p + 1] if axis == 2 else grad[:, :, :, :p + 1]
    middle = grad[:, :, p + 1:p + size - 1] if axis == 2 else grad[:, :, :, p + 1:p + size - 1]
    last = grad[:, :, p + size - 1:] if axis == 2 else grad[:, :, :, p + size - 1:]
    return ops.concat([first.sum(axis, keepdims=True), middle, last.sum(axis, keepdims=True)], axis)


class GemmLayers(nn.Cell):
    """The three layers as batched products; no Parameters of its own: the weights are arguments
    (``construct(x, w1, b1, w2, b2, w3, b3)``, nn.Conv2d shapes). Static shapes (``dynamic=False``:
    training, and inference compiled per image size): replicate padding by extending layer 1's grid with
    precomputed Gather indices. ``dynamic=True`` (one compilation for every image size, where no index can be
    precomputed): replicate padding by concatenation before each layer that needs it."""

    def __init__(self, arch="9-1-5", n1=64, n2=32, padding="replicate", dynamic=False):
        super().__init__()
        f1, f2, f3 = self.f1, self.f2, self.f3 = parse_arch(arch)
        self.n1, self.n2, self.padding, self.dynamic = n1, n2, padding, dynamic
        p1, p2, p3 = (f1 - 1) // 2, (f2 - 1) // 2, (f3 - 1) // 2
        zeros, replicate = padding == "zeros", padding == "replicate"
        self.gather1 = replicate and not dynamic
        self.pad_input1 = p1 if replicate and dynamic else 0
        self.pad_input2 = p2 if replicate and dynamic and f2 > 1 else 0
        # static replicate: layer 1's grid extended by the padding of the per-pixel layers that follow it
        self.ext = (p2 + p3 if f2 == 1 else p2) if self.gather1 else 0
        self.pad_planes3 = p3 if replicate and (dynamic or f2 > 1) else 0
        self.replicate_pad3 = ReplicatePad(p3)
        self.pad2_x = p2 if zeros else 0  # zero padding of layer 2 along x, in its im2col
        self.matmul = BatchedMatMul()
        self.bias_add = BiasAdd()
        self.relu = nn.ReLU()
        self.unfold1 = Unfold((f1, f1), (p1, p1) if zeros else (0, 0))
        self.unfold2 = Unfold((1, f2), (0, self.pad2_x))
        self.tap_sum2 = TapSum(n2, (f2, 1), (f2 - 1 - p2 if zeros else f2 - 1, 0), dynamic)
        self.tap_sum3 = TapSum(1, (f3, f3), (f3 - 1 - p3,) * 2 if zeros else (f3 - 1,) * 2, dynamic)

    def _layer1_cols(self, x):
        """im2col of the (padded) image: ([N, f1*f1, Hg*Wg], Hg, Wg)."""
        batch, _, height, width = x.shape
        f1 = self.f1
        if self.gather1:
            # separable: the small gather of columns (per pixel), then whole rows of the grid (contiguous
            # runs, ~2x faster than one per-pixel gather of the k*k-times larger result). Taps come out
            # ordered (j, i); construct transposes W1 to match.
            ext = self.ext
            cols = ops.gather(x.reshape(batch, height, width), _replicate_taps_index(width, f1, ext), 2)
            cols = ops.gather(cols.transpose(0, 2, 1, 3), _replicate_taps_index(height, f1, ext), 2)
            return cols.reshape(batch, f1 * f1, -1), height + 2 * ext, width + 2 * ext
        if self.pad_input1:
            x = _replicate_pad(x, self.pad_input1)
        if self.padding == "zeros":
            return self.unfold1(x), height, width
        return self.unfold1(x), x.shape[2] - f1 + 1, x.shape[3] - f1 + 1

    def construct(self, x, w1, b1, w2, b2, w3, b3):
        batch = x.shape[0]
        f1, f2, f3, n1, n2 = self.f1, self.f2, self.f3, self.n1, self.n2
        cols, height, width = self._layer1_cols(x)
        if self.gather1:
            w1 = w1.reshape(n1, f1, f1).transpose(0, 2, 1)  # taps (j, i), as _layer1_cols gathers them
        h = self.relu(self.bias_add(self.matmul(w1.reshape(n1, f1 * f1), cols), b1))
        if f2 == 1:
            h = self.bias_add(self.matmul(w2.reshape(n2, n1), h), b2)
        else:
            # im2col along x: [N, n1*f2, Hg*Wx] (row (c, j)); planes per (output channel, kernel row i reversed)
            h = h.reshape(batch, n1, height, width)
            if self.pad_input2:
                h = _replicate_pad(h, self.pad_input2)
                height, width = height + 2 * self.pad_input2, width + 2 * self.pad_input2
            cols2 = self.unfold2(h)
            width = width + 2 * self.pad2_x - f2 + 1
            w2 = ops.flip(w2, (2,)).transpose(0, 2, 1, 3).reshape(n2 * f2, n1 * f2)
            planes = self.matmul(w2, cols2)
            h = self.tap_sum2(planes, height, width)
            height, width = self.tap_sum2.out_size(height, width)
            h = self.bias_add(h.reshape(batch, n2, -1), b2)
        h = self.relu(h)
        # layer 3: one plane per tap, taps reversed
        w3 = ops.flip(w3.reshape(n2, f3 * f3), (1,)).transpose(1, 0)
        planes = self.matmul(w3, h)
        if self.pad_planes3:
            p = self.pad_planes3
            planes = self.replicate_pad3(planes.reshape(batch, f3 * f3, height, width)).reshape(batch, f3 * f3, -1)
            height, width = height + 2 * p, width + 2 * p
        out = self.tap_sum3(planes, height, width)
        return out + b3.reshape(1, 1, 1, 1)


class GemmSRCNNTrain(SRCNN):
    """SRCNN (same Parameters) computed by GemmLayers: the fallback CPU training network. Static shapes."""

    def __init__(self, arch="9-1-5", n1=64, n2=32, padding="replicate"):
        super().__init__(arch, n1, n2, padding)
        self.layers = GemmLayers(arch, n1, n2, padding)

    def construct(self, x):
        # the Parameters cast to the activations' dtype: an explicit Cast, whose gradient returns to float32
        # under mixed precision (O2 casts a hand-written-backward cell's inputs without one)
        dtype = x.dtype
        return self.layers(x, self.conv1.weight.astype(dtype), self.conv1.bias.astype(dtype),
                           self.conv2.weight.astype(dtype), self.conv2.bias.astype(dtype),
                           self.conv3.weight.astype(dtype), self.conv3.bias.astype(dtype))


class GemmSRCNNInference(nn.Cell):
    """Inference of a plain ``SRCNN`` (its own Parameters, shared, not copied, read at every call) by
    GemmLayers with dynamic shapes: one compilation serves every image size. 2-5x faster than nn.Conv2d on
    CPU for a 512x512 image: oneDNN's 1-output-channel 5x5 convolution alone takes longer than this whole
    network."""

    def __init__(self, net, dynamic=True):
        super().__init__(auto_prefix=False)  # keep the Parameters' names: they stay net's
        self.net = net
        self.arch, self.n1, self.n2, self.padding = net.arch, net.n1, net.n2, net.padding
        self.layers = GemmLayers(net.arch, net.n1, net.n2, net.padding, dynamic=dynamic)
        self.set_train(False)
        if dynamic:
            self.set_inputs(ms.Tensor(shape=[None, 1, None, None], dtype=ms.float32))

    def construct(self, x):
        net = self.net
        return self.layers(x, net.conv1.weight, net.conv1.bias, net.conv2.weight, net.conv2.bias,
                           net.conv3.weight, net.conv3.bias)
