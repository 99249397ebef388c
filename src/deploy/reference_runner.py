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

from src.infer.mindir_backend import MindirModel
from src.utils.checks import check_output_file, check_output_folder
from src.utils.errors import UserError
from src.utils.file_io import write_atomic

USAGE = """usage: run_infer_reference.py --mindir_path=FILE --input_path=DIR [--result_path=DIR]
                              [--device_type=Ascend|CPU] [--device_id=N]
       run_infer_reference.py --mindir_path=FILE --data_path=DIR [--scale=2] [--output_json=FILE]
       run_infer_reference.py --mindir_path=FILE --print_input_shape

Runs a MINDIR model like ascend310_infer/out/main, on CPU with MindSpore (mindspore.load + GraphCell):
every *.bin file of DIR (sorted by name) holds the float32 input tensor of one image, of exactly the byte
size of the model input; output 0 is written to RESULT/<name>_0.bin.

  --mindir_path=FILE   MINDIR model to run (required)
  --input_path=DIR     folder of input .bin files
  --result_path=DIR    folder for the output .bin files, created if missing (default ./result_Files)
  --device_type=TYPE   Ascend or CPU (default CPU), accepted for compatibility with the harness:
                       this runner always uses the CPU
  --device_id=N        accepted for compatibility (default 0)
  --data_path=DIR      instead of --input_path: evaluate the model on the ground-truth images of DIR
                       (protocol of eval.py; table and result line, JSON with --output_json)
  --scale=S            super-resolution factor for --data_path (2, 3 or 4; default 2)
  --output_json=FILE   with --data_path: write the results as JSON
  --print_input_shape  print the model's static input size as "H W" and exit
  --help               print this help and exit
"""


VALUE_FLAGS = ("mindir_path", "input_path", "result_path", "device_type", "device_id", "data_path", "scale",
               "output_json")


def parse_args(argv):
    """Flags as the C++ harness reads them (--name=value, or gflags-style -name=value); UserError if bad."""
    opts = {"result_path": "./result_Files", "device_type": "CPU", "device_id": "0", "scale": "2",
            "output_json": ""}
    flags = set()
    for arg in argv:
        if arg in ("--help", "-h", "-help"):
            opts["help"] = True
            continue
        if arg == "--print_input_shape":
            flags.add("print_input_shape")
            continue
        if arg.startswith("-") and not arg.startswith("--"):
            arg = "-" + arg
        name, eq, value = arg[2:].partition("=") if arg.startswith("--") else (arg, "", "")
        if not arg.startswith("--") or not eq:
            raise UserError(f"unexpected argument '{arg}' (flags look like --name=value; see --help)")
        if name not in VALUE_FLAGS:
            raise UserError(f"unknown flag --{name} (known: {', '.join('--' + f for f in VALUE_FLAGS)})")
        opts[name] = value
    if opts.get("help"):
        return opts
    opts["print_input_shape"] = "print_input_shape" in flags
    if not opts.get("mindir_path"):
        raise UserError("--mindir_path=FILE is required")
    if opts["device_type"] not in ("Ascend", "CPU"):
        raise UserError(f"--device_type must be Ascend or CPU, got '{opts['device_type']}'")
    if not opts["device_id"].isdigit():
        raise UserError(f"--device_id must be a non-negative integer, got '{opts['device_id']}'")
    if opts["scale"] not in ("2", "3", "4"):
        raise UserError(f"--scale must be 2, 3 or 4, got '{opts['scale']}'")
    if not opts["print_input_shape"] and bool(opts.get("input_path")) == bool(opts.get("data_path")):
        raise UserError("give exactly one of --input_path=DIR (.bin files) and --data_path=DIR (images)")
    return opts


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
        write_atomic(result_path / f"{file.stem}_0.bin", np.ascontiguousarray(out, np.float32).tofile, True, "result")
    return len(files), total_ms / len(files)


def main(argv):
    opts = parse_args(argv)
    if opts.get("help"):
        print(USAGE, end="")
        return 0
    if opts.get("data_path"):
        from src.protocol.image_io import list_images

        list_images(opts["data_path"], key="--data_path")  # before MindSpore loads
        check_output_file(opts["output_json"], "--output_json")
    elif not opts["print_input_shape"]:
        check_output_folder(opts["result_path"], "--result_path")
    model = MindirModel(opts["mindir_path"])
    if opts["print_input_shape"]:
        if model.dynamic:
            raise UserError(f"model {model.path} has a dynamic input {model.shape_text}: no static size to print")
        print(f"{model.input_shape[2]} {model.input_shape[3]}")
        return 0
    if opts["device_type"] == "Ascend":
        print("note: the reference runner runs on CPU (--device_type=Ascend ignored)", file=sys.stderr)
    if opts.get("data_path"):
        from src.protocol.scoring import evaluate_model

        evaluate_model(opts["data_path"], int(opts["scale"]), model.predict, opts["output_json"],
                       mindir_model=os.path.abspath(model.path))
        return 0
    count, latency = run_bins(model, opts["input_path"], opts["result_path"])
    print(f"{count} images, average latency {latency:.3f} ms", flush=True)
    return 0
