"""Convert a model of the authors' MATLAB package (SRCNN_v1, e.g. model/9-5-5(ImageNet)/x3.mat) to a checkpoint.

    python src/convert_official_weights.py --mat_path=x3.mat --output=srcnn_955_x3.ckpt [--scale=3]

The MAT-file holds float64 weights_conv1 (f1^2, n1), biases_conv1 (n1, 1), weights_conv2 (n1, f2^2, n2) (or
(n1, n2) when f2 = 1), biases_conv2 (n2, 1), weights_conv3 (n2, f3^2), biases_conv3 (1, 1). Each kernel is
flattened column-major: W1[r + f1*c, o] = K1[o][r, c], W2[j, r + f2*c, o] = K2[o, j][r, c],
W3[i, r + f3*c] = K3[i][r, c]. MATLAB applies them as correlation (no flip) with replicate padding, which is
exactly this repository's SRCNN with padding=replicate. The architecture is read off the shapes.
"""
import math
import os

import numpy as np

import src  # noqa: E402,F401  (CPU kernel setting, before MindSpore loads)
from src.utils.errors import UserError  # noqa: E402

KEYS = ("weights_conv1", "biases_conv1", "weights_conv2", "biases_conv2", "weights_conv3", "biases_conv3")


def _side(count, what, path):
    side = math.isqrt(count)
    if side * side != count:
        raise UserError(f"{path}: {what} has {count} taps per filter, not a square kernel")
    return side


def weights_from_mat(mat, path="MAT-file"):
    """SRCNN parameters (name -> float32 array, this repo's layout) from the MATLAB arrays."""
    missing = [key for key in KEYS if key not in mat]
    if missing:
        raise UserError(f"{path} is not an SRCNN_v1 model: missing {', '.join(missing)}")
    w1, w2, w3 = (np.asarray(mat[k], np.float64) for k in ("weights_conv1", "weights_conv2", "weights_conv3"))
    if w1.ndim != 2 or w3.ndim != 2:
        raise UserError(f"{path}: weights_conv1 {w1.shape} and weights_conv3 {w3.shape} must be 2-D")
    f1, n1 = _side(w1.shape[0], "weights_conv1", path), w1.shape[1]
    n2, f3 = w3.shape[0], _side(w3.shape[1], "weights_conv3", path)
    if w2.ndim == 2:  # f2 = 1: MATLAB keeps (n1, n2)
        w2 = w2[:, None, :]
    if w2.ndim != 3 or w2.shape[0] != n1 or w2.shape[2] != n2:
        raise UserError(f"{path}: weights_conv2 has shape {w2.shape}, expected ({n1}, f2^2, {n2})")
    f2 = _side(w2.shape[1], "weights_conv2", path)
    conv1 = w1.reshape((f1, f1, n1), order="F").transpose(2, 0, 1)[:, None]
    conv2 = w2.reshape((n1, f2, f2, n2), order="F").transpose(3, 0, 1, 2)
    conv3 = w3.reshape((n2, f3, f3), order="F")[None]
    biases = [np.asarray(mat[k], np.float64).reshape(-1) for k in ("biases_conv1", "biases_conv2", "biases_conv3")]
    for bias, size, key in zip(biases, (n1, n2, 1), KEYS[1::2]):
        if bias.size != size:
            raise UserError(f"{path}: {key} has {bias.size} values, expected {size}")
    arrays = {"conv1.weight": conv1, "conv1.bias": biases[0], "conv2.weight": conv2, "conv2.bias": biases[1],
              "conv3.weight": conv3, "conv3.bias": biases[2]}
    return {name: value.astype(np.float32) for name, value in arrays.items()}, f"{f1}-{f2}-{f3}", n1, n2


def convert(mat_path, output, scale=None):
    # scipy imported here, not at the top: only the path that needs it loads it
    import scipy.io

    if not os.path.isfile(mat_path):
        raise UserError(f"mat_path {mat_path} does not exist")
    try:
        mat = scipy.io.loadmat(mat_path)
    except (ValueError, OSError, TypeError) as err:
        raise UserError(f"{mat_path} is not a readable MATLAB v5 MAT-file ({str(err).splitlines()[0][:80]})") from None
    weights, arch, n1, n2 = weights_from_mat(mat, mat_path)
    # imported here, not at the top: the command checks its inputs before MindSpore starts (seconds)
    from src.model.checkpoint import arch_from_weights, load_weights, save_checkpoint
    from src.model.network import build_network

    arch_from_weights(weights, mat_path)  # one of 9-1-5, 9-3-5, 9-5-5
    net = build_network(arch, n1, n2, "replicate", training=False)
    load_weights(net, weights, mat_path)
    meta = {"arch": arch, "n1": n1, "n2": n2, "padding": "replicate", "source": os.path.basename(mat_path)}
    if scale:
        meta["scale"] = scale
    save_checkpoint(net, output, meta)
    return arch, n1, n2
