import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

# The fused CPU kernels are built with the system C++ compiler; without one the code falls back (tested) and
# the tests of the kernels themselves are skipped, saying why.
sys.path.insert(0, str(REPO_ROOT))
from src.model.cpu.kernel_build import find_compiler  # noqa: E402  (no MindSpore import)

requires_compiler = pytest.mark.skipif(find_compiler() is None, reason="no C++ compiler for the fused CPU kernels")

# Benchmark images live outside the repository; SRCNN_DATASETS overrides where.
DATASETS = Path(os.environ.get("SRCNN_DATASETS", REPO_ROOT.parent / "shared" / "datasets"))


# Markers by where a test lives and what it uses (pytest.ini declares them): `-m unit`, `-m "not needs_shared"`...
ROOT_FIXTURES = {"two_hosts", "small_disk"}  # network namespaces, a tmpfs mount
# Files whose tests mostly take 20-90 s each on the 2-core machine (measured with --durations): launches of
# several MindSpore processes, the Lite converter and C++ harness on Set5, packaging and tabling a trained run.
SLOW_FILES = {"test_distributed.py", "test_lite_deploy.py", "test_release.py"}


# The longest files, longest first (measured with --durations): scripts/run_tests.sh hands whole files to two
# pytest-xdist workers in collection order, so starting these early keeps one of them from finishing alone.
LONGEST_FIRST = ["test_trust.py", "test_distributed.py", "test_bad_inputs.py", "test_release.py",
                 "test_fused_cpu.py", "test_deploy.py", "test_lite_deploy.py", "test_plain_install.py"]


def _tier(item):
    return Path(str(item.path)).relative_to(REPO_ROOT / "tests").parts[0]


def _run_order(item):
    """Unit tier first, then the integration files longest first; a file's own tests keep their order."""
    name = item.path.name
    return (_tier(item) != "unit", LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST))


def pytest_collection_modifyitems(config, items):
    items.sort(key=_run_order)  # stable: the order within a file is kept
    for item in items:
        tier = _tier(item)
        if tier in ("unit", "integration"):
            item.add_marker(tier)
        if "datasets_dir" in item.fixturenames:
            item.add_marker("needs_shared")
        if ROOT_FIXTURES & set(item.fixturenames):
            item.add_marker("needs_root")
        if item.path.name in SLOW_FILES:
            item.add_marker("slow")


@pytest.fixture(scope="session")
def repo_root():
    return REPO_ROOT


@pytest.fixture(scope="session")
def datasets_dir():
    if not (DATASETS / "Set5").is_dir():
        pytest.fail(f"benchmark images not found at {DATASETS} (set SRCNN_DATASETS)")
    return DATASETS


def save_set5_crops(datasets_dir, folder, names, box):
    """Crops ``box`` (left, upper, right, lower) of the Set5 images ``names`` as RGB PNGs in ``folder``: the
    small training sets of the tests."""
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        with Image.open(datasets_dir / "Set5" / f"{name}.png") as image:
            image.convert("RGB").crop(box).save(folder / f"{name}.png")
    return folder


def save_near_identity_checkpoint(path, scale=2):
    """A 9-1-5 checkpoint (n1=16, n2=8) whose filter 0 of each layer copies its centre tap, plus small noise:
    a network with realistic outputs, made without training."""
    import mindspore as ms
    import numpy as np

    import src  # noqa: F401  (CPU kernel setting before MindSpore loads)
    from src.model.checkpoint import save_checkpoint
    from src.model.network import build_network

    ms.set_seed(1)
    net = build_network("9-1-5", 16, 8, "replicate", training=False)
    centre = {"conv1.weight": (0, 0, 4, 4), "conv2.weight": (0, 0, 0, 0), "conv3.weight": (0, 0, 2, 2)}
    for param in net.get_parameters():
        value = param.asnumpy() * 0.02
        if param.name in centre:
            value[centre[param.name]] += 1.0
        param.set_data(ms.Tensor(value.astype(np.float32)))
    save_checkpoint(net, str(path), {"scale": scale})
    return path


