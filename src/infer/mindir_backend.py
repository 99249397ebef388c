"""The MINDIR backend: an SRCNN exported by export.py --file_format=MINDIR, loaded with mindspore.load and run by
nn.GraphCell on CPU (the reference runner, src/deploy/reference_runner.py).

The input description is read from the file's protobuf header first, so a file that is not a MINDIR is a
one-line error before MindSpore logs its own. The predictor interface is described in src/infer/base.py.
"""
import os

import mindspore as ms
import numpy as np
from mindspore import nn
from mindspore.train import mind_ir_pb2

from src.infer.base import Predictor, check_model_size
from src.model_utils.device import init_context
from src.utils.errors import UserError

DTYPE_NAMES = {1: "float32", 2: "uint8", 6: "int32", 10: "float16"}  # MINDIR TensorProto data types


class MindirModel(Predictor):
    """A MINDIR file loaded for execution: ``input_shape`` (list, -1 = dynamic), ``input_bytes`` (None if
    dynamic), ``run(x)`` on a float32 array of that shape, and the predictor call on one Y image."""

    def __init__(self, path):
        path = str(path)
        if not os.path.isfile(path):
            raise UserError(f"model file {path} does not exist or is not a file")
        if not path.endswith(".mindir"):
            raise UserError(f"model file {path} is not a MINDIR model: expected a .mindir file")
        init_context("CPU", 0)
        self.path = path
        self.input_shape, dtype = self._read_input(path)  # before ms.load, which logs C++ errors on bad files
        try:
            graph = ms.load(path)
        except (RuntimeError, ValueError, TypeError, OSError) as err:
            first = next((line for line in str(err).splitlines() if line.strip()), type(err).__name__)
            raise UserError(f"cannot load model {path}: not a MINDIR model MindSpore can read ({first[:160]})") \
                from None
        if dtype != 1 or len(self.input_shape) != 4:
            name = DTYPE_NAMES.get(dtype, f"data type {dtype}")
            raise UserError(f"model {path} has input {self.shape_text} {name}, expected a float32 [N,1,H,W] input")
        self.dynamic = any(d < 0 for d in self.input_shape)
        self.input_bytes = None if self.dynamic else int(np.prod(self.input_shape)) * 4
        self.cell = nn.GraphCell(graph)

    @staticmethod
    def _read_input(path):
        model = mind_ir_pb2.ModelProto()
        try:
            with open(path, "rb") as handle:
                model.ParseFromString(handle.read())
            if model.producer_name != "MindSpore" or not model.model_version:
                raise ValueError("no MindSpore producer/version")
            tensor = model.graph.input[0].tensor[0]
        except Exception:  # noqa: BLE001 - a protobuf decode error, another format, a graph without inputs
            raise UserError(f"cannot load model {path}: not a MINDIR model (no MindSpore model header "
                            "with an input description)") from None
        return [int(d) for d in tensor.dims], int(tensor.data_type)

    @property
    def shape_text(self):
        return "[" + ",".join(str(d) for d in self.input_shape) + "]"

    def run(self, x):
        return self.cell(ms.Tensor(x)).asnumpy()

    def check_size(self, height, width):
        model_h, model_w = (d if d >= 0 else None for d in self.input_shape[2:])
        check_model_size("MINDIR", self.path, model_h, model_w, height, width)

    def __call__(self, lr_y, name=None):
        """predict(lr_y float32 HxW, name=None) -> float32 HxW (src/infer/base.py)."""
        height, width = lr_y.shape
        self.check_size(height, width)
        return self.run(np.ascontiguousarray(lr_y, np.float32)[None, None])[0, 0]
