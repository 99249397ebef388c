"""Running a trained SRCNN on whole Y images, optionally in overlapping tiles (bounded memory)."""
import numpy as np

from src.srcnn import border


def tile_spans(length, tile, margin):
    """[(start, stop, keep_start, keep_stop)]: windows of `tile` pixels plus `margin` context on each side;
    the kept part (relative to the window) tiles [0, length) exactly."""
    spans = []
    for start in range(0, length, tile):
        stop = min(start + tile, length)
        lo, hi = max(0, start - margin), min(length, stop + margin)
        spans.append((lo, hi, start - lo, stop - lo))
    return spans


def fast_cpu_runner(net):
    """On CPU, the fused kernel (src/fused_cpu.py: one operator, same Parameters, outputs equal to float32
    rounding), or if it cannot be built the batched-matmul graph (src/srcnn_gemm.py), with a one-line note
    why; elsewhere the network itself."""
    import mindspore as ms

    from src.fused_cpu import FusedSRCNN
    from src.kernel_build import KernelUnavailable, note_fallback
    from src.srcnn import SRCNN
    from src.srcnn_gemm import SRCNNGemmInference

    if type(net) is not SRCNN or ms.get_context("device_target") != "CPU":
        return net
    try:
        return FusedSRCNN(net)
    except KernelUnavailable as reason:
        note_fallback(reason, "the batched-matmul inference graph (SRCNNGemmInference)")
        runner = SRCNNGemmInference(net)
        runner.set_train(False)
        # one compilation for every image size
        runner.set_inputs(ms.Tensor(shape=[None, 1, None, None], dtype=ms.float32))
        return runner


class Predictor:
    """predict(lr_y float32 HxW in [0,1]) -> float32 HxW. With tile_size > 0 the image is processed in
    tiles with `border(arch)` pixels of context on each inner side: every output pixel then sees exactly
    the inputs (and the image-edge padding) it sees in whole-image inference, so the result is the same.
    ``net`` is the SRCNN whose weights are used (updates to its Parameters are seen); on CPU it runs through
    the fused kernel (see ``fast_cpu_runner``)."""

    def __init__(self, net, tile_size=0):
        import mindspore as ms

        self.net = net
        self.net.set_train(False)
        self.runner = fast_cpu_runner(net)
        if self.runner is net:  # one compilation for every image size
            net.set_inputs(ms.Tensor(shape=[None, 1, None, None], dtype=ms.float32))
        self.tile_size = tile_size
        self.margin = border(net.arch)

    def _run(self, lr_y):
        import mindspore as ms

        out = self.runner(ms.Tensor(np.ascontiguousarray(lr_y, np.float32)[None, None]))
        return out.asnumpy()[0, 0]

    def __call__(self, lr_y):
        height, width = lr_y.shape
        if not self.tile_size or (height <= self.tile_size and width <= self.tile_size):
            return self._run(lr_y)
        sr_y = np.empty((height, width), np.float32)
        for y0, y1, ky0, ky1 in tile_spans(height, self.tile_size, self.margin):
            for x0, x1, kx0, kx1 in tile_spans(width, self.tile_size, self.margin):
                tile = self._run(lr_y[y0:y1, x0:x1])
                sr_y[y0 + ky0:y0 + ky1, x0 + kx0:x0 + kx1] = tile[ky0:ky1, kx0:kx1]
        return sr_y
