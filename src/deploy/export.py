"""export.py's work: an SRCNN checkpoint as a MINDIR, ONNX or AIR model for deployment.

Without a size (image_height = image_width = 0) the model takes any image: MINDIR input [1, 1, H, W] with
dynamic H and W, ONNX input [N, 1, H, W] with dynamic N, H and W (named ``batch``, ``height``, ``width``
on both the input ``input`` and the output ``output``). With a size the input is static [1, 1, H, W].

MindSpore's ONNX exporter has no mapping for PadV3, the primitive behind ``ops.pad`` (replicate padding
is PadV3 with mode 'edge'), and it rejects dynamic-shape networks. So the ONNX model is exported from a
twin of the network that pads with the old ``ops.Pad`` (exported as an ONNX constant ``Pad``), traced at
a fixed size with ``dynamic_axes``, and a post-pass then replaces each Pad of a replicate network by
edge slices and concatenations (``Slice`` of the first/last row, ``Concat`` along H, then the same along
W), and makes the output dimensions symbolic. Not ``Pad(mode='edge')``: the MindSpore Lite 2.0 converter
does not keep its edge mode (border pixels came out wrong on the C++ harness), while Slice and Concat
convert faithfully, and they stay per layer, as eval.py pads. Every export is checked against the
MindSpore network before it is moved into place (onnxruntime for ONNX, GraphCell for MINDIR).
"""
import os

import mindspore as ms
import mindspore.ops as ops
import numpy as np
from mindspore import nn

from src.model.checkpoint import checkpoint_settings, load_weights, resolve_checkpoint
from src.model.network import inference_padding, network_from_checkpoint
from src.model.srcnn import SRCNN
from src.model_utils.device import init_context
from src.utils.checks import check_output_file, check_outputs_spare_inputs
from src.utils.errors import UserError
from src.utils.file_io import (
    DISK_FULL,
    check_space,
    disk_full,
    make_owned_temp_dir,
    release_temp_dir,
    remove_stale_temp_dirs,
    replace_atomic,
)

# onnx and onnxruntime are imported where they are used: a MINDIR export needs neither installed

EXTENSIONS = {"MINDIR": ".mindir", "AIR": ".air", "ONNX": ".onnx"}
DYNAMIC_AXES = {0: "batch", 2: "height", 3: "width"}
TRACE_SIZE = (37, 45)  # traced size of dynamic ONNX exports: odd and distinct, so a baked-in size shows
CHECK_SIZES = ((24, 40), (53, 31))  # sizes a dynamic export is checked at
TEMP_PREFIX = ".export_"  # export's temporary folders beside the model (a killed run's are removed by the next)
TOLERANCE = 1e-4  # max |difference| to the MindSpore network allowed for an export (float32 reorderings)


def output_path(file_name, file_format):
    """``file_name`` with the format's extension (not doubled if it is already there)."""
    if not file_name:
        raise UserError("file_name is empty: give --file_name=NAME (the extension is added)")
    ext = EXTENSIONS[file_format]
    return file_name if file_name.lower().endswith(ext) else file_name + ext


def _static_size(cfg):
    if cfg.image_height == 0 and cfg.image_width == 0:
        return None
    return int(cfg.image_height), int(cfg.image_width)


def _onnx_twin(net):
    """A copy of ``net`` (same weights) whose padding MindSpore can export to ONNX."""
    class OnnxSRCNN(SRCNN):
        """Pads with ops.Pad (ONNX Pad, constant zeros); replicate is restored by the post-pass."""

        def _pad(self, x, p):
            if p == 0:
                return x
            return ops.Pad(((0, 0), (0, 0), (p, p), (p, p)))(x)

    twin = OnnxSRCNN(net.arch, net.n1, net.n2, net.padding)
    load_weights(twin, {p.name: p.asnumpy() for p in net.get_parameters()}, "network")
    twin.set_train(False)
    return twin


def _pad_amounts(graph, node):
    """The (top, left, bottom, right) pads of an exported 4-D ``Pad`` node (its pads come from a Constant)."""
    import onnx.numpy_helper

    producers = {out: n for n in graph.node for out in n.output}
    source = producers.get(node.input[1]) if len(node.input) > 1 else None
    if source is None or source.op_type != "Constant":
        raise RuntimeError(f"Pad node {node.name or node.output[0]} has no constant pads")
    pads = onnx.numpy_helper.to_array(source.attribute[0].t).tolist()
    if len(pads) != 8 or any(pads[i] for i in (0, 1, 4, 5)):
        raise RuntimeError(f"Pad node {node.name or node.output[0]} pads {pads}, expected H and W only")
    return pads[2], pads[3], pads[6], pads[7]


