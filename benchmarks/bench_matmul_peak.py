"""This machine's float32 matrix-product throughput (large square GEMM): the "peak" that training and
inference GFLOP/s are compared against. One JSON line per library.

    python benchmarks/bench_matmul_peak.py [--library=all|numpy|mindspore|torch --n=2048 --repeats=10
                                            --onednn_isa=AVX512_CORE]

* numpy: ``a @ b`` with numpy's BLAS and its default threads.
* mindspore: ops.MatMul in graph mode (oneDNN), ``src.model_utils.device.init_context('CPU')``; with ``--library=all``
  once with ONEDNN_MAX_CPU_ISA=AVX2 and once with AVX512_CORE (src/__init__.py's default on AVX-512 CPUs).
* torch (if installed): ``torch.mm`` with 2 threads.
Each library runs in its own process; GFLOP/s = 2 n^3 / median time.
"""
import argparse
import json
import os
import subprocess
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def median_seconds(fn, repeats, warmup=2):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2]


def run_library(args):
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.random((args.n, args.n), dtype=np.float32)
    b = rng.random((args.n, args.n), dtype=np.float32)
    extra = {}
    if args.library == "numpy":
        seconds = median_seconds(lambda: a @ b, args.repeats)
        config = np.show_config(mode="dicts") if hasattr(np, "show_config") else {}
        blas = ((config or {}).get("Build Dependencies", {}) or {}).get("blas", {}) if isinstance(config, dict) else {}
        extra["blas"] = f"{blas.get('name', '?')} {blas.get('version', '')}".strip() if blas else "?"
    elif args.library == "mindspore":
        if args.onednn_isa:
            os.environ["ONEDNN_MAX_CPU_ISA"] = args.onednn_isa
        sys.path.insert(0, REPO_ROOT)
        import src  # noqa: F401  (the project's CPU kernel setting, before MindSpore loads)
        from src.model_utils.device import init_context

        init_context("CPU")
        import mindspore as ms
        import mindspore.ops as ops

        matmul = ops.MatMul()

        @ms.jit
        def product(x, y):
            return matmul(x, y)

        ta, tb = ms.Tensor(a), ms.Tensor(b)
        seconds = median_seconds(lambda: product(ta, tb).asnumpy(), args.repeats)
        extra["onednn_isa"] = os.environ.get("ONEDNN_MAX_CPU_ISA", "")
    else:
        import torch

        torch.set_num_threads(args.threads)
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        seconds = median_seconds(lambda: torch.mm(ta, tb), args.repeats)
        extra["threads"] = args.threads
    return {"library": args.library, "n": args.n, "ms_median": round(seconds * 1e3, 3),
            "gflops_per_s": round(2 * args.n ** 3 / seconds / 1e9, 1), **extra}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--library", choices=("all", "numpy", "mindspore", "torch"), default="all")
    parser.add_argument("--n", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--onednn_isa", default="", help="mindspore: ONEDNN_MAX_CPU_ISA for this run")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.n < 1 or args.repeats < 1:
        parser.error("n and repeats must be >= 1")
    if args.library != "all":
        print(json.dumps(run_library(args)), flush=True)
        return 0
    import importlib.util

    runs = [["--library=numpy"], ["--library=mindspore", "--onednn_isa=AVX2"], ["--library=mindspore", "--onednn_isa=AVX512_CORE"]]
    if importlib.util.find_spec("torch") is not None:
        runs.append(["--library=torch"])
    for extra in runs:
        cmd = [sys.executable, os.path.abspath(__file__), f"--n={args.n}", f"--repeats={args.repeats}",
               f"--threads={args.threads}", *extra]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
        if proc.returncode != 0 or not lines:
            raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        print(lines[-1], flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
