"""Building SRCNN for a device, and moving its weights in and out of checkpoint files."""
import os
import tempfile

import numpy as np

from src.errors import IN_FLIGHT, UserError
from src.srcnn import ARCHS, SRCNN
from src.srcnn_gemm import SRCNNGemm

PARAM_NAMES = ("conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "conv3.weight", "conv3.bias")


def build_network(arch="9-1-5", n1=64, n2=32, padding="replicate", device_target="CPU", training=True,
                  amp_level="O0"):
    """The network for a device. Training on CPU: the fused kernel's training operators (src/fused_cpu.py,
    SRCNNFused), or where it cannot be built (no C++ compiler) or under mixed precision the batched-GEMM
    formulation (src/srcnn_gemm.py); both 2-5x faster steps than nn.Conv2d (benchmarks/README.md). Plain
    nn.Conv2d elsewhere. All share the Parameters (names, shapes, init), so checkpoints are
    interchangeable. Inference always builds plain nn.Conv2d, which compiles once for any image size and
    exports to MINDIR/ONNX; on CPU src.inference.Predictor runs it through the fused kernel."""
    if not training or device_target != "CPU":
        return SRCNN(arch, n1, n2, padding)
    if amp_level == "O0":
        from src.fused_cpu import SRCNNFused
        from src.kernel_build import KernelUnavailable, note_fallback

        try:
            return SRCNNFused(arch, n1, n2, padding)
        except KernelUnavailable as reason:
            note_fallback(reason, "the batched-matmul training network (SRCNNGemm)")
    return SRCNNGemm(arch, n1, n2, padding)


def inference_padding(padding):
    """A 'valid'-trained network is applied with replicate padding, as the authors' test code does."""
    return "replicate" if padding == "valid" else padding


def read_checkpoint(path):
    """All entries of a checkpoint file: name -> numpy array (or str). UserError if it is not one."""
    import mindspore as ms

    if not path:
        raise UserError("checkpoint_path is empty: give --checkpoint_path=FILE.ckpt")
    if not os.path.isfile(path):
        raise UserError(f"checkpoint {path} does not exist")
    try:
        entries = ms.load_checkpoint(path)
    except (ValueError, RuntimeError, OSError, TypeError):
        size = os.path.getsize(path)
        raise UserError(f"checkpoint {path} is not a readable MindSpore checkpoint (truncated or corrupt, "
                        f"{size} bytes)") from None
    return {k: (v if isinstance(v, str) else v.asnumpy()) for k, v in entries.items()}


def arch_from_weights(weights, path="checkpoint"):
    """(arch, n1, n2) read off the weight shapes; UserError naming the shape that does not fit SRCNN."""
    missing = [name for name in PARAM_NAMES if name not in weights]
    if missing:
        raise UserError(f"{path} is not an SRCNN checkpoint: missing {', '.join(missing)}")
    w1, w2, w3 = (np.shape(weights[f"conv{i}.weight"]) for i in (1, 2, 3))
    n1, n2 = w1[0], w2[0]
    arch = f"{w1[-1]}-{w2[-1]}-{w3[-1]}"
    expected = {"conv1.weight": (n1, 1, w1[-1], w1[-1]), "conv2.weight": (n2, n1, w2[-1], w2[-1]),
                "conv3.weight": (1, n2, w3[-1], w3[-1]), "conv1.bias": (n1,), "conv2.bias": (n2,),
                "conv3.bias": (1,)}
    for name, shape in expected.items():
        if tuple(np.shape(weights[name])) != shape:
            raise UserError(f"{path}: {name} has shape {tuple(np.shape(weights[name]))}, expected {shape} "
                            "for an SRCNN")
    if arch not in ARCHS:
        raise UserError(f"{path}: kernel sizes {arch} are not one of {', '.join(ARCHS)}")
    return arch, int(n1), int(n2)


def widen_middle_filter(weights, arch, path="checkpoint"):
    """9-1-5 weights as the same function in a network with a wider middle filter (``arch``, e.g. 9-5-5):
    the 1x1 filter becomes the centre tap, the other taps are zero (Net2Net-style; training then uses them).
    UserError unless the checkpoint differs from ``arch`` in the middle filter size only, and is narrower."""
    have = arch_from_weights(weights, path)[0].split("-")
    want = arch.split("-")
    if have[0] != want[0] or have[2] != want[2] or int(have[1]) > int(want[1]):
        raise UserError(f"pre_trained_widen: {path} is {'-'.join(have)}, which cannot be widened to arch={arch} "
                        "(only the middle filter can grow, e.g. 9-1-5 to 9-5-5)")
    w2 = np.asarray(weights["conv2.weight"], np.float32)
    k_old, k_new = w2.shape[-1], int(want[1])
    wide = np.zeros(w2.shape[:2] + (k_new, k_new), np.float32)
    start = (k_new - k_old) // 2
    wide[:, :, start:start + k_old, start:start + k_old] = w2
    return {**weights, "conv2.weight": wide}


def check_finite(name, value, path="checkpoint"):
    """UserError naming the parameter if ``value`` holds NaN or Inf: such weights give NaN outputs, and a
    PSNR of NaN outputs is a meaningless number."""
    value = np.asarray(value)
    if value.dtype.kind == "f" and not np.isfinite(value).all():
        bad = int(value.size - np.isfinite(value).sum())
        raise UserError(f"{path}: parameter {name} holds {bad} NaN/Inf value(s) of {value.size}: the weights are "
                        "damaged (or their training diverged); use an earlier checkpoint")


def load_weights(net, weights, path="checkpoint"):
    """Copy SRCNN weights (name -> array) into `net`; UserError naming expected and found shapes, or a
    parameter holding NaN/Inf."""
    import mindspore as ms

    params = {p.name: p for p in net.get_parameters()}
    for name in PARAM_NAMES:
        if name not in weights:
            raise UserError(f"{path} has no {name}")
        expected = tuple(params[name].shape)
        found = tuple(np.shape(weights[name]))
        if found != expected:
            raise UserError(f"{path}: {name} has shape {found}, the network (arch={net.arch}, n1={net.n1}, "
                            f"n2={net.n2}) expects {expected}")
        check_finite(name, weights[name], path)
    for name in PARAM_NAMES:
        params[name].set_data(ms.Tensor(np.asarray(weights[name], np.float32)))


def save_checkpoint(entries, path, meta=None):
    """Write [{'name', 'data'}] (or a Cell) and metadata atomically: a temporary file, then a rename, so
    a kill at any moment leaves either the old file or the complete new one."""
    import mindspore as ms

    from src.file_io import DISK_FULL, check_space, disk_full

    folder = os.path.dirname(os.path.abspath(path))
    params = entries.get_parameters() if hasattr(entries, "get_parameters") else [e["data"] for e in entries]
    needed = sum(int(np.prod(p.shape)) * 8 for p in params) + (64 << 10)  # float32 data + generous framing
    try:
        os.makedirs(folder, exist_ok=True)
        check_space(path, needed, "checkpoint")  # else MindSpore logs a CRITICAL line and leaves a partial file
        fd, tmp = tempfile.mkstemp(prefix=".tmp_", suffix=".ckpt", dir=folder)
        os.close(fd)
    except OSError as err:
        raise UserError(f"cannot write checkpoint {path} ({err.strerror or err})") from None
    partial = os.path.splitext(tmp)[0] + ".tmp"  # MindSpore's own temporary name for ``tmp``
    IN_FLIGHT.update((tmp, partial))  # removed by an interrupt (src/errors.py)
    try:
        ms.save_checkpoint(entries, tmp, append_dict=dict(meta or {}))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as err:
        for name in (tmp, partial):
            if os.path.exists(name):
                os.remove(name)
        if err.errno in DISK_FULL:
            raise disk_full(path, "checkpoint", needed) from None
        raise UserError(f"cannot write checkpoint {path} ({err.strerror or err})") from None
    finally:
        for name in (tmp, partial):
            if os.path.exists(name):
                os.remove(name)
        IN_FLIGHT.difference_update((tmp, partial))


RECORD_KEYS = ("arch", "n1", "n2", "padding", "scale")


def checkpoint_record(weights, path="checkpoint"):
    """What a checkpoint says about itself: arch, n1, n2 read off its weights (checked against the ones it
    records), and the padding and scale it records (absent if it does not). UserError naming the key for a
    recorded value of the wrong type or out of range, or one that contradicts the weights."""
    from src.srcnn import PADDINGS

    arch, n1, n2 = arch_from_weights(weights, path)
    record = {"arch": arch, "n1": n1, "n2": n2}
    allowed = {"arch": ARCHS, "padding": PADDINGS, "scale": (2, 3, 4)}
    for key in RECORD_KEYS:
        if key not in weights:
            continue
        value = weights[key]
        if isinstance(value, np.ndarray) and value.ndim == 0:
            value = value.item()
        want = str if key in ("arch", "padding") else int
        if type(value) is not want or (key in allowed and value not in allowed[key]):
            choices = f" ({', '.join(map(str, allowed[key]))})" if key in allowed else ""
            raise UserError(f"{path}: its recorded {key} is {value!r} ({type(value).__name__}), expected "
                            f"{'a string' if want is str else 'an int'}{choices}: not a checkpoint this "
                            "repository wrote")
        if key in record and value != record[key]:
            raise UserError(f"{path}: it records {key}={value!r} but its weights are {key}={record[key]!r}: the "
                            "checkpoint is inconsistent")
        record[key] = value
    return record


def network_from_checkpoint(path, padding="replicate", device_target="CPU", training=False, weights=None):
    """An SRCNN whose architecture is read off the checkpoint, with its weights loaded; plus the metadata.
    ``weights``: the checkpoint's entries if already read (read_checkpoint)."""
    weights = read_checkpoint(path) if weights is None else weights
    arch, n1, n2 = arch_from_weights(weights, path)
    net = build_network(arch, n1, n2, padding, device_target, training=training)
    load_weights(net, weights, path)
    meta = {k: v for k, v in weights.items() if k not in PARAM_NAMES and np.ndim(v) == 0}
    return net, meta
