"""Time one SRCNN training step (forward, MSE, backward, Adam) in MindSpore or PyTorch; one JSON line per run.

    python benchmarks/bench_train_step.py --framework=mindspore|torch [--arch=9-1-5 --batch_size=16
        --patch_size=33 --padding=valid --steps=50 --warmup=10 --variant=auto|plain|gemm|fused --threads=0 --runs=1]

Both sides build the same network (n1=64, n2=32, He-uniform init), train it on fixed random batches with
Adam (lr 1e-4) on the MSE against a target of the network's output size (cropped by border(arch) for
'valid', as train.py does), and synchronise every step by reading the loss back to the host. The timed
part is the step only: batches are device tensors made before timing.

* MindSpore: the step train.py runs (graph mode, ``ms.jit`` of value_and_grad + nn.Adam with a per-step
  learning-rate list, ``src.model_utils.device.init_context('CPU')``); ``--variant=auto`` is the network
  ``build_network(..., training=True)`` picks on CPU, ``plain``/``gemm``/``fused`` force SRCNN /
  GemmSRCNNTrain / FusedSRCNNTrain.
* PyTorch: an honest nn.Conv2d SRCNN (``padding_mode='replicate'``/'zeros', no padding for 'valid'),
  torch.optim.Adam, ``torch.set_num_threads(2)`` (``--threads`` overrides), default NCHW layout. The torch
  side never imports MindSpore or ``src`` (run each framework in its own process).

SRCNN_CPU_ALGO (direct|winograd|auto) picks the fused kernel's algorithm for a 5x5 hidden layer; the record
says which (``algo``). Output fields: ms_per_step (median over the timed steps), ms_p10 / ms_p90 (10th / 90th percentile),
mpix_per_s (output pixels, batch_size * out_h * out_w per step, per second at the median), gflops_per_s
(conv FLOPs per step / median time). FLOP count, exact for the convolutions and nothing else: for each
layer, MACs = N * H_out * W_out * C_in * C_out * k * k of its forward (H_out, W_out its output size:
padded modes keep the patch size, 'valid' shrinks by k - 1 per layer); a training step does the forward,
the weight gradient and the input gradient of every layer but the first (the image needs no gradient),
each of the same MAC count, so FLOPs = 2 * (3 * MACs_total - MACs_layer1). Bias adds, ReLU, the loss,
padding and Adam are not counted.
"""
import argparse
import json
import os
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARCHS = ("9-1-5", "9-3-5", "9-5-5")
PADDINGS = ("replicate", "zeros", "valid")
N1, N2 = 64, 32
LR = 1e-4


def kernel_sizes(arch):
    return tuple(int(k) for k in arch.split("-"))


def output_size(arch, patch_size, padding):
    return patch_size if padding != "valid" else patch_size - (sum(kernel_sizes(arch)) - 3)


def conv_flops(arch, batch_size, patch_size, padding):
    """FLOPs of one training step's convolutions (see the module docstring)."""
    channels = ((1, N1), (N1, N2), (N2, 1))
    size, macs = patch_size, []
    for k, (c_in, c_out) in zip(kernel_sizes(arch), channels):
        if padding == "valid":
            size -= k - 1
        macs.append(batch_size * size * size * c_in * c_out * k * k)
    return 2 * (3 * sum(macs) - macs[0])


def percentile(sorted_values, q):
    """Linear-interpolated percentile of an already sorted list (numpy's default method)."""
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def make_batches(args, count=4):
    import numpy as np

    rng = np.random.default_rng(args.seed)
    out = output_size(args.arch, args.patch_size, args.padding)
    crop = (args.patch_size - out) // 2
    batches = []
    for _ in range(count):
        lr = rng.random((args.batch_size, 1, args.patch_size, args.patch_size), dtype=np.float32)
        hr = rng.random((args.batch_size, 1, args.patch_size, args.patch_size), dtype=np.float32)
        batches.append((lr, np.ascontiguousarray(hr[:, :, crop:crop + out, crop:crop + out])))
    return batches


# ---------------------------------------------------------------------------------------------- MindSpore
def mindspore_step(args):
    """(step function taking batch index, variant name) for MindSpore."""
    if args.onednn_isa:
        # before src/ sets its default and before oneDNN's first primitive reads it
        os.environ["ONEDNN_MAX_CPU_ISA"] = args.onednn_isa
    sys.path.insert(0, REPO_ROOT)
    import src  # noqa: F401  (CPU kernel setting, before MindSpore loads)
    from src.model_utils.device import init_context

    init_context("CPU")
    import mindspore as ms
    import mindspore.nn as nn
    import mindspore.ops as ops

    if args.threads:
        ms.device_context.cpu.op_tuning.threads_num(args.threads)
    from src.model.cpu.fused import FusedSRCNNTrain
    from src.model.cpu.gemm import GemmSRCNNTrain
    from src.model.network import build_network
    from src.model.srcnn import SRCNN

    ms.set_seed(args.seed)
    if args.variant == "auto":
        net = build_network(args.arch, N1, N2, args.padding, "CPU", training=True)
    else:
        variants = {"plain": SRCNN, "gemm": GemmSRCNNTrain, "fused": FusedSRCNNTrain}
        net = variants[args.variant](args.arch, N1, N2, args.padding)
    variant = type(net).__name__
    net.set_train(True)
    total = args.warmup + args.steps
    optimizer = nn.Adam(net.trainable_params(), learning_rate=[LR] * (total * args.runs + 1))

    def forward(lr, hr):
        return ops.mean(ops.square(net(lr) - hr))

    grad_fn = ms.value_and_grad(forward, None, optimizer.parameters)

    @ms.jit
    def train_step(lr, hr):
        loss, grads = grad_fn(lr, hr)
        optimizer(grads)
        return loss

    batches = [(ms.Tensor(lr), ms.Tensor(hr)) for lr, hr in make_batches(args)]

    def step(i):
        lr, hr = batches[i % len(batches)]
        return float(train_step(lr, hr).asnumpy())

    return step, variant


