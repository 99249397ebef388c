"""Building SRCNN for a device, and moving its weights in and out of checkpoint files."""
import numpy as np

from src.model.checkpoint import (
    PARAM_NAMES,
    arch_from_weights,
    load_weights,
    read_checkpoint,
)
from src.model.cpu.gemm import SRCNNGemm
from src.model.srcnn import SRCNN


def build_network(arch="9-1-5", n1=64, n2=32, padding="replicate", device_target="CPU", training=True,
                  amp_level="O0"):
    """The network for a device. Training on CPU: the fused kernel's training operators (src/fused_cpu.py,
    SRCNNFused), or where it cannot be built (no C++ compiler) or under mixed precision the batched-GEMM
    formulation (src/srcnn_gemm.py); both 2-5x faster steps than nn.Conv2d (benchmarks/README.md). Plain
    nn.Conv2d elsewhere. All share the Parameters (names, shapes, init), so checkpoints are
    interchangeable. Inference always builds plain nn.Conv2d, which compiles once for any image size and
    exports to MINDIR/ONNX; on CPU src.infer.mindspore_backend.MindSporePredictor runs it through the fused kernel."""
    if not training or device_target != "CPU":
        return SRCNN(arch, n1, n2, padding)
    if amp_level == "O0":
        from src.model.cpu.fused import SRCNNFused
        from src.model.cpu.kernel_build import KernelUnavailable, note_fallback

        try:
            return SRCNNFused(arch, n1, n2, padding)
        except KernelUnavailable as reason:
            note_fallback(reason, "the batched-matmul training network (SRCNNGemm)")
    return SRCNNGemm(arch, n1, n2, padding)


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
    """On CPU, the fused kernel (src/fused_cpu.py: one operator, same Parameters, outputs equal to float32
    rounding), or if it cannot be built the batched-matmul graph (src/srcnn_gemm.py), with a one-line note
    why; elsewhere the network itself."""
    import mindspore as ms

    from src.model.cpu.fused import FusedSRCNN
    from src.model.cpu.gemm import SRCNNGemmInference
    from src.model.cpu.kernel_build import KernelUnavailable, note_fallback
    from src.model.srcnn import SRCNN

    if type(net) is not SRCNN or ms.get_context("device_target") != "CPU":
        return net
    try:
        return FusedSRCNN(net)
    except KernelUnavailable as reason:
        note_fallback(reason, "the batched-matmul inference graph (SRCNNGemmInference)")
        runner = SRCNNGemmInference(net)
        runner.set_train(False)
        # one compilation for every image size
        runner.set_inputs(ms.Tensor(shape=[None, 1, None, None], dtype=ms.float32))
        return runner
