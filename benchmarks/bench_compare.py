"""MindSpore vs PyTorch SRCNN training steps on this CPU, alternating the two frameworks in one invocation.

    python benchmarks/bench_compare.py [--rounds=5 --steps=40 --warmup=10 --markdown --json=FILE
                                        --onednn_isa=AVX512_CORE --configs=915,955,915rep]

Each round runs, for every configuration, ``bench_train_step.py`` once for MindSpore and once for PyTorch,
each in its own process (mindspore, torch, mindspore, torch, ...), so slow drifts of the machine's load hit
both frameworks alike. Per run the step time is the median over its timed steps; the table gives, per
framework, the median of the per-run medians and their spread (min-max over the runs), and the ratio
MindSpore / PyTorch of the medians against the target:

    915     9-1-5, batch 16, 33x33, valid        MindSpore <= 0.8x PyTorch
    955     9-5-5, batch 16, 33x33, valid        MindSpore <= 0.8x PyTorch
    915rep  9-1-5, batch 64, 48x48, replicate    MindSpore <= 1.0x PyTorch

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
    "955": dict(arch="9-5-5", batch_size=16, patch_size=33, padding="valid", target=0.8),
    "915rep": dict(arch="9-1-5", batch_size=64, patch_size=48, padding="replicate", target=1.0),
}


def run_one(framework, config, args):
    """One bench_train_step.py process; its JSON record."""
    cmd = [sys.executable, os.path.join(HERE, "bench_train_step.py"), f"--framework={framework}",
           f"--arch={config['arch']}", f"--batch_size={config['batch_size']}",
           f"--patch_size={config['patch_size']}", f"--padding={config['padding']}",
           f"--steps={args.steps}", f"--warmup={args.warmup}"]
    if framework == "mindspore":
        cmd += [f"--variant={args.variant}"] + ([f"--onednn_isa={args.onednn_isa}"] if args.onednn_isa else [])
    else:
        cmd.append(f"--threads={args.torch_threads}")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1])


def summarize(records):
    times = sorted(r["ms_per_step"] for r in records)
    return {"median": statistics.median(times), "min": times[0], "max": times[-1], "runs": len(times),
            "gflops_per_s": statistics.median(r["gflops_per_s"] for r in records),
            "mpix_per_s": statistics.median(r["mpix_per_s"] for r in records), "variant": records[0]["variant"]}


def table(results, markdown):
    header = ["configuration", "MindSpore ms/step (min-max)", "PyTorch ms/step (min-max)", "ratio MS/PT",
              "target", "met", "MS GFLOP/s", "PT GFLOP/s"]
    rows = []
    for name, res in results.items():
        cfg, ms_, pt = CONFIGS[name], res["mindspore"], res["torch"]
        ratio = ms_["median"] / pt["median"]
        rows.append([f"{cfg['arch']} b{cfg['batch_size']} {cfg['patch_size']}x{cfg['patch_size']} {cfg['padding']}",
                     f"{ms_['median']:.2f} ({ms_['min']:.2f}-{ms_['max']:.2f})",
                     f"{pt['median']:.2f} ({pt['min']:.2f}-{pt['max']:.2f})", f"{ratio:.2f}",
                     f"<= {cfg['target']:.1f}", "yes" if ratio <= cfg["target"] else "no",
                     f"{ms_['gflops_per_s']:.0f}", f"{pt['gflops_per_s']:.0f}"])
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
    parser.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated subset of {list(CONFIGS)}")
    parser.add_argument("--variant", choices=("auto", "plain", "gemm"), default="auto")
    parser.add_argument("--onednn_isa", default="", help="MindSpore runs: ONEDNN_MAX_CPU_ISA (see bench_train_step)")
    parser.add_argument("--torch_threads", type=int, default=2, help="torch.set_num_threads for the PyTorch runs")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown rows")
    parser.add_argument("--json", default="", help="also write every run's record and the summary here")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    unknown = [n for n in names if n not in CONFIGS]
    if unknown or args.rounds < 1 or args.steps < 1:
        parser.error(f"unknown configs {unknown}" if unknown else "rounds and steps must be >= 1")
    records = {n: {"mindspore": [], "torch": []} for n in names}
    for r in range(args.rounds):
        for name in names:
            for framework in ("mindspore", "torch"):
                rec = run_one(framework, CONFIGS[name], args)
                records[name][framework].append(rec)
                print(f"round {r + 1}/{args.rounds} {name} {framework}: {rec['ms_per_step']:.2f} ms/step",
                      file=sys.stderr, flush=True)
    results = {n: {fw: summarize(recs) for fw, recs in by_fw.items()} for n, by_fw in records.items()}
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# {stamp}, {platform.node()}, {os.cpu_count()} CPUs, load average at the end {load:.2f}, "
          f"{args.rounds} rounds x {args.steps} steps, MindSpore variant {args.variant}"
          + (f", ONEDNN_MAX_CPU_ISA={args.onednn_isa}" if args.onednn_isa else "")
          + (f", PyTorch threads {args.torch_threads}" if args.torch_threads != 2 else ""))
    print(table(results, args.markdown))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"date": stamp, "args": vars(args), "summary": results, "runs": records}, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
