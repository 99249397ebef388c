"""The .bin backend: the outputs the Ascend 310 harness (ascend310_infer/out/main, or the reference runner) wrote
for preprocess.py's inputs, read back as a predictor for postprocess.py.

Nothing is run: for an image ``name`` the output ``<result_path>/<stem>_0.bin`` of its input ``<stem>.bin``
(listed in preprocess.py's meta.json) is read, checked to hold the preprocessed H x W float32 values, and
cropped back to the image's real size. The predictor interface is described in src/infer/base.py.
Framework-free (numpy only).
"""
from pathlib import Path

import numpy as np

from src.infer.base import Predictor
from src.protocol.naming import bin_output_name
from src.protocol.scoring import NonFiniteOutput, check_finite_output, named
from src.utils.errors import UserError


class BinOutputs(Predictor):
    """predict(lr_y, name) -> the harness's output for image ``name``, cropped to ``lr_y``'s shape.

    ``meta`` is preprocess.py's meta.json (read from ``meta_path``), ``data_path`` the ground-truth folder
    it was made from (for messages). Every mismatch between the three is a UserError naming the image."""

    def __init__(self, result_path, meta_path, meta, data_path):
        self.result_path = Path(result_path)
        self.meta_path = meta_path
        self.data_path = data_path
        self.height, self.width = int(meta["height"]), int(meta["width"])
        self.entries = {entry["name"]: entry for entry in meta["images"]}

    def __call__(self, lr_y, name=None):
        entry = self.entries.get(name)
        if entry is None:
            raise UserError(f"image {name} of {self.data_path} is not in {self.meta_path}: preprocess this "
                            "data_path first")
        if (entry["height"], entry["width"]) != lr_y.shape:
            raise UserError(f"image {name} of {self.data_path} is {lr_y.shape[0]}x{lr_y.shape[1]} but "
                            f"{self.meta_path} says {entry['height']}x{entry['width']}: was it preprocessed "
                            "from another folder?")
        out_file = self.result_path / bin_output_name(entry["file"])
        if not out_file.is_file():
            raise UserError(f"no model output for image {name}: {out_file} does not exist "
                            "(did the inference run finish on every input?)")
        data = np.fromfile(out_file, dtype=np.float32)
        if data.size != self.height * self.width:
            raise UserError(f"{out_file} holds {data.size} float32 values, expected 1x1x{self.height}x{self.width}"
                            f" = {self.height * self.width} (the preprocessed input size)")
        sr = data.reshape(self.height, self.width)[:lr_y.shape[0], :lr_y.shape[1]]
        try:
            return check_finite_output(sr)
        except NonFiniteOutput as err:  # named with the file: the harness's output, not a network in this process
            raise named(f"{name} ({out_file})", self.data_path, err) from None
