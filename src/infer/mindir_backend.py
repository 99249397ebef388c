"""A Python stand-in for the Ascend 310 harness (ascend310_infer/out/main), running MINDIR models on CPU
with mindspore.load + nn.GraphCell.

The MindSpore Lite 2.0 runtime the C++ harness builds against cannot read MINDIR files written by
MindSpore 2.10 (on CPU the harness runs export.py's ONNX model, converted for Lite), so for a MINDIR on a
machine without a matching Lite runtime this runner does the harness's job, chosen explicitly with
``INFER_RUNNER=reference`` in scripts/run_infer_310.sh, with the same flags and files: for each ``X.bin``
of --input_path (sorted by name; float32, exactly the byte size of the model input) it writes output 0 to
``<result_path>/X_0.bin`` and then prints
``N images, average latency X ms`` (model execution only; the graph is compiled once before, as the
harness's Model::Build does).

Two more modes for checks and scripts:
  --data_path=DIR [--scale=S] [--output_json=F]  evaluate the MINDIR directly on ground-truth images (the
                                                 eval.py protocol; dynamic models take any size);
  --print_input_shape                            print the static input's "H W" (error if dynamic).
"""
import os

import numpy as np

from src.infer.base import check_model_size
from src.utils.errors import UserError

DTYPE_NAMES = {1: ("float32", 4), 2: ("uint8", 1), 6: ("int32", 4), 10: ("float16", 2)}


class MindirModel:
    """A MINDIR file loaded for execution: ``input_shape`` (list, -1 = dynamic), ``input_bytes`` (None if
    dynamic) and ``run(x)`` on a float32 array of that shape."""

    def __init__(self, path):
        path = str(path)
        if not os.path.isfile(path):
            raise UserError(f"model file {path} does not exist or is not a file")
        if not path.endswith(".mindir"):
            raise UserError(f"model file {path} is not a MINDIR model: expected a .mindir file")
        import mindspore as ms
        from mindspore import nn

        from src.model_utils.device import init_context

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
            name = DTYPE_NAMES.get(dtype, (f"data type {dtype}",))[0]
            raise UserError(f"model {path} has input {self.shape_text} {name}, expected a float32 [N,1,H,W] input")
        self.dynamic = any(d < 0 for d in self.input_shape)
        self.input_bytes = None if self.dynamic else int(np.prod(self.input_shape)) * 4
        self.cell = nn.GraphCell(graph)
        self._tensor = ms.Tensor

    @staticmethod
    def _read_input(path):
        from mindspore.train import mind_ir_pb2

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
        return self.cell(self._tensor(x)).asnumpy()

    def check_size(self, height, width):
        model_h, model_w = (d if d >= 0 else None for d in self.input_shape[2:])
        check_model_size("MINDIR", self.path, model_h, model_w, height, width)

    def predict(self, lr_y):
        """predict(lr_y float32 HxW) -> float32 HxW (the evaluation protocol's interface)."""
        height, width = lr_y.shape
        self.check_size(height, width)
        return self.run(np.ascontiguousarray(lr_y, np.float32)[None, None])[0, 0]
