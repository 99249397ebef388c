"""Building SRCNN for a device, and moving its weights in and out of checkpoint files.

MindSpore is imported where a file is read or written, so the checks before that (paths, records) run
without its start-up."""
import os

import numpy as np

from src import REPO_ROOT
from src.model.arch import ARCHS, PADDINGS
from src.utils.errors import IN_FLIGHT, UserError
from src.utils.file_io import DISK_FULL, atomic_output, check_space, disk_full
from src.utils.progress import warn

PARAM_NAMES = ("conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "conv3.weight", "conv3.bias")


def read_checkpoint(path):
    """All entries of a checkpoint file: name -> numpy array (or str). UserError if it is not one."""

    if not path:
        raise UserError("checkpoint_path is empty: give --checkpoint_path=FILE.ckpt")
    if not os.path.isfile(path):
        raise UserError(f"checkpoint {path} does not exist")
    import mindspore as ms

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
    import mindspore as ms

    for name in PARAM_NAMES:
        params[name].set_data(ms.Tensor(np.asarray(weights[name], np.float32)))


def save_checkpoint(entries, path, meta=None):
    """Write [{'name', 'data'}] (or a Cell) and metadata atomically (src.utils.file_io.atomic_output), so a
    kill at any moment leaves either the old file or the complete new one."""
    import mindspore as ms

    params = entries.get_parameters() if hasattr(entries, "get_parameters") else [e["data"] for e in entries]
    needed = sum(int(np.prod(p.shape)) * 8 for p in params) + (64 << 10)  # float32 data + generous framing
    try:
        check_space(path, needed, "checkpoint")  # else MindSpore logs a CRITICAL line and leaves a partial file
        # '.ckpt': MindSpore appends it to any other name; the train loop removes '.tmp_*' files a kill left
        with atomic_output(path, suffix=".ckpt") as tmp:
            partial = tmp.with_suffix(".tmp")  # MindSpore's own temporary name for ``tmp``
            IN_FLIGHT.add(str(partial))  # removed by an interrupt (src/utils/errors.py)
            try:
                ms.save_checkpoint(entries, str(tmp), append_dict=dict(meta or {}))
            finally:
                partial.unlink(missing_ok=True)
                IN_FLIGHT.discard(str(partial))
    except OSError as err:
        if err.errno in DISK_FULL:
            raise disk_full(path, "checkpoint", needed) from None
        raise UserError(f"cannot write checkpoint {path} ({err.strerror or err})") from None


RECORD_KEYS = ("arch", "n1", "n2", "padding", "scale")


def checkpoint_record(weights, path="checkpoint"):
    """What a checkpoint says about itself: arch, n1, n2 read off its weights (checked against the ones it
    records), and the padding and scale it records (absent if it does not). UserError naming the key for a
    recorded value of the wrong type or out of range, or one that contradicts the weights."""

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


# file prefix of the shipped models of each pretrained_family (config.yaml)
SHIPPED_PREFIX = {"9-1-5": "srcnn", "9-5-5": "srcnn_955"}


def resolve_checkpoint(cfg):
    """The checkpoint to use: --checkpoint_path, else the shipped model of ``pretrained_family`` for the scale
    (pretrained/srcnn_x<scale>.ckpt for 9-1-5, pretrained/srcnn_955_x<scale>.ckpt for 9-5-5)."""
    if cfg.checkpoint_path:
        path = cfg.checkpoint_path
        if not os.path.exists(path):
            raise UserError(f"checkpoint_path {path} does not exist")
        if not os.path.isfile(path):
            raise UserError(f"checkpoint_path {path} is not a file, expected a .ckpt file")
        return path
    shipped = os.path.join(REPO_ROOT, "pretrained",
                           f"{SHIPPED_PREFIX[cfg.pretrained_family]}_x{cfg.scale}.ckpt")
    if os.path.isfile(shipped):
        return shipped
    raise UserError(f"no checkpoint: give --checkpoint_path=FILE.ckpt (no shipped {shipped} either)")


def checkpoint_settings(cfg, checkpoint):
    """(cfg, weights): ``cfg`` with the checkpoint's own arch, n1, n2, padding and scale (src.model.checkpoint.
    checkpoint_record) where the user gave none, and the checkpoint's entries. A value the user gave that
    contradicts the checkpoint is a UserError naming both; for padding and scale --override_checkpoint=true
    uses the given value instead, with a warning (arch, n1 and n2 are the weights' shapes: never overridable)."""

    weights = read_checkpoint(checkpoint)
    record = checkpoint_record(weights, checkpoint)
    changes = {}
    for key in RECORD_KEYS:
        if key not in record or getattr(cfg, key) == record[key]:
            continue
        given = getattr(cfg, key)
        if not cfg.given(key):
            changes[key] = record[key]
        elif key in ("arch", "n1", "n2"):
            raise UserError(f"{key}={given!r} (from {cfg.source(key)}) contradicts {checkpoint}, whose weights are "
                            f"{key}={record[key]!r}: leave {key} out (the checkpoint's is used)")
        elif not cfg.override_checkpoint:
            raise UserError(f"{key}={given!r} (from {cfg.source(key)}) contradicts {checkpoint}, trained with "
                            f"{key}={record[key]!r}: leave {key} out to use the checkpoint's, or give "
                            f"--override_checkpoint=true to use {given!r} anyway")
        else:
            warn(f"{key}={given!r} used although {checkpoint} was trained with {key}={record[key]!r} "
                 "(override_checkpoint=true)")
    return (cfg.replace(**changes) if changes else cfg), weights
