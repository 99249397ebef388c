"""SRCNN network: shapes, padding modes, the GEMM CPU formulation against plain nn.Conv2d, checkpoints."""
import itertools

import numpy as np
import pytest

import src  # noqa: F401
from src.errors import UserError

ms = pytest.importorskip("mindspore")
from mindspore import ops  # noqa: E402

from src.device import init_context  # noqa: E402
from src.network import (PARAM_NAMES, arch_from_weights, build_network, load_weights,  # noqa: E402
                         network_from_checkpoint, read_checkpoint, save_checkpoint)
from src.srcnn import ARCHS, PADDINGS, SRCNN, border  # noqa: E402
from src.srcnn_gemm import SRCNNGemm  # noqa: E402

init_context("CPU")


def randomize(net, seed):
    rng = np.random.default_rng(seed)
    for param in net.trainable_params():
        param.set_data(ms.Tensor(rng.normal(0, 0.2, param.shape).astype(np.float32)))


def loss_and_grads(net, x, target):
    def forward(x, target):
        out = net(x)
        return ops.mean(ops.square(out - target[:, :, :out.shape[2], :out.shape[3]])), out

    grad_fn = ms.value_and_grad(forward, None, net.trainable_params(), has_aux=True)
    (loss, out), grads = grad_fn(x, target)
    return out.asnumpy(), [g.asnumpy() for g in grads]


def rel_err(a, b):
    return float(np.abs(a - b).max() / max(np.abs(a).max(), 1e-12))


@pytest.mark.parametrize("arch,padding", list(itertools.product(ARCHS, PADDINGS)))
def test_gemm_formulation_matches_conv2d(arch, padding):
    plain = SRCNN(arch, n1=16, n2=8, padding=padding)
    fast = SRCNNGemm(arch, n1=16, n2=8, padding=padding)
    randomize(plain, 3)
    load_weights(fast, {p.name: p.asnumpy() for p in plain.trainable_params()})
    rng = np.random.default_rng(7)
    x = ms.Tensor(rng.random((3, 1, 29, 26)).astype(np.float32))
    target = ms.Tensor(rng.random((3, 1, 29, 26)).astype(np.float32))
    out_plain, grads_plain = loss_and_grads(plain, x, target)
    out_fast, grads_fast = loss_and_grads(fast, x, target)
    expected = (29, 26) if padding != "valid" else (29 - 2 * border(arch), 26 - 2 * border(arch))
    assert out_plain.shape[2:] == expected and out_fast.shape == out_plain.shape
    assert rel_err(out_plain, out_fast) <= 1e-5
    for name, g_plain, g_fast in zip(PARAM_NAMES, grads_plain, grads_fast):
        assert g_plain.shape == g_fast.shape
        assert rel_err(g_plain, g_fast) <= 1e-5, name


def test_parameters_and_init_are_shared_between_formulations():
    ms.set_seed(5)
    plain = build_network("9-5-5", padding="zeros", device_target="GPU")
    ms.set_seed(5)
    fast = build_network("9-5-5", padding="zeros", device_target="CPU")
    assert isinstance(fast, SRCNNGemm) and type(plain) is SRCNN
    names = [p.name for p in plain.trainable_params()]
    assert names == [p.name for p in fast.trainable_params()] == list(PARAM_NAMES)
    for a, b in zip(plain.trainable_params(), fast.trainable_params()):
        np.testing.assert_array_equal(a.asnumpy(), b.asnumpy())


def test_checkpoint_round_trip_and_architecture_from_shapes(tmp_path):
    fast = build_network("9-3-5", n1=12, n2=6, padding="valid", device_target="CPU")
    randomize(fast, 1)
    path = tmp_path / "m.ckpt"
    save_checkpoint(fast, str(path), {"scale": 3})
    assert [p.name for p in tmp_path.iterdir()] == ["m.ckpt"]  # no temporary file left
    net, meta = network_from_checkpoint(str(path), padding="replicate")
    assert (net.arch, net.n1, net.n2, net.padding) == ("9-3-5", 12, 6, "replicate")
    assert int(meta["scale"]) == 3
    for a, b in zip(fast.trainable_params(), net.trainable_params()):
        np.testing.assert_array_equal(a.asnumpy(), b.asnumpy())


def test_checkpoint_errors_name_the_problem(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        read_checkpoint(str(tmp_path / "missing.ckpt"))
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(UserError, match="junk.ckpt"):
        read_checkpoint(str(junk))
    weights = {p.name: p.asnumpy() for p in SRCNN("9-1-5", 8, 4).trainable_params()}
    weights["conv2.weight"] = np.zeros((4, 7, 1, 1), np.float32)
    with pytest.raises(UserError, match=r"conv2.weight has shape \(4, 7, 1, 1\), expected \(4, 8, 1, 1\)"):
        arch_from_weights(weights, "x.ckpt")
    good = {p.name: p.asnumpy() for p in SRCNN("9-5-5", 8, 4).trainable_params()}
    with pytest.raises(UserError, match=r"conv1.weight has shape \(8, 1, 9, 9\).*expects \(64, 1, 9, 9\)"):
        load_weights(SRCNN("9-5-5"), good, "y.ckpt")
