"""Convert an ONNX model written by export.py into the MINDIR form the MindSpore Lite runtime reads.

    <converter python> scripts/convert_for_lite.py --onnx_path=srcnn.onnx --output_file=OUT/srcnn.lite.mindir

Runs under the Python 3.7 environment that ``scripts/fetch_mindspore_lite.sh --converter`` makes (the
mindspore-lite 2.0.0 wheel's converter binding is built for CPython 3.7), so it imports nothing from the
repository. The converted model is loaded back with the Lite runtime, and run once on a small input for a
dynamic model, before it is moved into place; a file ``OUTPUT_FILE.source`` records what it was made from
(size and SHA-256 of the ONNX file, Lite version), so a second run with the same ONNX file skips the
conversion. The model's input size, ``H W`` or ``dynamic``, is the last line on stdout, and with
``--shape_file=FILE`` also the one line of FILE (what scripts/run_infer_310.sh reads: Lite's C++ code can
write to stdout too, flushed when the process ends, after this script's last line).
Lite's own log (glog, to stderr) is off unless GLOG_v is set (GLOG_v=2 shows its warnings and errors).
Errors: one line ``error: ...``, exit 2 for bad arguments or a model that is not an SRCNN-shaped model
the converter reads (one float32 [N,1,H,W] input, an output of the same size), 1 otherwise.
"""
import hashlib
import os
import shutil
import sys
import tempfile

USAGE = "usage: convert_for_lite.py --onnx_path=FILE --output_file=FILE [--shape_file=FILE]"
OPTIONS = ("onnx_path", "output_file", "shape_file")


class Failure(Exception):
    def __init__(self, message, code=1):
        super().__init__(message)
        self.code = code


def parse_args(argv):
    opts = {}
    for arg in argv:
        if arg in ("-h", "--help"):
            print(USAGE + "\n\n" + __doc__.strip())
            sys.exit(0)
        name, eq, value = arg[2:].partition("=")
        if not arg.startswith("--") or not eq or name not in OPTIONS:
            raise Failure("unexpected argument '{}' ({})".format(arg, USAGE), 2)
        opts[name] = value
    for name in ("onnx_path", "output_file"):
        if not opts.get(name):
            raise Failure("--{} is required ({})".format(name, USAGE), 2)
    if not os.path.isfile(opts["onnx_path"]):
        raise Failure("--onnx_path {} does not exist or is not a file".format(opts["onnx_path"]), 2)
    return opts


def source_id(path, lite_version):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return "{} bytes sha256 {} mindspore-lite {}\n".format(os.path.getsize(path), digest.hexdigest(), lite_version)


def load_input_shape(lite, path, name):
    """The input shape of the converted model ``path`` (list, -1 = dynamic), after checking the runtime
    runs it; ``name`` is how messages call it (the user's ONNX file, not a temporary one)."""
    import numpy as np

    context = lite.Context()
    context.target = ["cpu"]
    model = lite.Model()
    try:
        model.build_from_file(path, lite.ModelType.MINDIR, context)
    except RuntimeError as err:
        raise Failure("the MindSpore Lite runtime cannot load {} ({})".format(
            name, " ".join(str(err).split())[:200]))
    inputs = model.get_inputs()
    if len(inputs) != 1:
        raise Failure("{} has {} inputs, expected 1".format(name, len(inputs)), 2)
    shape = list(inputs[0].shape)
    if len(shape) != 4 or shape[1] != 1 or inputs[0].dtype != lite.DataType.FLOAT32:
        raise Failure("{} has input {} {}, expected float32 [N,1,H,W]".format(
            name, shape, inputs[0].dtype), 2)
    probe = [1, 1] + [d if d > 0 else 11 for d in shape[2:]]
    try:
        if shape != probe:
            model.resize(inputs, [probe])
            inputs = model.get_inputs()
        inputs[0].set_data_from_numpy(np.zeros(probe, np.float32))
        out = model.predict(inputs)[0].get_data_to_numpy()
    except RuntimeError as err:
        raise Failure("the MindSpore Lite runtime cannot run {} on a {} input ({})".format(
            name, probe, " ".join(str(err).split())[:200]), 2)
    if list(out.shape) != probe:
        raise Failure("{} returned shape {} for input {}, expected the same".format(
            name, list(out.shape), probe), 2)
    return shape


def convert(onnx_path, output_file):
    # Lite reads GLOG_v when its library loads: unless the caller chose a level, its log is off (4), so
    # a model it cannot read ends in this script's one error line, not a page of Lite's ERROR lines.
    os.environ.setdefault("GLOG_v", "4")
    import mindspore_lite as lite

    version = lite.__version__ if hasattr(lite, "__version__") else "unknown"
    wanted = source_id(onnx_path, version)
    record = output_file + ".source"
    if os.path.isfile(output_file) and os.path.isfile(record):
        with open(record) as handle:
            if handle.read() == wanted:
                shape = load_input_shape(lite, output_file, "the converted model " + output_file)
                print("{} is already converted from {}".format(output_file, onnx_path))
                return shape
    folder = os.path.dirname(os.path.abspath(output_file))
    try:
        os.makedirs(folder, exist_ok=True)
        tmp_dir = tempfile.mkdtemp(prefix=".convert_", dir=folder)
    except OSError as err:
        raise Failure("cannot write {} ({})".format(output_file, err.strerror or err))
    try:
        base = os.path.join(tmp_dir, "model")
        converter = lite.Converter()
        converter.save_type = lite.ModelType.MINDIR
        try:
            converter.convert(lite.FmkType.ONNX, onnx_path, base)
        except RuntimeError as err:
            first = next((line for line in str(err).splitlines() if line.strip()), "RuntimeError")
            raise Failure("the MindSpore Lite converter cannot convert {} ({})".format(onnx_path, first[:200]), 2)
        produced = base + ".mindir"
        if not os.path.isfile(produced):
            raise Failure("the MindSpore Lite converter wrote no {} for {}".format(produced, onnx_path))
        shape = load_input_shape(lite, produced, "the model converted from " + onnx_path)
        os.chmod(produced, 0o644)
        with open(os.path.join(tmp_dir, "source"), "w") as handle:
            handle.write(wanted)
        if os.path.exists(record):  # never a record beside a model it does not describe
            os.remove(record)
        os.replace(produced, output_file)
        os.replace(os.path.join(tmp_dir, "source"), record)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    print("converted {} to {} (MindSpore Lite {})".format(onnx_path, output_file, version))
    return shape


def write_shape_file(path, line):
    """``line`` as the whole of ``path``, replaced in one step (never a half-written file)."""
    tmp = None
    try:
        handle, tmp = tempfile.mkstemp(prefix=".shape_", dir=os.path.dirname(os.path.abspath(path)))
        with os.fdopen(handle, "w") as out:
            out.write(line + "\n")
        os.replace(tmp, path)
    except OSError as err:
        if tmp and os.path.exists(tmp):
            os.remove(tmp)
        raise Failure("cannot write --shape_file {} ({})".format(path, err.strerror or err), 2)


def main(argv):
    try:
        opts = parse_args(argv)
        shape = convert(opts["onnx_path"], opts["output_file"])
        line = "dynamic" if any(d < 0 for d in shape[2:]) else "{} {}".format(shape[2], shape[3])
        if opts.get("shape_file"):
            write_shape_file(opts["shape_file"], line)
    except Failure as err:
        print("error: " + " ".join(str(err).split()), file=sys.stderr, flush=True)
        return err.code
    print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
