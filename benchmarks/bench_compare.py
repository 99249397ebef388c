"""MindSpore vs PyTorch SRCNN training steps on this CPU, alternating the frameworks in one invocation.

    python benchmarks/bench_compare.py [--rounds=5 --steps=40 --warmup=10 --markdown --json=FILE
                                        --onednn_isa=AVX512_CORE --configs=915,955,915rep,955rep,955rep128
                                        --algos=auto --torch_python=PYTHON]

Each round runs, for every configuration, ``bench_train_step.py`` once per MindSpore algorithm (``--algos``,
the fused kernel's SRCNN_CPU_ALGO for its 5x5 hidden layer: e.g. ``direct,winograd``) and once for PyTorch,
each in its own process (mindspore, ..., torch, mindspore, ...), so slow drifts of the machine's load hit
all alike. PyTorch runs under ``--torch_python`` (default: $SRCNN_TORCH_PYTHON, else this interpreter), so
torch may live in a venv of its own (benchmarks/requirements-torch.txt). Per run the step time is the median
over its timed steps; the table gives, per framework and algorithm, the median of the per-run medians and
their spread (min-max over the runs), the ratio to PyTorch's median against the target, and the GFLOP/s of
the direct algorithm's convolution FLOPs per step (for Winograd an "effective" rate, which can exceed the
machine's peak: it does fewer multiplications). Targets (MindSpore / PyTorch):

    915        9-1-5, batch 16, 33x33, valid         <= 0.8
    955        9-5-5, batch 16, 33x33, valid         <= 0.4
    915rep     9-1-5, batch 64, 48x48, replicate     <= 1.0
    955rep     9-5-5, batch 64, 48x48, replicate     <= 0.35
    955rep128  9-5-5, batch 128, 48x48, replicate    (the 9-5-5 recipe's step; no target)

With two or more algorithms, a last column gives the ratio of the last to the first (Winograd / direct).
``--markdown`` prints the table as Markdown rows for benchmarks/README.md.
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIGS = {
    "915": dict(arch="9-1-5", batch_size=16, patch_size=33, padding="valid", target=0.8),
    "955": dict(arch="9-5-5", batch_size=16, patch_size=33, padding="valid", target=0.4),
    "915rep": dict(arch="9-1-5", batch_size=64, patch_size=48, padding="replicate", target=1.0),
    "955rep": dict(arch="9-5-5", batch_size=64, patch_size=48, padding="replicate", target=0.35),
    "955rep128": dict(arch="9-5-5", batch_size=128, patch_size=48, padding="replicate", target=None),
}
DEFAULT_CONFIGS = "915,955,915rep"
ALGOS = ("auto", "direct", "winograd")


def run_one(framework, config, args, algo=None):
    """One bench_train_step.py process; its JSON record."""
    python = sys.executable if framework == "mindspore" else args.torch_python
    cmd = [python, os.path.join(HERE, "bench_train_step.py"), f"--framework={framework}",
           f"--arch={config['arch']}", f"--batch_size={config['batch_size']}",
           f"--patch_size={config['patch_size']}", f"--padding={config['padding']}",
           f"--steps={args.steps}", f"--warmup={args.warmup}"]
    env = dict(os.environ)
    if framework == "mindspore":
        cmd += [f"--variant={args.variant}"] + ([f"--onednn_isa={args.onednn_isa}"] if args.onednn_isa else [])
        env["SRCNN_CPU_ALGO"] = algo
    else:
        cmd.append(f"--threads={args.torch_threads}")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1])


def summarize(records):
    times = sorted(r["ms_per_step"] for r in records)
    return {"median": statistics.median(times), "min": times[0], "max": times[-1], "runs": len(times),
            "gflops_per_s": statistics.median(r["gflops_per_s"] for r in records),
            "mpix_per_s": statistics.median(r["mpix_per_s"] for r in records), "variant": records[0]["variant"]}


def table(results, algos, markdown):
    header = ["configuration"]
    for algo in algos:
        header += [f"MindSpore {algo} ms/step (min-max)", f"{algo}/PT"]
    header += ["PyTorch ms/step (min-max)", "target", "met"]
    header += [f"MS {algo} GFLOP/s" for algo in algos] + ["PT GFLOP/s"]
    if len(algos) > 1:
        header.append(f"{algos[-1]}/{algos[0]}")
    rows = []
    for name, res in results.items():
        cfg, pt = CONFIGS[name], res["torch"]
        row = [f"{cfg['arch']} b{cfg['batch_size']} {cfg['patch_size']}x{cfg['patch_size']} {cfg['padding']}"]
        best = None
        for algo in algos:
            ms_ = res[f"mindspore:{algo}"]
            ratio = ms_["median"] / pt["median"]
            best = ratio if best is None else min(best, ratio)
            row += [f"{ms_['median']:.2f} ({ms_['min']:.2f}-{ms_['max']:.2f})", f"{ratio:.2f}"]
        row += [f"{pt['median']:.2f} ({pt['min']:.2f}-{pt['max']:.2f})"]
        if cfg["target"] is None:
            row += ["-", "-"]
        else:
            row += [f"<= {cfg['target']:g}", "yes" if best <= cfg["target"] else "no"]
        row += [f"{res[f'mindspore:{algo}']['gflops_per_s']:.0f}" for algo in algos] + [f"{pt['gflops_per_s']:.0f}"]
        if len(algos) > 1:
            row.append(f"{res[f'mindspore:{algos[-1]}']['median'] / res[f'mindspore:{algos[0]}']['median']:.2f}")
        rows.append(row)
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
    else:
        widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
        lines = ["  ".join(str(x).ljust(w) for x, w in zip(row, widths)) for row in [header] + rows]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--configs", default=DEFAULT_CONFIGS, help=f"comma-separated subset of {list(CONFIGS)}")
    parser.add_argument("--algos", default="auto",
                        help=f"comma-separated SRCNN_CPU_ALGO values for the MindSpore runs, of {list(ALGOS)}")
    parser.add_argument("--variant", choices=("auto", "plain", "gemm"), default="auto")
    parser.add_argument("--onednn_isa", default="", help="MindSpore runs: ONEDNN_MAX_CPU_ISA (see bench_train_step)")
    parser.add_argument("--torch_threads", type=int, default=2, help="torch.set_num_threads for the PyTorch runs")
    parser.add_argument("--torch_python", default=os.environ.get("SRCNN_TORCH_PYTHON") or sys.executable,
                        help="the Python that has torch (default: $SRCNN_TORCH_PYTHON, else this one)")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown rows")
    parser.add_argument("--json", default="", help="also write every run's record and the summary here")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    algos = [a.strip() for a in args.algos.split(",") if a.strip()]
    unknown = [n for n in names if n not in CONFIGS] + [a for a in algos if a not in ALGOS]
    if unknown or not algos or args.rounds < 1 or args.steps < 1:
        parser.error(f"unknown configs or algos {unknown}" if unknown else "rounds and steps must be >= 1, "
                     "algos not empty")
    runs = [f"mindspore:{algo}" for algo in algos] + ["torch"]
    records = {n: {run: [] for run in runs} for n in names}
    for r in range(args.rounds):
        for name in names:
            for run in runs:
                framework, _, algo = run.partition(":")
                rec = run_one(framework, CONFIGS[name], args, algo)
                records[name][run].append(rec)
                print(f"round {r + 1}/{args.rounds} {name} {run}: {rec['ms_per_step']:.2f} ms/step",
                      file=sys.stderr, flush=True)
    results = {n: {run: summarize(recs) for run, recs in by_run.items()} for n, by_run in records.items()}
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# {stamp}, {platform.node()}, {os.cpu_count()} CPUs, load average at the end {load:.2f}, "
          f"{args.rounds} rounds x {args.steps} steps, MindSpore variant {args.variant}"
          + (f", ONEDNN_MAX_CPU_ISA={args.onednn_isa}" if args.onednn_isa else "")
          + (f", PyTorch threads {args.torch_threads}" if args.torch_threads != 2 else "")
          + "; GFLOP/s: the direct algorithm's convolution FLOPs per step / time (Winograd's are effective)")
    print(table(results, algos, args.markdown))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"date": stamp, "args": vars(args), "summary": results, "runs": records}, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