# The fused kernel's algorithms for the 5x5 hidden layer (SRCNN_CPU_ALGO) and their float32 tolerance against
# nn.Conv2d: the direct sums round like nn.Conv2d's; Winograd's transforms add ~3e-6 relative error.
ALGO_TOLERANCE = {"direct": 1e-5, "winograd": 1e-4}


def randomize(net, seed, std=0.2):
    """Random normal weights for every trainable Parameter of ``net`` (seeded)."""
    import mindspore as ms
    import numpy as np

    rng = np.random.default_rng(seed)
    for param in net.trainable_params():
        param.set_data(ms.Tensor(rng.normal(0, std, param.shape).astype(np.float32)))


def rel_err(a, b):
    """Largest absolute difference relative to the largest magnitude of ``a``."""
    import numpy as np

    return float(np.abs(a - b).max() / max(np.abs(a).max(), 1e-12))


def loss_and_grads(net, x, target):
    """(output, gradients of the six Parameters) of the MSE between net(x) and the matching part of target."""
    import mindspore as ms
    from mindspore import ops

    def forward(x, target):
        out = net(x)
        return ops.mean(ops.square(out - target[:, :, :out.shape[2], :out.shape[3]])), out

    grad_fn = ms.value_and_grad(forward, None, net.trainable_params(), has_aux=True)
    (loss, out), grads = grad_fn(x, target)
    return out.asnumpy(), [g.asnumpy() for g in grads]


def assert_training_matches_conv2d(cls, arch, padding, n1, n2, shapes, weight_seed, input_seed, std=0.2,
                                   tolerance=1e-5):
    """A CPU training formulation ``cls`` against nn.Conv2d with the same random weights: for each input
    shape, the outputs and the six gradients (shapes equal, relative error <= tolerance). Returns the
    outputs' shapes."""
    import mindspore as ms
    import numpy as np

    from src.model.checkpoint import PARAM_NAMES, load_weights
    from src.model.srcnn import SRCNN

    plain = SRCNN(arch, n1=n1, n2=n2, padding=padding)
    randomize(plain, weight_seed, std)
    fast = cls(arch, n1=n1, n2=n2, padding=padding)
    load_weights(fast, {p.name: p.asnumpy() for p in plain.trainable_params()})
    rng = np.random.default_rng(input_seed)
    out_shapes = []
    for shape in shapes:
        x = ms.Tensor(rng.random(shape).astype(np.float32))
        target = ms.Tensor(rng.random(shape).astype(np.float32))
        out_plain, grads_plain = loss_and_grads(plain, x, target)
        out_fast, grads_fast = loss_and_grads(fast, x, target)
        assert out_fast.shape == out_plain.shape and rel_err(out_plain, out_fast) <= tolerance, shape
        for name, g_plain, g_fast in zip(PARAM_NAMES, grads_plain, grads_fast):
            assert g_plain.shape == g_fast.shape and rel_err(g_plain, g_fast) <= tolerance, (name, shape)
        out_shapes.append(out_plain.shape)
    return out_shapes


def one_line_error(proc, *needles):
    """The run failed with exactly one stderr line, ``error: ...``, containing every needle."""
    assert proc.returncode != 0, proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def run_entry(args, env=None, check=True, cwd=REPO_ROOT, timeout=900):
    """Run an entry point of the repository (``.py`` with this interpreter, ``.sh`` with bash); with ``check``,
    assert it exited 0 and show the end of its output otherwise."""
    import subprocess

    args = [str(a) for a in args]
    if args[0].endswith(".py"):
        args = [sys.executable] + args
    elif args[0].endswith(".sh"):
        args = ["bash"] + args
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if check:
        assert proc.returncode == 0, f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n" \
                                     f"{proc.stderr[-3000:]}"
    return proc


def run_in_session(argv, timeout, **kwargs):
    """subprocess.run for a launcher: in a session of its own, and its whole process group killed on timeout
    (subprocess.run would kill bash alone and leave what it started running)."""
    import signal
    import subprocess

    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            **kwargs)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except BaseException:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.communicate()
        raise
    return subprocess.CompletedProcess(argv, proc.returncode, stdout, stderr)


