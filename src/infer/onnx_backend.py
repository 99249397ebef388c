"""The ONNX Runtime backend: an SRCNN exported by export.py --file_format=ONNX, run by onnxruntime (eval_onnx.py).

Framework-free: imports onnxruntime and numpy, never MindSpore. The predictor interface is described in
src/infer/base.py.
"""
import os
import sys

import numpy as np

from src.infer.base import Predictor, check_model_size
from src.utils.errors import UserError

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
NO_CUDA_WARNING = "warning: CUDAExecutionProvider is not available, running on CPU"


def _first_line(err, limit=160):
    text = next((line.strip() for line in str(err).splitlines() if line.strip()), type(err).__name__)
    return text if len(text) <= limit else text[:limit - 3] + "..."


class OnnxPredictor(Predictor):
    """predict(lr_y float32 HxW, name=None) -> float32 HxW with an SRCNN ONNX model ([N|1, 1, H, W] in and out).

    ``device_target='GPU'`` uses CUDAExecutionProvider on ``device_id`` when onnxruntime can; otherwise it
    prints one warning and runs on CPU. A static model raises ImageSizeError for an image of another size.
    """

    def __init__(self, path, device_target="CPU", device_id=0):
        if not path:
            raise UserError("onnx_path is empty: give --onnx_path=FILE.onnx (made by export.py --file_format=ONNX)")
        if not os.path.isfile(path):
            what = "is a folder, expected an .onnx file" if os.path.isdir(path) else "does not exist"
            raise UserError(f"ONNX model {path} {what}")
        if device_target not in ("GPU", "CPU"):
            raise UserError(f"eval_onnx runs on device_target=GPU or CPU (onnxruntime), got {device_target}")
        try:  # here, not at the top: a missing onnxruntime is a one-line error, not a traceback
            import onnxruntime as ort
        except ImportError:
            raise UserError("onnxruntime is not installed: pip install onnxruntime (or onnxruntime-gpu)") from None
        self.path = path
        want_cuda = device_target == "GPU"
        providers = [CPU]
        if want_cuda and CUDA in ort.get_available_providers():
            providers = [(CUDA, {"device_id": int(device_id)}), CPU]
        options = ort.SessionOptions()
        options.log_severity_level = 3
        # onnxruntime logs a multi-line error when its CUDA libraries cannot load; the one warning below says it
        ort.set_default_logger_severity(4 if want_cuda else 3)
        try:
            self.session = ort.InferenceSession(path, options, providers=providers)
        except Exception as err:  # noqa: BLE001 - onnxruntime has its own types (InvalidProtobuf, Fail, ...)
            raise UserError(f"{path} is not an ONNX model onnxruntime can run ({_first_line(err)})") from None
        finally:
            ort.set_default_logger_severity(3)
        self.providers = self.session.get_providers()
        if want_cuda and CUDA not in self.providers:
            print(NO_CUDA_WARNING, file=sys.stderr, flush=True)
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4 or inputs[0].type != "tensor(float)":
            found = ", ".join(f"{i.name} {i.type} {i.shape}" for i in inputs)
            raise UserError(f"{path} is not an SRCNN model: expected one float input [N,1,H,W], found {found}")
        self.input_name = inputs[0].name
        self.input_shape = inputs[0].shape
        dims = self.input_shape[2:]
        self.fixed_size = tuple(dims) if all(isinstance(d, int) for d in dims) else None

    def _check_size(self, height, width):
        model_h, model_w = (d if isinstance(d, int) else None for d in self.input_shape[2:])
        check_model_size("ONNX", self.path, model_h, model_w, height, width)

    def __call__(self, lr_y, name=None):
        height, width = lr_y.shape
        self._check_size(height, width)
        x = np.ascontiguousarray(lr_y, dtype=np.float32)[None, None]
        return self.session.run(None, {self.input_name: x})[0][0, 0]
