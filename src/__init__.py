"""SRCNN for MindSpore.

Importing this package applies the CPU kernel setting below once, before any entry point imports
MindSpore. Every entry script imports ``src`` first, so this is the single place it lives.
"""
import os
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Ctrl-C / SIGTERM at any moment of an entry script, including `import mindspore`: first thing, see src/utils/errors.py
ENTRY_SCRIPTS = ("train.py", "eval.py", "eval_onnx.py", "export.py", "test.py", "preprocess.py", "postprocess.py",
                 "create_dataset.py", "convert_official_weights.py")
if os.path.basename(getattr(sys.modules.get("__main__"), "__file__", None) or "") in ENTRY_SCRIPTS:
    from src.utils.errors import stop_on_signals

    stop_on_signals()

# oneDNN (MindSpore's CPU backend) reads ONEDNN_MAX_CPU_ISA once, when MindSpore loads. Two facts decide it:
# - plain NCHW convolutions (nn.Conv2d) get slow reference kernels when AVX-512 is allowed; capped at AVX2
#   they take a JIT GEMM path (~30x faster forward).
# - this repository's CPU paths for training and inference use no convolution primitive: the fused kernel
#   (src/model/cpu/fused.py) does not use oneDNN at all, and its fallback (src/model/cpu/gemm.py, batched matrix
#   products) is 1.3-1.4x faster with AVX-512 (benchmarks/README.md).
# So AVX-512 (where the CPU has it), except for the entry points whose work is running exported graphs
# (MINDIR through GraphCell: MindSpore's own convolution kernels). A value the user set wins; a value this
# module set in a parent process (marked by SRCNN_ONEDNN_DEFAULT) is recomputed for the child's own work.
RUNS_CONVOLUTION_KERNELS = ("export.py", "run_infer_reference.py")


def default_onednn_isa(entry_point=None):
    """The ISA cap for a process whose main script is ``entry_point`` (default: this process's). A cap, not a
    demand: on a CPU without AVX-512, oneDNN stays at what the CPU has (AVX2), exactly as with an AVX2 cap."""
    if entry_point is None:
        entry_point = getattr(sys.modules.get("__main__"), "__file__", None) or ""
    return "AVX2" if os.path.basename(entry_point) in RUNS_CONVOLUTION_KERNELS else "AVX512_CORE"


if os.environ.get("ONEDNN_MAX_CPU_ISA") in (None, os.environ.get("SRCNN_ONEDNN_DEFAULT")):
    os.environ["ONEDNN_MAX_CPU_ISA"] = os.environ["SRCNN_ONEDNN_DEFAULT"] = default_onednn_isa()
ONEDNN_APPLIED_EARLY = "mindspore" not in sys.modules
