"""SRCNN network: shapes, padding modes, the GEMM CPU formulation against plain nn.Conv2d, checkpoints."""
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import src  # noqa: F401
from src.utils.errors import UserError
from tests.conftest import (
    ALGO_TOLERANCE,
    assert_training_matches_conv2d,
    loss_and_grads,
    randomize,
    rel_err,
    requires_compiler,
)

ms = pytest.importorskip("mindspore")
from mindspore import ops  # noqa: E402

from src.model.checkpoint import (
    PARAM_NAMES,
    arch_from_weights,
    load_weights,
    read_checkpoint,
    save_checkpoint,
)
from src.model.cpu.fused import FusedSRCNNTrain  # noqa: E402
from src.model.cpu.gemm import GemmSRCNNTrain  # noqa: E402
from src.model.network import build_network, network_from_checkpoint
from src.model.srcnn import ARCHS, PADDINGS, SRCNN, border  # noqa: E402
from src.model_utils.device import init_context  # noqa: E402

init_context("CPU")


# (class, n1, n2, the fused kernel's SRCNN_CPU_ALGO); Winograd only changes the 5x5 hidden layer (9-5-5). The
# shipped width 64/32 and every arch by Winograd: test_fused_cpu.py's float64 checks of the operators.
FORMULATIONS = [(GemmSRCNNTrain, 16, 8, None), (FusedSRCNNTrain, 16, 8, "direct"),
                (FusedSRCNNTrain, 40, 24, "direct")]
WINOGRAD_FORMULATIONS = [(FusedSRCNNTrain, 40, 24, "winograd")]
FORMULATION_CASES = [pytest.param(arch, padding, (cls, n1, n2, algo),
                                  id=f"{arch}-{padding}-{cls.__name__}-{n1}-{n2}" + (f"-{algo}" if algo else ""),
                                  marks=requires_compiler if cls is FusedSRCNNTrain else ())
                     for arch, padding, (cls, n1, n2, algo) in
                     list(itertools.product(ARCHS, PADDINGS, FORMULATIONS)) +
                     list(itertools.product(["9-5-5"], PADDINGS, WINOGRAD_FORMULATIONS))]


@pytest.mark.parametrize("arch,padding,formulation", FORMULATION_CASES)
def test_cpu_training_formulations_match_conv2d(arch, padding, formulation, monkeypatch):
    """Outputs and all six gradients against nn.Conv2d, random inputs and weights, float32."""
    cls, n1, n2, algo = formulation
    if algo:
        monkeypatch.setenv("SRCNN_CPU_ALGO", algo)
    # Winograd's seeds: with 3 / 7 a pre-activation of the 'zeros' network lies within Winograd's rounding of
    # the ReLU's kink (its derivative, and so a gradient, then differs; see test_fused_cpu.py)
    weight_seed, input_seed = (4, 8) if algo == "winograd" else (3, 7)
    (out_shape,) = assert_training_matches_conv2d(cls, arch, padding, n1, n2, [(3, 1, 29, 26)],
                                                  weight_seed=weight_seed, input_seed=input_seed,
                                                  tolerance=ALGO_TOLERANCE.get(algo, 1e-5))
    expected = (29, 26) if padding != "valid" else (29 - 2 * border(arch), 26 - 2 * border(arch))
    assert out_shape[2:] == expected


@pytest.mark.parametrize("amp_level,expected", [("O2", GemmSRCNNTrain),
                                                pytest.param("O0", FusedSRCNNTrain, marks=requires_compiler)])
def test_parameters_and_init_are_shared_between_formulations(amp_level, expected):
    ms.set_seed(5)
    plain = build_network("9-5-5", padding="zeros", device_target="GPU")
    ms.set_seed(5)
    fast = build_network("9-5-5", padding="zeros", device_target="CPU", amp_level=amp_level)
    assert type(fast) is expected and type(plain) is SRCNN
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


@pytest.mark.parametrize("arch,padding,shape", [("9-1-5", "replicate", (1, 1, 20, 23)),
                                                ("9-1-5", "valid", (2, 1, 33, 33)),
                                                ("9-5-5", "replicate", (2, 1, 17, 21)),
                                                ("9-5-5", "zeros", (1, 1, 13, 9)),
                                                ("9-5-5", "valid", (2, 1, 19, 24))])
