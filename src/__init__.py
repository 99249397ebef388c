"""SRCNN for MindSpore.

Importing this package applies the CPU kernel setting below once, before any entry point imports
MindSpore. Every entry script imports ``src`` first, so this is the single place it lives.
"""
import os
import sys

# oneDNN (MindSpore's CPU backend) picks slow reference convolution kernels for plain NCHW layouts when
# it may use AVX-512; capped at AVX2 it takes its JIT GEMM path (~30x faster forward on SRCNN). It only
# takes effect if set before MindSpore is loaded, and a value the user set wins.
os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
ONEDNN_APPLIED_EARLY = "mindspore" not in sys.modules
