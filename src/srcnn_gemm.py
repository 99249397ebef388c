"""SRCNN as large matrix products: the fast formulation for MindSpore's CPU backend.

oneDNN runs convolutions with 1 input or 1 output channel (SRCNN's first and last layers) as poorly shaped
GEMMs, and their weight gradients dominate a training step. Here activations live channel-first as
[C, N*H*W], so each of those layers becomes one well-shaped matmul:
- layer 1 (1 -> n1, f1 x f1): im2col (ops.unfold) gives [f1*f1, N*H*W]; then W1 [n1, f1*f1] @ cols;
- layer 2: 1x1 is a plain matmul; larger kernels use nn.Conv2d (n1 -> n2 channels is a good shape for it);
- layer 3 (n2 -> 1, f3 x f3): W3 as [f3*f3, n2] @ h gives one plane per kernel tap, and col2im (TapSum)
  adds the planes shifted by their taps. Padding commutes with a per-pixel matmul, so the planes are
  padded instead of the n2-channel input.
The parameters are SRCNN's own nn.Conv2d parameters, so checkpoints are interchangeable.
"""
import mindspore as ms
import mindspore.nn as nn
import mindspore.ops as ops

from src.srcnn import SRCNN, parse_arch


class TapSum(nn.Cell):
    """out[n, y, x] = sum over taps (i, j) of planes[k*k-1 - (i*k+j), n, y+i, x+j]: a k x k convolution's
    gather, for planes computed with reversed taps. The batch is folded as one tall image: windows that
    straddle two images only produce rows that are cropped away. The backward is im2col, given explicitly
    because MindSpore's generated gradient of col2im is ~50x slower than ops.unfold."""

    def __init__(self, k):
        super().__init__()
        self.k = k

    def construct(self, planes):
        taps, batch, height, width = planes.shape
        k = self.k
        size = ms.Tensor([batch * height + k - 1, width + k - 1], ms.int32)
        tall = ops.fold(planes.reshape(1, taps, batch * height * width), size, k)
        tall = tall[:, :, k - 1:k - 1 + batch * height, :].reshape(batch, 1, height, width + k - 1)
        return tall[:, :, :height - k + 1, k - 1:width]

    def bprop(self, planes, out, dout):
        taps, batch, height, width = planes.shape
        k = self.k
        # scatter dout back onto the tall image (zeros where the forward cropped), then im2col
        grad = ops.pad(dout, (k - 1, k - 1, 0, k - 1)).reshape(1, 1, batch * height, width + k - 1)
        grad = ops.pad(grad, (0, 0, k - 1, 0))
        cols = ops.unfold(grad, k)
        return (cols.reshape(taps, batch, height, width),)


class SRCNNGemm(SRCNN):
    def __init__(self, arch="9-1-5", n1=64, n2=32, padding="replicate"):
        super().__init__(arch, n1, n2, padding)
        self.f1, self.f2, self.f3 = parse_arch(arch)
        self.tap_sum = TapSum(self.f3)

    def construct(self, x):
        batch = x.shape[0]
        f1, f3 = self.f1, self.f3
        # layer 1: [N, 1, H, W] -> [f1*f1, N*H1*W1] -> [n1, N*H1*W1]
        x = self._pad(x, self.pads[0])
        height, width = x.shape[2] - f1 + 1, x.shape[3] - f1 + 1
        cols = ops.unfold(x, f1).transpose(1, 0, 2).reshape(f1 * f1, -1)
        h = ops.matmul(self.conv1.weight.reshape(self.n1, f1 * f1), cols) + self.conv1.bias.reshape(-1, 1)
        h = self.relu(h)
        # layer 2
        if self.f2 == 1:
            h = ops.matmul(self.conv2.weight.reshape(self.n2, self.n1), h) + self.conv2.bias.reshape(-1, 1)
        else:
            h = h.reshape(self.n1, batch, height, width).transpose(1, 0, 2, 3)
            h = self.conv2(self._pad(h, self.pads[1]))
            height, width = h.shape[2], h.shape[3]
            h = h.transpose(1, 0, 2, 3).reshape(self.n2, -1)
        h = self.relu(h)
        # layer 3: one plane per tap (taps reversed: col2im scatters where the convolution gathers)
        w3 = ops.flip(self.conv3.weight.reshape(self.n2, f3 * f3), (1,)).transpose(1, 0)
        planes = ops.matmul(w3, h).reshape(f3 * f3, batch, height, width)
        out = self.tap_sum(self._pad(planes, self.pads[2]))
        return out + self.conv3.bias.reshape(1, 1, 1, 1)
