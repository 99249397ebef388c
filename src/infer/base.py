"""The predictor interface every inference backend implements, and what the backends share.

A predictor is a callable ``predict(lr_y, name=None) -> sr_y``: ``lr_y`` is the protocol's bicubic input,
a float32 HxW array of Y in [0, 1]; ``sr_y`` is the network's output of the same shape (unclipped floats).
``name`` is the image's name (src/protocol/naming.py): the scoring loop (src/protocol/scoring.py,
``evaluate``) always passes it, a backend that reads precomputed outputs needs it to find them, the others
ignore it. A model that cannot take an image of this size raises ImageSizeError. Backends:

- ``src.infer.mindspore_backend.MindSporePredictor``: a checkpoint in MindSpore (eval.py, test.py, training
  validation), optionally in tiles;
- ``src.infer.onnx_backend.OnnxPredictor``: an exported ONNX model in onnxruntime (eval_onnx.py);
- ``src.infer.mindir_backend.MindirModel``: an exported MINDIR in MindSpore's GraphCell (the reference runner);
- ``src.infer.bin_backend.BinOutputs``: the .bin outputs of the Ascend 310 harness (postprocess.py).

Framework-free: this module never imports MindSpore (eval_onnx.py and postprocess.py run without it).
"""
from src.protocol.scoring import ImageSizeError


class Predictor:
    """Base class of the backends: ``__call__(lr_y, name=None)`` as described in this module."""

    def __call__(self, lr_y, name=None):
        raise NotImplementedError


def check_model_size(kind, path, model_h, model_w, height, width):
    """ImageSizeError unless a model of input size model_h x model_w (None = dynamic) takes height x width."""
    if (model_h is not None and model_h != height) or (model_w is not None and model_w != width):
        fixed = f"{'any' if model_h is None else model_h}x{'any' if model_w is None else model_w}"
        raise ImageSizeError(f"the {kind} model {path} has a fixed input size of {fixed} (HxW) but the image is "
                             f"{height}x{width}; export a dynamic model (image_height=0, image_width=0) to "
                             "evaluate images of any size")


def tile_spans(length, tile, margin):
    """[(start, stop, keep_start, keep_stop)]: windows of `tile` pixels plus `margin` context on each side;
    the kept part (relative to the window) tiles [0, length) exactly."""
    spans = []
    for start in range(0, length, tile):
        stop = min(start + tile, length)
        lo, hi = max(0, start - margin), min(length, stop + margin)
        spans.append((lo, hi, start - lo, stop - lo))
    return spans
