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
import sys
import time
from pathlib import Path

import numpy as np

from src.protocol.image_io import list_images
from src.protocol.naming import bin_output_name
from src.protocol.report import report
from src.protocol.scoring import evaluate, iter_images
from src.utils.checks import check_output_file, check_output_folder
from src.utils.errors import UserError
from src.utils.file_io import write_atomic

HARNESS_BARE_FLAGS = ("--print_input_shape",)  # the harness's flags that take no value
DEFAULT_RESULT_PATH = "./result_Files"  # the harness's default


def harness_flags(argv):
    """``argv`` with the harness's bare flags (``--print_input_shape``) spelled as config flags (``=true``)."""
    return [f"{arg}=true" if arg in HARNESS_BARE_FLAGS else arg for arg in argv]


def run_bins(model, input_path, result_path):
    """The harness's loop; returns (number of files, average latency in ms)."""
    input_path, result_path = Path(input_path), Path(result_path)
    if not input_path.is_dir():
        raise UserError(f"input folder {input_path} does not exist or is not a folder")
    files = sorted(p for p in input_path.iterdir() if p.suffix == ".bin" and p.is_file())
    if not files:
        raise UserError(f"no .bin files in {input_path}")
    if model.dynamic:
        raise UserError(f"model {model.path} has a dynamic input {model.shape_text}: the harness needs a static "
                        "model, export it with --image_height=H --image_width=W (the preprocess size)")
    try:
        result_path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot create result folder {result_path} ({err.strerror or err})") from None
    model.run(np.zeros(model.input_shape, np.float32))  # compile once, as Model::Build does
    total_ms = 0.0
    for file in files:
        size = file.stat().st_size
        if size != model.input_bytes:
            raise UserError(f"{file} has {size} bytes but model input 0 expects {model.input_bytes} bytes "
                            f"(shape {model.shape_text}, float32)")
        x = np.fromfile(file, dtype=np.float32).reshape(model.input_shape)
        start = time.perf_counter()
        out = model.run(x)
        total_ms += (time.perf_counter() - start) * 1000.0
        out = np.ascontiguousarray(out, np.float32)
        write_atomic(result_path / bin_output_name(file), out.tofile, binary=True, what="model output")
    return len(files), total_ms / len(files)


def run_reference(cfg):
    """The runner's three modes (see the module docstring) for the config of scripts/run_infer_reference.py."""
    if not cfg.mindir_path:
        raise UserError("--mindir_path=FILE is required")
    if not cfg.print_input_shape and bool(cfg.input_path) == bool(cfg.data_path):
        raise UserError("give exactly one of --input_path=DIR (.bin files) and --data_path=DIR (images)")
    result_path = cfg.result_path or DEFAULT_RESULT_PATH
    images = []
    if cfg.data_path:
        images = list_images(cfg.data_path, key="--data_path")
        check_output_file(cfg.output_json, "--output_json")
    elif not cfg.print_input_shape:
        check_output_folder(result_path, "--result_path")
    # here, after the checks above: a bad flag or path is reported without waiting for MindSpore to load
    from src.infer.mindir_backend import MindirModel

    model = MindirModel(cfg.mindir_path)
    if cfg.print_input_shape:
        if model.dynamic:
            raise UserError(f"model {model.path} has a dynamic input {model.shape_text}: no static size to print")
        print(f"{model.input_shape[2]} {model.input_shape[3]}")
        return
    if cfg.device_type == "Ascend":
        print("note: the reference runner runs on CPU (--device_type=Ascend ignored)", file=sys.stderr)
    if cfg.data_path:
        skipped = []
        result = evaluate(model, iter_images(cfg.data_path, cfg.scale, skipped, paths=images), cfg.scale,
                          source=cfg.data_path, skipped=skipped)
        report(result, cfg.output_json, mindir_model=os.path.abspath(model.path))
        return
    count, latency = run_bins(model, cfg.input_path, result_path)
    print(f"{count} images, average latency {latency:.3f} ms", flush=True)
