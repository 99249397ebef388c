"""SRCNN (Dong et al., TPAMI 2016): three convolutions on the bicubic-upscaled Y channel."""
import mindspore.nn as nn
import mindspore.ops as ops

from src.model.arch import ARCHS, PADDINGS, border, parse_arch  # noqa: F401  (re-exported)


class SRCNN(nn.Cell):
    """Plain nn.Conv2d formulation. `padding`: 'replicate' (the authors' MATLAB test code), 'zeros', or
    'valid' (output smaller by 2 * border(arch)). Parameters: conv{1,2,3}.weight/.bias, MindSpore's default
    (He-uniform, as PyTorch's) init."""

    def __init__(self, arch="9-1-5", n1=64, n2=32, padding="replicate"):
        super().__init__()
        if padding not in PADDINGS:
            raise ValueError(f"padding must be one of {', '.join(PADDINGS)}, got {padding!r}")
        f1, f2, f3 = parse_arch(arch)
        self.arch, self.n1, self.n2, self.padding = arch, n1, n2, padding
        self.conv1 = nn.Conv2d(1, n1, f1, pad_mode="valid", has_bias=True)
        self.conv2 = nn.Conv2d(n1, n2, f2, pad_mode="valid", has_bias=True)
        self.conv3 = nn.Conv2d(n2, 1, f3, pad_mode="valid", has_bias=True)
        self.relu = nn.ReLU()
        self.pads = [(k - 1) // 2 if padding != "valid" else 0 for k in (f1, f2, f3)]
        self.pad_mode = "replicate" if padding == "replicate" else "constant"

    def _pad(self, x, p):
        if p == 0:
            return x
        return ops.pad(x, (p, p, p, p), mode=self.pad_mode)

    def construct(self, x):
        x = self.relu(self.conv1(self._pad(x, self.pads[0])))
        x = self.relu(self.conv2(self._pad(x, self.pads[1])))
        return self.conv3(self._pad(x, self.pads[2]))
