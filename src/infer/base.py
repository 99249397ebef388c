"""What every predictor (MindSpore, ONNX Runtime, MINDIR, 310 .bin outputs) shares; framework-free."""
from src.protocol.scoring import ImageSizeError


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
