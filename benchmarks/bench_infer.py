"""Time SRCNN inference of one Y image (default 512x512) in MindSpore, onnxruntime and PyTorch; JSON lines.

    python benchmarks/bench_infer.py [--framework=all|mindspore|onnxruntime|torch --arch=9-1-5 --size=512
                                      --padding=replicate --repeats=20 --warmup=3 --rounds=1 --tile_size=0
                                      --checkpoint_path=FILE.ckpt --threads=2 --algos=auto
                                      --torch_python=PYTHON]

* mindspore: the path eval.py takes: ``network_from_checkpoint`` -> ``src.infer.mindspore_backend.MindSporePredictor`` (which
  on CPU runs the fused kernel ``src.model.cpu.fused.FusedSRCNNInference``, one eager operator for any image
  size; with SRCNN_FUSED_CPU=0 the batched-matmul graph ``GemmSRCNNInference``, one compilation for every
  image size) on a float32 HxW array, result read back as numpy.
* mindspore_per_shape: ``benchmarks/gemm_per_shape.py``'s ``SRCNNGemmPerShape`` on the same network: static shapes, one
  compilation per image size (the time of that first call is reported as compile_ms).
* onnxruntime: the model exported by ``src/deploy/export.py`` (dynamic [batch, 1, height, width] ONNX, checked
  against MindSpore at export) into a temporary folder, CPUExecutionProvider, ``intra_op_num_threads``.
* torch (if installed): an nn.Conv2d SRCNN with the same weights under ``torch.inference_mode``,
  ``torch.set_num_threads``.

``--algos`` (e.g. ``direct,winograd``): one mindspore run per SRCNN_CPU_ALGO value each round (the fused
kernel's algorithm for a 5x5 hidden layer; the record's ``algo``). torch runs under ``--torch_python``
(default: $SRCNN_TORCH_PYTHON, else this interpreter; skipped if that has no torch). Without --checkpoint_path the weights are random (MindSpore's default init, seed 0); timing does not depend on
them. Each framework runs in its own process (``--framework=all`` starts them, ``--rounds`` times in turn);
each prints one JSON line: ms_median / ms_p10 / ms_p90 over ``repeats`` calls after ``warmup`` calls,
mpix_per_s (output pixels), gflops_per_s (2 * MACs of the three convolutions at the image size), and
max_abs_diff against the MindSpore output where both are available.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FRAMEWORKS = ("mindspore", "mindspore_per_shape", "onnxruntime", "torch")


def kernel_sizes(arch):
    return tuple(int(k) for k in arch.split("-"))


def forward_flops(arch, height, width, padding, n1=64, n2=32):
    size_h, size_w, macs = height, width, 0
    for k, (c_in, c_out) in zip(kernel_sizes(arch), ((1, n1), (n1, n2), (n2, 1))):
        if padding == "valid":
            size_h, size_w = size_h - k + 1, size_w - k + 1
        macs += size_h * size_w * c_in * c_out * k * k
    return 2 * macs


def image(size):
    import numpy as np

    return np.random.default_rng(0).random((size, size), dtype=np.float32)


def time_calls(fn, x, repeats, warmup):
    for _ in range(warmup):
        out = fn(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn(x)
        times.append(time.perf_counter() - start)
    times.sort()

    def pct(q):
        pos = (len(times) - 1) * q / 100.0
        lo = int(pos)
        hi = min(lo + 1, len(times) - 1)
        return times[lo] + (times[hi] - times[lo]) * (pos - lo)

    return out, pct(50), pct(10), pct(90)


def mindspore_net(args):
    """The MindSpore inference network eval.py builds (weights from the checkpoint or random)."""
    if args.onednn_isa and args.framework.startswith("mindspore"):
        os.environ["ONEDNN_MAX_CPU_ISA"] = args.onednn_isa  # before src/ sets its default
    sys.path.insert(0, REPO_ROOT)
    import src  # noqa: F401  (CPU kernel setting, before MindSpore loads)
    from src.model_utils.device import init_context

    init_context("CPU")
    import mindspore as ms

    from src.model.network import (
        build_network,
        inference_padding,
        network_from_checkpoint,
    )

    if args.threads_ms:
        ms.device_context.cpu.op_tuning.threads_num(args.threads_ms)
    if args.checkpoint_path:
        net, _ = network_from_checkpoint(args.checkpoint_path, inference_padding(args.padding), "CPU")
    else:
        ms.set_seed(0)
        net = build_network(args.arch, 64, 32, args.padding, "CPU", training=False)
    return net


def run_mindspore(args):
    net = mindspore_net(args)
    from src.infer.mindspore_backend import MindSporePredictor

    predictor = MindSporePredictor(net, args.tile_size)
    x = image(args.size)
    out, med, p10, p90 = time_calls(predictor, x, args.repeats, args.warmup)
    path = f"MindSporePredictor(tile_size={args.tile_size}) running {type(predictor.runner).__name__}"
    return out, med, p10, p90, {"path": path,
                                "onednn_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", ""),
                                "algo": os.environ.get("SRCNN_CPU_ALGO", "auto")}


def run_mindspore_per_shape(args):
    import numpy as np

    net = mindspore_net(args)
    import mindspore as ms

    from benchmarks.gemm_per_shape import SRCNNGemmPerShape

    runner = SRCNNGemmPerShape(net)

    def predict(y):
        return runner(ms.Tensor(np.ascontiguousarray(y, np.float32)[None, None])).asnumpy()[0, 0]

    x = image(args.size)
    start = time.perf_counter()
    predict(x)
    compile_ms = (time.perf_counter() - start) * 1e3
    out, med, p10, p90 = time_calls(predict, x, args.repeats, args.warmup)
    return out, med, p10, p90, {"path": "SRCNNGemmPerShape (static shape)", "compile_ms": round(compile_ms, 1),
                                "onednn_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", "")}


def run_onnxruntime(args):
    import onnxruntime as ort

    net = mindspore_net(args)
    from src.deploy.export import export_network

    with tempfile.TemporaryDirectory(prefix="bench_infer_") as folder:
        path = os.path.join(folder, "srcnn.onnx")
        export_network(net, path, "ONNX")
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    x = image(args.size)

    def predict(y):
        return session.run(None, {"input": y[None, None]})[0][0, 0]

    out, med, p10, p90 = time_calls(predict, x, args.repeats, args.warmup)
    return out, med, p10, p90, {"path": f"onnxruntime {ort.__version__} CPUExecutionProvider"}


def run_torch(args):
    import numpy as np
    import torch
    import torch.nn as tnn

    torch.set_num_threads(args.threads)
    weights = np.load(args.weights_npz) if args.weights_npz else None
    f1, f2, f3 = kernel_sizes(args.arch)

    def conv(c_in, c_out, k):
        if args.padding == "valid":
            return tnn.Conv2d(c_in, c_out, k)
        return tnn.Conv2d(c_in, c_out, k, padding=(k - 1) // 2, padding_mode=args.padding)

    net = tnn.Sequential(conv(1, 64, f1), tnn.ReLU(), conv(64, 32, f2), tnn.ReLU(), conv(32, 1, f3)).eval()
    if weights is not None:
        with torch.no_grad():
            for i, layer in zip((1, 2, 3), (net[0], net[2], net[4])):
                layer.weight.copy_(torch.from_numpy(weights[f"conv{i}.weight"]))
                layer.bias.copy_(torch.from_numpy(weights[f"conv{i}.bias"]))

    def predict(y):
        with torch.inference_mode():
            return net(torch.from_numpy(y)[None, None])[0, 0].numpy()

    x = image(args.size)
    out, med, p10, p90 = time_calls(predict, x, args.repeats, args.warmup)
    return out, med, p10, p90, {"path": f"torch {torch.__version__} nn.Conv2d"}


def run_framework(args):
    import numpy as np

    runner = {"mindspore": run_mindspore, "mindspore_per_shape": run_mindspore_per_shape,
              "onnxruntime": run_onnxruntime, "torch": run_torch}[args.framework]
    out, med, p10, p90, extra = runner(args)
    record = {"framework": args.framework, "arch": args.arch, "size": args.size, "padding": args.padding,
              "ms_median": round(med * 1e3, 3), "ms_p10": round(p10 * 1e3, 3), "ms_p90": round(p90 * 1e3, 3),
              "mpix_per_s": round(out.size / med / 1e6, 3),
              "gflops_per_s": round(forward_flops(args.arch, args.size, args.size, args.padding) / med / 1e9, 2),
              "repeats": args.repeats, **extra}
    if args.reference_npy:
        record["max_abs_diff"] = float(np.abs(out - np.load(args.reference_npy)).max())
    if args.save_npy:
        np.save(args.save_npy, out)
    return record


def child_args(args, framework, folder, reference=False):
    """The command of one framework's run; the reference run (the first mindspore one) saves its output, the
    others are compared with it."""
    python = args.torch_python if framework == "torch" else sys.executable
    cmd = [python, os.path.abspath(__file__), f"--framework={framework}", f"--arch={args.arch}",
           f"--size={args.size}", f"--padding={args.padding}", f"--repeats={args.repeats}",
           f"--warmup={args.warmup}", f"--tile_size={args.tile_size}", f"--threads={args.threads}",
           f"--threads_ms={args.threads_ms}"] + ([f"--onednn_isa={args.onednn_isa}"] if args.onednn_isa else [])
    if args.checkpoint_path:
        cmd.append(f"--checkpoint_path={args.checkpoint_path}")
    ref = os.path.join(folder, "mindspore.npy")
    if reference:
        cmd.append(f"--save_npy={ref}")
    else:
        cmd += [f"--reference_npy={ref}", f"--weights_npz={os.path.join(folder, 'weights.npz')}"]
    return cmd


def torch_available(python):
    """Whether the interpreter ``python`` can import torch."""
    try:
        return subprocess.run([python, "-c", "import torch"], capture_output=True).returncode == 0
    except OSError:
        return False


def run_all(args):
    """Every framework in its own process, MindSpore first (its output and weights are the reference)."""
    algos = [a.strip() for a in args.algos.split(",") if a.strip()]
    frameworks = [f"mindspore:{algo}" for algo in algos] + ["mindspore_per_shape", "onnxruntime"]
    frameworks += ["torch"] if torch_available(args.torch_python) else []
    with tempfile.TemporaryDirectory(prefix="bench_infer_") as folder:
        # the weights MindSpore uses, for the torch model
        dump = [sys.executable, os.path.abspath(__file__), "--framework=mindspore", "--dump_weights",
                os.path.join(folder, "weights.npz"), f"--arch={args.arch}", f"--padding={args.padding}"]
        if args.checkpoint_path:
            dump.append(f"--checkpoint_path={args.checkpoint_path}")
        subprocess.run(dump, check=True, capture_output=True)
        for _ in range(args.rounds):
            for i, run in enumerate(frameworks):
                framework, _, algo = run.partition(":")
                env = dict(os.environ, **({"SRCNN_CPU_ALGO": algo} if algo else {}))
                proc = subprocess.run(child_args(args, framework, folder, reference=i == 0), capture_output=True,
                                      text=True, env=env)
                lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
                if proc.returncode != 0 or not lines:
                    raise RuntimeError(f"{framework} run failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
                print(lines[-1], flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--framework", choices=("all",) + FRAMEWORKS, default="all")
    parser.add_argument("--arch", choices=("9-1-5", "9-3-5", "9-5-5"), default="9-1-5")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--padding", choices=("replicate", "zeros"), default="replicate",
                        help="inference padding (a 'valid'-trained network is applied with replicate)")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=1, help="--framework=all: rounds of one run per framework")
    parser.add_argument("--tile_size", type=int, default=0, help="MindSpore Predictor tile size (0: whole image)")
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op / torch threads")
    parser.add_argument("--threads_ms", type=int, default=0, help="MindSpore kernel threads (0: default)")
    parser.add_argument("--checkpoint_path", default="")
    parser.add_argument("--onednn_isa", default="", help="MindSpore run: ONEDNN_MAX_CPU_ISA (see bench_train_step.py)")
    parser.add_argument("--algos", default="auto", help="--framework=all: SRCNN_CPU_ALGO values of the mindspore runs")
    parser.add_argument("--torch_python", default=os.environ.get("SRCNN_TORCH_PYTHON") or sys.executable,
                        help="the Python that has torch (default: $SRCNN_TORCH_PYTHON, else this one)")
    parser.add_argument("--save_npy", default="", help=argparse.SUPPRESS)
    parser.add_argument("--reference_npy", default="", help=argparse.SUPPRESS)
    parser.add_argument("--weights_npz", default="", help=argparse.SUPPRESS)
    parser.add_argument("--dump_weights", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.repeats < 1 or args.size < 1 or args.rounds < 1:
        parser.error("repeats, size and rounds must be >= 1")
    if args.dump_weights:
        import numpy as np

        net = mindspore_net(args)
        np.savez(args.dump_weights, **{p.name: p.asnumpy() for p in net.trainable_params()})
        return 0
    if args.framework == "all":
        run_all(args)
        return 0
    print(json.dumps(run_framework(args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