def _edge_pad_nodes(x, out, amounts, prefix):
    """ONNX nodes and initializers computing ``out`` = ``x`` [N, C, H, W] with its edge rows/columns
    repeated by ``amounts`` (top, left, bottom, right): Slice + Concat along H, then along W."""
    import onnx
    from onnx import TensorProto

    top, left, bottom, right = amounts
    nodes, inits = [], []

    def const(name, value):
        inits.append(onnx.helper.make_tensor(f"{prefix}/{name}", TensorProto.INT64, [1], [value]))
        return f"{prefix}/{name}"

    first_start, first_end = const("first_start", 0), const("first_end", 1)
    last_start, last_end = const("last_start", -1), const("last_end", 2 ** 62)
    current = x
    for axis, before, after in ((2, top, bottom), (3, left, right)):
        if not before and not after:
            continue
        axis_name = const(f"axis{axis}", axis)
        parts = []
        if before:
            first = f"{prefix}/first{axis}"
            nodes.append(onnx.helper.make_node("Slice", [current, first_start, first_end, axis_name], [first]))
            parts += [first] * before
        parts.append(current)
        if after:
            last = f"{prefix}/last{axis}"
            nodes.append(onnx.helper.make_node("Slice", [current, last_start, last_end, axis_name], [last]))
            parts += [last] * after
        result = out if axis == 3 or not (left or right) else f"{prefix}/rows{axis}"
        nodes.append(onnx.helper.make_node("Concat", parts, [result], axis=axis))
        current = result
    if current == x:  # nothing to pad
        nodes.append(onnx.helper.make_node("Identity", [x], [out]))
    return nodes, inits


def fix_onnx_graph(model, padding, dynamic):
    """The post-pass on a freshly exported ONNX ModelProto (changed in place, also returned).

    * replicate networks: every Pad node becomes edge Slices and Concats (MindSpore writes constant Pads
      only, and the Lite converter loses Pad's edge mode);
    * dynamic models: the output's dimensions become ``batch, 1, height, width`` like the input's, and any
      traced intermediate shapes (value_info) are dropped, so onnxruntime sees no size baked in.
    Raises RuntimeError if the graph holds anything but the expected Pad/Conv/Relu chain.
    """
    import onnx

    graph = model.graph
    kinds = {node.op_type for node in graph.node}
    unexpected = kinds - {"Pad", "Conv", "Relu", "Constant"}
    if unexpected:
        raise RuntimeError(f"unexpected ONNX operators {sorted(unexpected)} in the exported SRCNN")
    if padding == "replicate":
        nodes = []
        for index, node in enumerate(graph.node):
            if node.op_type != "Pad":
                nodes.append(node)
                continue
            new_nodes, inits = _edge_pad_nodes(node.input[0], node.output[0], _pad_amounts(graph, node),
                                               f"edge_pad{index}")
            nodes += new_nodes
            graph.initializer.extend(inits)
        used = {name for node in nodes for name in node.input}
        nodes = [n for n in nodes if n.op_type != "Constant" or any(o in used for o in n.output)]
        del graph.node[:]
        graph.node.extend(nodes)
    graph.name = "srcnn"
    if dynamic:
        for value in list(graph.input) + list(graph.output):
            dims = value.type.tensor_type.shape.dim
            for axis, name in DYNAMIC_AXES.items():
                dims[axis].Clear()
                dims[axis].dim_param = name
        del graph.value_info[:]
    onnx.checker.check_model(model)
    return model


def _export_onnx(net, size, tmp_base):
    try:
        import onnx
    except ImportError:
        raise UserError("file_format=ONNX needs the onnx package (in requirements.txt): "
                        "pip install -r requirements.txt") from None

    twin = _onnx_twin(net)
    height, width = size or TRACE_SIZE
    dummy = ms.Tensor(np.zeros((1, 1, height, width), np.float32))
    ms.onnx.export(twin, dummy, file_name=tmp_base + ".onnx", input_names=["input"], output_names=["output"],
                   dynamic_axes={"input": dict(DYNAMIC_AXES)} if size is None else None)
    path = tmp_base + ".onnx"
    model = fix_onnx_graph(onnx.load(path), net.padding, dynamic=size is None)
    onnx.helper.set_model_props(model, {"arch": net.arch, "n1": str(net.n1), "n2": str(net.n2),
                                        "padding": net.padding})
    onnx.save(model, path)
    return path