def test_gemm_formulation_matches_conv2d_at_full_width_and_odd_shapes(arch, padding, shape):
    plain = SRCNN(arch, padding=padding)
    fast = GemmSRCNNTrain(arch, padding=padding)
    randomize(plain, 11)
    load_weights(fast, {p.name: p.asnumpy() for p in plain.trainable_params()})
    rng = np.random.default_rng(5)
    x = ms.Tensor(rng.random(shape).astype(np.float32))
    target = ms.Tensor(rng.random(shape).astype(np.float32))
    out_plain, grads_plain = loss_and_grads(plain, x, target)
    out_fast, grads_fast = loss_and_grads(fast, x, target)
    assert out_fast.shape == out_plain.shape
    assert rel_err(out_plain, out_fast) <= 1e-5
    for name, g_plain, g_fast in zip(PARAM_NAMES, grads_plain, grads_fast):
        assert rel_err(g_plain, g_fast) <= 1e-5, name


@pytest.mark.parametrize("arch,padding", [("9-1-5", "valid"), ("9-5-5", "replicate")])
def test_gemm_formulation_gradients_stay_float32_under_mixed_precision(arch, padding):
    net = GemmSRCNNTrain(arch, n1=16, n2=8, padding=padding)
    amp_net = ms.amp.auto_mixed_precision(net, "O2")
    x = ms.Tensor(np.random.default_rng(2).random((2, 1, 25, 25)).astype(np.float32))

    def forward(x):
        return ops.mean(ops.square(amp_net(x).astype(ms.float32)))

    loss, grads = ms.value_and_grad(forward, None, net.trainable_params())(x)
    assert np.isfinite(loss.asnumpy())
    assert [g.dtype for g in grads] == [ms.float32] * 6  # the optimizer takes them as they are
    assert all(np.isfinite(g.asnumpy()).all() for g in grads)


@pytest.mark.parametrize("arch,padding", list(itertools.product(ARCHS, ("replicate", "zeros", "valid"))))
def test_gemm_inference_matches_conv2d_for_any_size_with_one_compilation(arch, padding):
    from src.model.cpu.gemm import GemmSRCNNInference

    plain = SRCNN(arch, n1=16, n2=8, padding=padding)
    randomize(plain, 4)
    fast = GemmSRCNNInference(plain)
    assert [p.name for p in fast.trainable_params()] == list(PARAM_NAMES)  # shared, names kept
    fast.set_train(False)
    fast.set_inputs(ms.Tensor(shape=[None, 1, None, None], dtype=ms.float32))
    rng = np.random.default_rng(9)
    sizes = [(31, 26), (17, 40)] + ([(1, 1), (2, 3)] if padding != "valid" else [])
    for size in sizes:
        x = ms.Tensor(rng.random((1, 1) + size).astype(np.float32))
        expected = plain(x).asnumpy()
        got = fast(x).asnumpy()
        assert got.shape == expected.shape, size
        assert rel_err(expected, got) <= 1e-5, size


@requires_compiler
def test_predictor_runs_the_fused_kernel_on_cpu_and_sees_weight_updates():
    from src.infer.mindspore_backend import MindSporePredictor
    from src.model.cpu.fused import FusedSRCNNInference

    net = SRCNN("9-3-5", n1=16, n2=8, padding="replicate")
    randomize(net, 6)
    whole, tiled = MindSporePredictor(net), MindSporePredictor(net, tile_size=16)
    assert isinstance(whole.runner, FusedSRCNNInference) and whole.net is net
    lr_y = np.random.default_rng(8).random((37, 45)).astype(np.float32)
    for _ in range(2):
        expected = net(ms.Tensor(lr_y[None, None])).asnumpy()[0, 0]
        assert rel_err(expected, whole(lr_y)) <= 1e-5
        assert rel_err(expected, tiled(lr_y)) <= 1e-5
        randomize(net, 7)  # a training step's update, as the trainer's validation sees it


_TILED_NETS = {}


@settings(max_examples=15, deadline=None)
@given(height=st.integers(17, 90), width=st.integers(17, 90), tile=st.integers(16, 64),
       arch=st.sampled_from(["9-1-5", "9-5-5"]), seed=st.integers(0, 2**16))
def test_tiled_inference_equals_whole_image_for_random_sizes(height, width, tile, arch, seed):
    """Property: with border(arch) pixels of context, tiles reproduce whole-image inference (float rounding:
    9-5-5's middle layer by Winograd rounds each pixel by its place in a 4x4 tile, which differs between a tile
    and the whole image: ~5e-6 here)."""
    from src.infer.mindspore_backend import MindSporePredictor

    if arch not in _TILED_NETS:
        net = SRCNN(arch, n1=8, n2=4, padding="replicate")
        randomize(net, 11)
        _TILED_NETS[arch] = (MindSporePredictor(net), MindSporePredictor(net, tile_size=16))
    whole, tiled = _TILED_NETS[arch]
    tiled.tile_size = tile
    lr_y = np.random.default_rng(seed).random((height, width)).astype(np.float32)
    assert np.abs(whole(lr_y) - tiled(lr_y)).max() <= (1e-6 if arch == "9-1-5" else 3e-5)
