"""src/convert_official_weights.py on MAT-files written here in the SRCNN_v1 layout from a known network."""
import subprocess
import sys

import numpy as np
import pytest
import scipy.io
from scipy import ndimage

REPO = __import__("pathlib").Path(__file__).resolve().parents[2]


def matlab_srcnn(img, k1, b1, k2, b2, k3, b3):
    """The authors' MATLAB forward (SRCNN.m): imfilter(..., 'same', 'replicate') = correlation, edge padding."""
    def corr(x, k):
        return ndimage.correlate(x, k, mode="nearest")

    h1 = np.stack([np.maximum(corr(img, k1[o]) + b1[o], 0) for o in range(len(k1))])
    h2 = np.stack([np.maximum(sum(corr(h1[j], k2[o, j]) for j in range(h1.shape[0])) + b2[o], 0)
                   for o in range(k2.shape[0])])
    return sum(corr(h2[i], k3[i]) for i in range(h2.shape[0])) + b3


def write_mat(path, k1, b1, k2, b2, k3, b3):
    """Flatten as the SRCNN_v1 package does: W1[r + f1*c, o] = K1[o][r, c], and so on (column-major)."""
    n1, f1 = k1.shape[0], k1.shape[1]
    n2, f2 = k2.shape[0], k2.shape[2]
    f3 = k3.shape[1]
    w1 = np.stack([k1[o].reshape(-1, order="F") for o in range(n1)], axis=1)
    w2 = np.stack([np.stack([k2[o, j].reshape(-1, order="F") for o in range(n2)], axis=1) for j in range(n1)])
    w3 = np.stack([k3[i].reshape(-1, order="F") for i in range(n2)])
    if f2 == 1:
        w2 = w2[:, 0, :]
    scipy.io.savemat(path, {"weights_conv1": w1, "biases_conv1": b1[:, None], "weights_conv2": w2,
                            "biases_conv2": b2[:, None], "weights_conv3": w3, "biases_conv3": np.array([[b3]])})
    assert w1.shape == (f1 * f1, n1) and w3.shape == (n2, f3 * f3)


@pytest.mark.parametrize("f2", [1, 5])
def test_converted_checkpoint_reproduces_the_matlab_forward(tmp_path, f2):
    rng = np.random.default_rng(f2)
    n1, n2 = 6, 4
    # asymmetric kernels, so a flip or a transposition would show
    k1, b1 = rng.normal(0, 0.1, (n1, 9, 9)), rng.normal(0, 0.1, n1)
    k2, b2 = rng.normal(0, 0.2, (n2, n1, f2, f2)), rng.normal(0, 0.1, n2)
    k3, b3 = rng.normal(0, 0.2, (n2, 5, 5)), 0.05
    mat, ckpt = tmp_path / "x3.mat", tmp_path / "x3.ckpt"
    write_mat(mat, k1, b1, k2, b2, k3, b3)
    proc = subprocess.run([sys.executable, "src/convert_official_weights.py", f"--mat_path={mat}",
                           f"--output={ckpt}", "--scale=3"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"SRCNN 9-{f2}-5 (n1={n1}, n2={n2})" in proc.stdout

    import src  # noqa: F401
    from src.model_utils.device import init_context

    init_context("CPU")
    import mindspore as ms

    from src.model.network import network_from_checkpoint

    net, meta = network_from_checkpoint(str(ckpt), padding="replicate", training=False)
    assert (net.arch, net.n1, net.n2, int(meta["scale"])) == (f"9-{f2}-5", n1, n2, 3)
    img = rng.random((23, 19))
    expected = matlab_srcnn(img, k1, b1, k2, b2, k3, b3)
    got = net(ms.Tensor(img[None, None].astype(np.float32))).asnumpy()[0, 0]
    np.testing.assert_allclose(got, expected, atol=2e-5)


def test_not_an_srcnn_mat_file_is_one_line(tmp_path):
    mat = tmp_path / "other.mat"
    scipy.io.savemat(mat, {"weights_conv1": np.zeros((81, 4))})
    proc = subprocess.run([sys.executable, "src/convert_official_weights.py", f"--mat_path={mat}",
                           f"--output={tmp_path / 'o.ckpt'}"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(f"error: {mat} is not an SRCNN_v1 model: missing")
    assert not (tmp_path / "o.ckpt").exists()


@pytest.mark.parametrize("flags, message", [
    ([], "error: mat_path is empty: give --mat_path=FILE.mat"),
    (["--mat_path=x3.mat"], "error: output is empty: give --output=FILE.ckpt"),
    (["--mat_path=x3.mat", "--output=o.ckpt", "--scale=5"], "error: config key 'scale' must be one of 2, 3, 4"),
    (["--mat_path=x3.mat", "--output=o.ckpt", "--lr=0.1"], "error: config key 'lr' is not used by "
                                                           "convert_official_weights.py"),
])
def test_bad_flags_are_one_line(tmp_path, flags, message):
    proc = subprocess.run([sys.executable, str(REPO / "src/convert_official_weights.py"), *flags], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert proc.stderr.startswith(message), proc.stderr
    assert not (tmp_path / "o.ckpt").exists()


def test_scale_is_recorded_only_when_given(tmp_path):
    rng = np.random.default_rng(3)
    mat = tmp_path / "x3.mat"
    write_mat(mat, rng.normal(0, 0.1, (4, 9, 9)), rng.normal(0, 0.1, 4), rng.normal(0, 0.1, (2, 4, 1, 1)),
              rng.normal(0, 0.1, 2), rng.normal(0, 0.1, (2, 5, 5)), 0.0)
    for name, flags in (("given.ckpt", ["--scale=4"]), ("unknown.ckpt", [])):
        proc = subprocess.run([sys.executable, "src/convert_official_weights.py", f"--mat_path={mat}",
                               f"--output={tmp_path / name}", *flags], cwd=REPO, capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
    import src  # noqa: F401
    from src.model_utils.device import init_context

    init_context("CPU")
    from src.model.network import network_from_checkpoint

    assert int(network_from_checkpoint(str(tmp_path / "given.ckpt"), padding="replicate", training=False)[1]["scale"]) == 4
    assert "scale" not in network_from_checkpoint(str(tmp_path / "unknown.ckpt"), padding="replicate",
                                                  training=False)[1]