def _check_onnx(path, net, sizes):
    """Max |onnxruntime - MindSpore| over ``sizes``; None if onnxruntime is not installed."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return max(_max_diff(lambda x: session.run(None, {"input": x})[0], net, size) for size in sizes)


def _check_mindir(path, net, sizes):
    graph = nn.GraphCell(ms.load(path))
    return max(_max_diff(lambda x: graph(ms.Tensor(x)).asnumpy(), net, size) for size in sizes)


def _max_diff(run, net, size):
    x = np.random.default_rng(size[0] * 1000 + size[1]).random((1, 1) + tuple(size), dtype=np.float32)
    expected = net(ms.Tensor(x)).asnumpy()
    got = np.asarray(run(x))
    if got.shape != expected.shape:
        raise RuntimeError(f"exported model returned shape {got.shape} for input {x.shape}, "
                           f"the network returns {expected.shape}")
    return float(np.max(np.abs(got - expected)))


def export_network(net, path, file_format, size=None):
    """Export ``net`` (an inference SRCNN) to ``path`` atomically and check it; returns the check's max
    |difference| to ``net`` (None when not checked: AIR, or ONNX without onnxruntime)."""
    net.set_train(False)
    folder = os.path.dirname(os.path.abspath(path))
    # the model (float32 weights) plus the exporter's temporary copies and graph: checked first, so a full disk
    # is one line before any work, not a failure in MindSpore's writer
    needed = 3 * 4 * sum(int(np.prod(p.shape)) for p in net.get_parameters()) + (256 << 10)
    try:
        os.makedirs(folder, exist_ok=True)
        check_space(path, needed, "model")
        remove_stale_temp_dirs(folder, TEMP_PREFIX)  # left by a killed export (their lock is free)
        tmp_dir = str(make_owned_temp_dir(folder, TEMP_PREFIX))
    except OSError as err:
        raise UserError(f"cannot write {path}: folder {folder} is not writable ({err.strerror or err})") from None
    try:
        tmp_base = os.path.join(tmp_dir, "model")
        sizes = [size] if size else list(CHECK_SIZES)
        if file_format == "ONNX":
            produced = _export_onnx(net, size, tmp_base)
            diff = _check_onnx(produced, net, sizes)
        else:
            shape = [1, 1, size[0], size[1]] if size else [1, 1, None, None]
            dummy = ms.Tensor(np.zeros(shape, np.float32)) if size else ms.Tensor(shape=shape, dtype=ms.float32)
            ms.export(net, dummy, file_name=tmp_base, file_format=file_format)
            produced = tmp_base + EXTENSIONS[file_format]
            diff = _check_mindir(produced, net, sizes) if file_format == "MINDIR" else None
        if diff is not None and not diff <= TOLERANCE:
            raise RuntimeError(f"the exported {file_format} model differs from the network by {diff:.3g} "
                               f"(more than {TOLERANCE})")
        replace_atomic(produced, path)
    except OSError as err:
        if err.errno in DISK_FULL:
            raise disk_full(path, "model", needed) from None
        raise UserError(f"cannot write {path} ({err.strerror or err})") from None
    finally:
        release_temp_dir(tmp_dir)
    return diff


def run_export(cfg):
    """Export the checkpoint of ``cfg`` as ``cfg.file_format``; returns the written path."""
    file_format = cfg.file_format
    if file_format == "AIR" and cfg.device_target != "Ascend":
        raise UserError(f"file_format=AIR needs device_target=Ascend (AIR models are built with the Ascend "
                        f"toolchain; got device_target={cfg.device_target}): use file_format=MINDIR or ONNX")
    path = output_path(cfg.file_name, file_format)
    if os.path.isdir(path):
        raise UserError(f"file_name {cfg.file_name}: {path} is a folder, expected a model file name")
    check_output_file(path, "file_name")  # before any work
    size = _static_size(cfg)
    checkpoint = resolve_checkpoint(cfg)
    check_outputs_spare_inputs([("file_name", path)], [("checkpoint_path", checkpoint)]
                               + [("config_path", f) for f in cfg.config_files()])
    cfg, weights = checkpoint_settings(cfg, checkpoint)
    init_context(cfg.device_target, cfg.device_id)
    net, _ = network_from_checkpoint(checkpoint, inference_padding(cfg.padding), cfg.device_target,
                                     weights=weights)
    diff = export_network(net, path, file_format, size)
    if size:
        shape = f"[1,1,{size[0]},{size[1]}]"
    else:
        shape = "[batch,1,height,width] (dynamic)" if file_format == "ONNX" else "[1,1,height,width] (dynamic)"
    checked = "" if diff is None else f", max |difference| to the checkpoint's network {diff:.2g}"
    print(f"exported {checkpoint} (arch {net.arch}, n1={net.n1}, n2={net.n2}, padding {net.padding}) "
          f"as {file_format}, input {shape}{checked}")
    print(path, flush=True)
    return path
