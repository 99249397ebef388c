"""The MindSpore backend: a trained SRCNN run on whole Y images, optionally in overlapping tiles (bounded memory).

Used by eval.py, test.py and training validation; on CPU the network runs through the fused kernel (see
``src.model.network.fast_cpu_runner``). The predictor interface is described in src/infer/base.py.
"""
import mindspore as ms
import numpy as np

from src.infer.base import Predictor, tile_spans
from src.model.network import fast_cpu_runner, inference_padding, network_from_checkpoint
from src.model.srcnn import border
from src.model_utils.device import init_context


class MindSporePredictor(Predictor):
    """predict(lr_y float32 HxW in [0,1], name=None) -> float32 HxW. With tile_size > 0 the image is processed
    in tiles with `border(arch)` pixels of context on each inner side: every output pixel then sees exactly
    the inputs (and the image-edge padding) it sees in whole-image inference, so the result is the same.
    ``net`` is the SRCNN whose weights are used (updates to its Parameters are seen)."""

    def __init__(self, net, tile_size=0):
        self.net = net
        self.net.set_train(False)
        self.runner = fast_cpu_runner(net)
        if self.runner is net:  # one compilation for every image size
            net.set_inputs(ms.Tensor(shape=[None, 1, None, None], dtype=ms.float32))
        self.tile_size = tile_size
        self.margin = border(net.arch)

    def _run(self, lr_y):
        out = self.runner(ms.Tensor(np.ascontiguousarray(lr_y, np.float32)[None, None]))
        return out.asnumpy()[0, 0]

    def __call__(self, lr_y, name=None):
        height, width = lr_y.shape
        if not self.tile_size or (height <= self.tile_size and width <= self.tile_size):
            return self._run(lr_y)
        sr_y = np.empty((height, width), np.float32)
        for y0, y1, ky0, ky1 in tile_spans(height, self.tile_size, self.margin):
            for x0, x1, kx0, kx1 in tile_spans(width, self.tile_size, self.margin):
                tile = self._run(lr_y[y0:y1, x0:x1])
                sr_y[y0 + ky0:y0 + ky1, x0 + kx0:x0 + kx1] = tile[ky0:ky1, kx0:kx1]
        return sr_y


def predictor_from_checkpoint(cfg, checkpoint, weights=None):
    """(MindSporePredictor, the checkpoint's metadata) for ``checkpoint`` with cfg's padding, device and tiles."""
    init_context(cfg.device_target, cfg.device_id)
    net, meta = network_from_checkpoint(checkpoint, inference_padding(cfg.padding), cfg.device_target,
                                        weights=weights)
    return MindSporePredictor(net, cfg.tile_size), meta
