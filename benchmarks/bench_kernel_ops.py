"""CPU time of the fused kernel's operators, direct against Winograd, on one thread; one JSON line per case.

    python benchmarks/bench_kernel_ops.py [--arch=9-5-5 --cases=b16x33valid,b64x48replicate,infer512
                                           --repeats=5 --n1=64 --n2=32]

Calls the library's entry points (src/model/cpu/srcnn_fused.cc, built by src/model/cpu/kernel_build.py) through ctypes
with numpy arrays, no MindSpore, SRCNN_CPU_THREADS=1, and times each call by the thread's CPU time
(time.thread_time): unlike wall time, this hardly moves when other processes share the CPU (a busy machine
still costs some cache and memory bandwidth). Per case and SRCNN_CPU_ALGO value: the median over --repeats
calls of the training forward, the training backward and their sum (train_ms), or of the inference operator;
GFLOP/s count the direct algorithm's FLOPs (bench_train_step.py's count; Winograd's rate is "effective").
"""
import argparse
import ctypes
import json
import os
import statistics
import sys
import time

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES = {"b16x33valid": (16, 33, "valid"), "b64x48replicate": (64, 48, "replicate"),
         "b128x48replicate": (128, 48, "replicate"), "infer512": (1, 512, "replicate"),
         "b2x21zeros": (2, 21, "zeros"), "infer40": (1, 40, "zeros")}  # the last two: quick checks


def padded(n):
    return (n + 15) // 16 * 16


def call(function, arrays):
    """One call of an entry point (nparam, params, ndims, shapes, dtypes, stream, extra); its CPU time."""
    from src.model.cpu.kernel_build import entry_point_call  # on sys.path once main() has run

    run = entry_point_call(function, arrays)
    start = time.thread_time()
    code = run()
    elapsed = time.thread_time() - start
    if code:
        raise RuntimeError(f"kernel error code {code}")
    return elapsed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="9-5-5", choices=("9-1-5", "9-3-5", "9-5-5"))
    parser.add_argument("--cases", default="b16x33valid,b64x48replicate,infer512", help=f"of {list(CASES)}")
    parser.add_argument("--algos", default="direct,winograd")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--n1", type=int, default=64)
    parser.add_argument("--n2", type=int, default=32)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    os.environ["SRCNN_CPU_THREADS"] = "1"
    sys.path.insert(0, REPO_ROOT)
    from src.model.cpu.kernel_build import build_library

    library = ctypes.CDLL(build_library())
    k1, k2, k3 = (int(k) for k in args.arch.split("-"))
    rng = np.random.default_rng(0)
    weights = [rng.normal(0, 0.1, (args.n1, 1, k1, k1)), rng.normal(0, 0.1, args.n1),
               rng.normal(0, 0.02, (args.n2, args.n1, k2, k2)), rng.normal(0, 0.1, args.n2),
               rng.normal(0, 0.05, (1, args.n2, k3, k3)), rng.normal(0, 0.1, 1)]
    weights = [np.ascontiguousarray(w, np.float32) for w in weights]
    c1, c2 = padded(args.n1), padded(args.n2)
    for name in [c.strip() for c in args.cases.split(",") if c.strip()]:
        batch, size, padding = CASES[name]
        sizes, s = [], size
        for k in (k1, k2, k3):
            s = s - k + 1 if padding == "valid" else s
            sizes.append(s)
        x = rng.random((batch, 1, size, size), dtype=np.float32)
        macs = [batch * sizes[i] ** 2 * cin * cout * k * k
                for i, (cin, cout, k) in enumerate(((1, args.n1, k1), (args.n1, args.n2, k2), (args.n2, 1, k3)))]
        for algo in [a.strip() for a in args.algos.split(",") if a.strip()]:
            os.environ["SRCNN_CPU_ALGO"] = algo
            record = {"case": name, "arch": args.arch, "batch": batch, "size": size, "padding": padding,
                      "algo": algo, "threads": 1}
            if name.startswith("infer"):
                y = np.zeros((batch, 1, sizes[2], sizes[2]), np.float32)
                fn = getattr(library, f"srcnn_forward_{padding}")
                times = [call(fn, [x, *weights, y]) for _ in range(args.repeats)]
                record["infer_ms"] = round(statistics.median(times) * 1e3, 2)
                record["gflops_per_s"] = round(2 * sum(macs) / statistics.median(times) / 1e9, 1)
            else:
                y = np.zeros((batch, 1, sizes[2], sizes[2]), np.float32)
                a1 = np.zeros((batch, sizes[0], sizes[0], c1), np.float32)
                a2 = np.zeros((batch, sizes[1], sizes[1], c2), np.float32)
                forward = getattr(library, f"srcnn_train_forward_{padding}")
                backward = getattr(library, f"srcnn_train_backward_{padding}")
                dy = rng.normal(0, 1e-3, y.shape).astype(np.float32)
                grads = [np.zeros_like(w) for w in weights]
                f_times, b_times = [], []
                for _ in range(args.repeats):
                    f_times.append(call(forward, [x, *weights, y, a1, a2]))
                    b_times.append(call(backward, [x, *weights, a1, a2, dy, *grads]))
                f, b = statistics.median(f_times), statistics.median(b_times)
                record.update(forward_ms=round(f * 1e3, 2), backward_ms=round(b * 1e3, 2),
                              train_ms=round((f + b) * 1e3, 2),
                              gflops_per_s=round(2 * (3 * sum(macs) - macs[0]) / (f + b) / 1e9, 1))
            print(json.dumps(record), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