def free_port():
    """A TCP port free on 127.0.0.1 right now (for a server a test starts)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def read_json(path):
    import json

    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


class held_flock:
    """Another process holding a flock on ``path`` (exclusive, or ``shared``) from entry until exit: what a
    concurrent run of the repository's scripts or tests does to a cache it is using."""

    def __init__(self, path, shared=False):
        self.path, self.mode = str(path), "LOCK_SH" if shared else "LOCK_EX"

    def __enter__(self):
        import subprocess

        hold = (f"import fcntl, sys; f = open(sys.argv[1], 'a'); fcntl.flock(f, fcntl.{self.mode}); "
                "print('locked', flush=True); sys.stdin.readline()")
        self.proc = subprocess.Popen([sys.executable, "-I", "-c", hold, self.path], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline() == "locked\n"
        return self

    def release(self):
        if self.proc.returncode is None:
            self.proc.communicate("done\n", timeout=60)  # it ends, its lock with it

    def __exit__(self, *exc):
        self.release()


# ---- a float64 numpy SRCNN (forward and backward), independent of MindSpore and of the kernels: the reference
# for the kernels' operators where float32 implementations may disagree at ReLU kinks (see test_fused_cpu.py)

def _pad64(a, p, padding):
    import numpy as np

    if p == 0 or padding == "valid":
        return a
    return np.pad(a, ((0, 0), (0, 0), (p, p), (p, p)), mode="edge" if padding == "replicate" else "constant")


def _unpad64(g, p, padding):
    """The gradient of a padded plane folded back onto the plane (replicate: onto the edge pixels copied)."""
    import numpy as np

    if p == 0 or padding == "valid":
        return g
    if padding == "zeros":
        return g[:, :, p:-p, p:-p]
    h, w = g.shape[2] - 2 * p, g.shape[3] - 2 * p
    out = np.zeros(g.shape[:2] + (h, w))
    rows, cols = np.clip(np.arange(-p, h + p), 0, h - 1), np.clip(np.arange(-p, w + p), 0, w - 1)
    np.add.at(out, (slice(None), slice(None), rows[:, None], cols[None, :]), g)
    return out


def _conv64(padded, w, b):
    import numpy as np
    from numpy.lib.stride_tricks import sliding_window_view

    windows = sliding_window_view(padded, w.shape[2:], axis=(2, 3))  # N C H W k k
    return np.einsum("nchwij,ocij->nohw", windows, w, optimize=True) + b[None, :, None, None]


def srcnn_float64(weights, x, padding):
    """Forward in float64: (output, [padded inputs of layers 1-3], [pre-activations of layers 1-2])."""
    import numpy as np

    a, inputs, pre = np.asarray(x, np.float64), [], []
    for i in (1, 2, 3):
        w = np.asarray(weights[f"conv{i}.weight"], np.float64)
        inputs.append(_pad64(a, (w.shape[2] - 1) // 2, padding))
        z = _conv64(inputs[-1], w, np.asarray(weights[f"conv{i}.bias"], np.float64))
        if i < 3:
            pre.append(z)
        a = np.maximum(z, 0) if i < 3 else z
    return a, inputs, pre


def srcnn_backward_float64(weights, inputs, masks, dy, padding):
    """The six gradients (PARAM_NAMES order) in float64 for the output gradient dy, the layers' padded inputs
    and the ReLU derivatives masks (of layers 1 and 2, NCHW, 1 where the activation is positive)."""
    import numpy as np
    from numpy.lib.stride_tricks import sliding_window_view

    grads, g = [None] * 6, np.asarray(dy, np.float64)
    for i in (2, 1, 0):
        w = np.asarray(weights[f"conv{i + 1}.weight"], np.float64)
        k, (h, wd) = w.shape[2], g.shape[2:]
        windows = sliding_window_view(inputs[i], (k, k), axis=(2, 3))
        grads[2 * i], grads[2 * i + 1] = np.einsum("nchwij,nohw->ocij", windows, g, optimize=True), g.sum((0, 2, 3))
        if i:
            padded_grad = np.zeros(inputs[i].shape)
            for ky in range(k):
                for kx in range(k):
                    padded_grad[:, :, ky:ky + h, kx:kx + wd] += np.einsum("nohw,oc->nchw", g, w[:, :, ky, kx])
            g = _unpad64(padded_grad, (k - 1) // 2, padding) * masks[i - 1]
    return grads
