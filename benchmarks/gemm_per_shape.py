"""``SRCNNGemmPerShape``: inference of a plain SRCNN by the batched-matmul layers compiled per image size, a
benchmark-only alternative to the library's one-compilation GemmSRCNNInference (bench_infer.py's
``mindspore_per_shape``). Import it with the repository root on sys.path."""
from src.model.cpu.gemm import GemmSRCNNInference


class SRCNNGemmPerShape(GemmSRCNNInference):
    """Inference of a plain ``SRCNN`` (its Parameters, shared) by GemmLayers with static shapes (MindSpore
    caches one graph per shape): no padding ops for 9-1-5 replicate and no dynamic-shape overheads (in a
    dynamic-shape graph a Reshape copies its input), ~20% faster than GemmSRCNNInference at 512x512, for
    ~0.6 s of compilation per new shape."""

    def __init__(self, net):
        super().__init__(net, dynamic=False)
