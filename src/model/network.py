"""Building SRCNN for a device: the one place that picks its formulation, and loading a checkpoint into it."""
import mindspore as ms
import numpy as np

from src.model.checkpoint import (
    PARAM_NAMES,
    arch_from_weights,
    load_weights,
    read_checkpoint,
)
from src.model.cpu.fused import FusedSRCNNInference, FusedSRCNNTrain
from src.model.cpu.gemm import GemmSRCNNInference, GemmSRCNNTrain
from src.model.cpu.kernel_build import KernelUnavailable, build_library, note_fallback
from src.model.srcnn import SRCNN

# formulation -> (training network class, inference runner of a plain SRCNN); None: the plain network itself
FORMULATIONS = {
    "conv2d": (SRCNN, None),
    "fused": (FusedSRCNNTrain, FusedSRCNNInference),
    "gemm": (GemmSRCNNTrain, GemmSRCNNInference),
}


def pick_formulation(device_target, training, amp_level="O0"):
    """How SRCNN runs on ``device_target``, for training or for inference: 'conv2d' (plain nn.Conv2d: GPU,
    Ascend), 'fused' (CPU: the fused kernel, src/model/cpu/fused.py; 2-5x faster than nn.Conv2d,
    benchmarks/README.md) or 'gemm' (CPU under mixed precision, which the float32 kernel does not do, or where
    the kernel cannot be built: no C++ compiler, SRCNN_FUSED_CPU=0, ...; the batched-matmul formulation,
    src/model/cpu/gemm.py, with a one-line note why, once per process). Direct or Winograd for the 5x5 layer
    stays the kernel's own choice at every call (SRCNN_CPU_ALGO)."""
    if device_target != "CPU":
        return "conv2d"
    if training and amp_level != "O0":
        return "gemm"
    try:
        build_library()
    except KernelUnavailable as reason:
        fallback = (f"the batched-matmul training network ({GemmSRCNNTrain.__name__})" if training else
                    f"the batched-matmul inference graph ({GemmSRCNNInference.__name__})")
        note_fallback(reason, fallback)
        return "gemm"
    return "fused"


def build_network(arch="9-1-5", n1=64, n2=32, padding="replicate", device_target="CPU", training=True,
                  amp_level="O0"):
    """The network for a device. Training: the class of pick_formulation (on CPU FusedSRCNNTrain or
    GemmSRCNNTrain, plain nn.Conv2d elsewhere). All share the Parameters (names, shapes, init), so
    checkpoints are interchangeable. Inference always builds plain nn.Conv2d, which compiles once for any
    image size and exports to MINDIR/ONNX; on CPU src.infer.mindspore_backend.MindSporePredictor runs it through
    fast_cpu_runner."""
    if not training:
        return SRCNN(arch, n1, n2, padding)
    network_class, _ = FORMULATIONS[pick_formulation(device_target, True, amp_level)]
    return network_class(arch, n1, n2, padding)


def inference_padding(padding):
    """A 'valid'-trained network is applied with replicate padding, as the authors' test code does."""
    return "replicate" if padding == "valid" else padding


def network_from_checkpoint(path, padding="replicate", device_target="CPU", training=False, weights=None):
    """An SRCNN whose architecture is read off the checkpoint, with its weights loaded; plus the metadata.
    ``weights``: the checkpoint's entries if already read (read_checkpoint)."""
    weights = read_checkpoint(path) if weights is None else weights
    arch, n1, n2 = arch_from_weights(weights, path)
    net = build_network(arch, n1, n2, padding, device_target, training=training)
    load_weights(net, weights, path)
    meta = {k: v for k, v in weights.items() if k not in PARAM_NAMES and np.ndim(v) == 0}
    return net, meta


def fast_cpu_runner(net):
    """What runs a plain SRCNN ``net`` for inference (same Parameters, read at every call): the runner of
    pick_formulation for the context's device (on CPU FusedSRCNNInference, or GemmSRCNNInference compiled once
    for every image size); ``net`` itself elsewhere or for any other network."""

    if type(net) is not SRCNN:
        return net
    _, runner_class = FORMULATIONS[pick_formulation(ms.get_context("device_target"), False)]
    return net if runner_class is None else runner_class(net)
