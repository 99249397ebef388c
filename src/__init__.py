"""SRCNN for MindSpore.

Importing this package applies the CPU kernel setting below once, before any entry point imports
MindSpore. Every entry script imports ``src`` first, so this is the single place it lives.
"""
import os
import sys

# oneDNN (MindSpore's CPU backend) reads ONEDNN_MAX_CPU_ISA once, when MindSpore loads. Two facts decide it:
# - plain NCHW convolutions (nn.Conv2d) get slow reference kernels when AVX-512 is allowed; capped at AVX2
#   they take a JIT GEMM path (~30x faster forward).
# - this repository's CPU paths for training and inference use no convolution primitive (src/srcnn_gemm.py):
#   they are batched matrix products, 1.3-1.4x faster with AVX-512 (benchmarks/README.md).
# So AVX-512 where the CPU has it, except for the entry points whose work is running exported graphs
# (MINDIR through GraphCell: MindSpore's own convolution kernels). A value the user set wins; a value this
# module set in a parent process (marked by SRCNN_ONEDNN_DEFAULT) is recomputed for the child's own work.
RUNS_CONVOLUTION_KERNELS = ("export.py", "run_infer_reference.py")


def _cpu_flags():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            return set(next((line.split(":", 1)[1].split() for line in handle if line.startswith("flags")), []))
    except OSError:
        return set()


def default_onednn_isa(script=None, flags=None):
    """The ISA cap for a process started as ``script`` on a CPU with ``flags`` (see above)."""
    script = os.path.basename(sys.argv[0] if script is None and sys.argv else script or "")
    flags = _cpu_flags() if flags is None else flags
    if script in RUNS_CONVOLUTION_KERNELS or not {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= flags:
        return "AVX2"
    return "AVX512_CORE"


if os.environ.get("ONEDNN_MAX_CPU_ISA") in (None, os.environ.get("SRCNN_ONEDNN_DEFAULT")):
    os.environ["ONEDNN_MAX_CPU_ISA"] = os.environ["SRCNN_ONEDNN_DEFAULT"] = default_onednn_isa()
ONEDNN_APPLIED_EARLY = "mindspore" not in sys.modules