# ---------------------------------------------------------------------------------------------- PyTorch
def torch_step(args):
    import torch
    import torch.nn as tnn

    torch.set_num_threads(args.threads or 2)
    torch.manual_seed(args.seed)
    f1, f2, f3 = kernel_sizes(args.arch)

    def conv(c_in, c_out, k):
        if args.padding == "valid":
            return tnn.Conv2d(c_in, c_out, k)
        return tnn.Conv2d(c_in, c_out, k, padding=(k - 1) // 2, padding_mode=args.padding)

    net = tnn.Sequential(conv(1, N1, f1), tnn.ReLU(), conv(N1, N2, f2), tnn.ReLU(), conv(N2, 1, f3))
    net.train()
    optimizer = torch.optim.Adam(net.parameters(), lr=LR)
    loss_fn = tnn.MSELoss()
    batches = [(torch.from_numpy(lr), torch.from_numpy(hr)) for lr, hr in make_batches(args)]

    def step(i):
        lr, hr = batches[i % len(batches)]
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(net(lr), hr)
        loss.backward()
        optimizer.step()
        return float(loss.item())

    return step, "nn.Conv2d"


def run(args, step, variant, warmup):
    for i in range(warmup):
        step(i)
    times = []
    for i in range(args.steps):
        start = time.perf_counter()
        loss = step(i)
        times.append(time.perf_counter() - start)
    if not loss == loss:
        raise RuntimeError("the loss is NaN")
    times.sort()
    median = percentile(times, 50)
    out = output_size(args.arch, args.patch_size, args.padding)
    return {"framework": args.framework, "arch": args.arch, "batch_size": args.batch_size,
            "patch_size": args.patch_size, "padding": args.padding, "variant": variant,
            "algo": os.environ.get("SRCNN_CPU_ALGO", "auto") if args.framework == "mindspore" else "",
            "ms_per_step": round(median * 1e3, 3), "ms_p10": round(percentile(times, 10) * 1e3, 3),
            "ms_p90": round(percentile(times, 90) * 1e3, 3),
            "mpix_per_s": round(args.batch_size * out * out / median / 1e6, 3),
            "gflops_per_s": round(conv_flops(args.arch, args.batch_size, args.patch_size, args.padding)
                                  / median / 1e9, 2),
            "steps": args.steps, "threads": args.threads or (2 if args.framework == "torch" else None),
            "onednn_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", "") if args.framework == "mindspore" else ""}


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--framework", choices=("mindspore", "torch"), required=True)
    parser.add_argument("--arch", choices=ARCHS, default="9-1-5")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--patch_size", type=int, default=33)
    parser.add_argument("--padding", choices=PADDINGS, default="valid")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--variant", choices=("auto", "plain", "gemm", "fused"), default="auto",
                        help="MindSpore network: what build_network picks for CPU training, or forced")
    parser.add_argument("--threads", type=int, default=0,
                        help="kernel threads (0: MindSpore's setting from src.model_utils.device, 2 for torch)")
    parser.add_argument("--onednn_isa", default="",
                        help="MindSpore only: ONEDNN_MAX_CPU_ISA for this run (default: the project's from "
                             "src/__init__.py, AVX512_CORE on AVX-512 CPUs); e.g. AVX2. With AVX-512, oneDNN "
                             "runs plain NCHW convolutions (--variant=plain) with reference kernels")
    parser.add_argument("--runs", type=int, default=1, help="timed runs in this process, one JSON line each")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.steps < 1 or args.batch_size < 1 or args.warmup < 0 or args.runs < 1:
        parser.error("steps, batch_size and runs must be >= 1, warmup >= 0")
    if output_size(args.arch, args.patch_size, args.padding) < 1:
        parser.error(f"patch_size {args.patch_size} is too small for arch {args.arch} with padding=valid")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.framework == "mindspore":
        step, variant = mindspore_step(args)
    else:
        step, variant = torch_step(args)
    for i in range(args.runs):
        # the graph is compiled and warm after the first run
        print(json.dumps(run(args, step, variant, args.warmup if i == 0 else min(args.warmup, 2))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
