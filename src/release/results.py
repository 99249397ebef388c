"""The README's results tables, made from evaluation JSONs (never typed by hand).

``results/bicubic_x<s>_<dataset>.json`` come from the framework-free protocol with the identity as the model;
``results/<model>_x<s>_<dataset>.json`` from ``eval.py --output_json`` on each shipped
pretrained/<model>_x<s>.ckpt, <model> one of FAMILIES (run as a subprocess: the README's own command). A model's results must name the checkpoint's sha256, so a
table can never mix a new checkpoint with an old evaluation. The tables go between marker comments in
README.md and README_CN.md.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

from src import REPO_ROOT
from src.protocol import scoring
from src.protocol.report import file_sha256, write_json
from src.utils.errors import UserError
from src.utils.file_io import copy_atomic, write_text_atomic

REPO = REPO_ROOT


SCALES = (2, 3, 4)


DATASETS = ("Set5", "Set14", "BSDS200", "BSD100")


# Dong et al., TPAMI 2016 (Set5 / Set14 PSNR; the paper gives no SSIM for these rows)
PAPER = {
    "paper_915": {("Set5", 2): 36.34, ("Set5", 3): 32.39, ("Set5", 4): 30.09,
                  ("Set14", 2): 32.18, ("Set14", 3): 29.00, ("Set14", 4): 27.20},
    "paper_955": {("Set5", 2): 36.66, ("Set5", 3): 32.75, ("Set5", 4): 30.49,
                  ("Set14", 2): 32.45, ("Set14", 3): 29.30, ("Set14", 4): 27.50},
}


LABELS = {
    "en": {"dataset": "dataset", "method": "method", "bicubic": "bicubic", "ours": "this repo, 9-1-5, T91",
           "ours_955": "this repo, 9-5-5, 291 images", "trained_on": "training data",
           "scale": "scale", "model": "checkpoint", "steps": "steps", "gpix": "training Gpix",
           "hours": "training wall time (h)", "hardware": "hardware", "none": "not trained yet",
           "paper_915": "paper 9-1-5, 91 images", "paper_955": "paper 9-5-5, ImageNet"},
    "cn": {"dataset": "数据集", "method": "方法", "bicubic": "双三次插值", "ours": "本仓库, 9-1-5, T91",
           "ours_955": "本仓库, 9-5-5, 291 张图像", "trained_on": "训练数据",
           "scale": "倍数", "model": "检查点", "steps": "步数", "gpix": "训练像素 (G)",
           "hours": "训练墙钟时间 (小时)", "hardware": "硬件", "none": "尚未训练",
           "paper_915": "论文 9-1-5, 91 张图像", "paper_955": "论文 9-5-5, ImageNet"},
}


# shipped model families: (file prefix, table key); a family's rows appear once one of its models is shipped
FAMILIES = (("srcnn", "ours"), ("srcnn_955", "ours_955"))


# datasets a family was trained on: marked in the table instead of scored as a test set
TRAINED_ON = {"ours_955": ("BSDS200",)}


BEGIN, END = "<!-- results:begin (scripts/make_results.py writes this part) -->", "<!-- results:end -->"


def result_path(results_dir, kind, scale, dataset):
    return os.path.join(results_dir, f"{kind}_x{scale}_{dataset}.json")


def shipped(pretrained_dir, scale, prefix="srcnn"):
    path = os.path.join(pretrained_dir, f"{prefix}_x{scale}.ckpt")
    return path if os.path.isfile(path) else None


def _run(command):
    print("$ " + " ".join(command[1:]), flush=True)
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise UserError(f"{os.path.basename(command[1])} failed: {last}")
    return proc.stdout


def comparison(image, scale, checkpoint, out_png, python=sys.executable):
    """bicubic | SRCNN | ground truth of one image (test.py --mode=degrade --compare=true) as ``out_png``."""
    with tempfile.TemporaryDirectory() as tmp:
        _run([python, os.path.join(REPO, "test.py"), f"--input_path={image}", f"--output_path={tmp}",
              f"--scale={scale}", f"--checkpoint_path={checkpoint}", "--mode=degrade", "--compare=true"])
        made = os.path.join(tmp, f"{os.path.splitext(os.path.basename(image))[0]}_compare_x{scale}.png")
        copy_atomic(made, out_png, what="comparison image")


def _current(path, digest=None):
    """An evaluation JSON that need not be redone: it exists and (for a model) names this checkpoint."""
    return os.path.isfile(path) and (digest is None or _load(path).get("checkpoint_sha256") == digest)


def evaluate(datasets_dir, results_dir, pretrained_dir, comparison_image, force=False, python=sys.executable):
    """Compute the JSONs that are missing or stale (all with ``force``): bicubic in-process, each shipped model
    through eval.py; and a shipped model's comparison image whenever its evaluation is redone."""
    for scale in SCALES:
        for dataset in DATASETS:
            data_path = os.path.join(datasets_dir, dataset)
            if not os.path.isdir(data_path):
                raise UserError(f"datasets_dir {datasets_dir} has no {dataset} folder")
            bicubic = result_path(results_dir, "bicubic", scale, dataset)
            if force or not _current(bicubic):
                skipped = []
                images = scoring.iter_images(data_path, scale, skipped, show_progress=False)
                write_json(scoring.evaluate(lambda lr_up, name: lr_up, images, scale, source=data_path,
                                            skipped=skipped), bicubic)
        for prefix, _ in FAMILIES:
            checkpoint = shipped(pretrained_dir, scale, prefix)
            if not checkpoint:
                continue
            digest = file_sha256(checkpoint)
            if not force and all(_current(result_path(results_dir, prefix, scale, d), digest) for d in DATASETS):
                continue
            comparison(os.path.join(datasets_dir, comparison_image), scale, checkpoint,
                       os.path.join(pretrained_dir, f"{prefix}_x{scale}_comparison.png"), python)
            for dataset in DATASETS:
                out = result_path(results_dir, prefix, scale, dataset)
                stdout = _run([python, os.path.join(REPO, "eval.py"), f"--data_path={os.path.join(datasets_dir, dataset)}",
                               f"--scale={scale}", f"--checkpoint_path={checkpoint}", f"--output_json={out}"])
                print(stdout.strip().splitlines()[-1], flush=True)


def _load(path):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def collect(results_dir, pretrained_dir):
    """{(method, dataset, scale): (psnr, ssim or None)} and the training summaries {(family key, scale): dict}
    of the shipped models."""
    table, training = {}, {}
    for scale in SCALES:
        for dataset in DATASETS:
            bicubic = result_path(results_dir, "bicubic", scale, dataset)
            if not os.path.isfile(bicubic):
                raise UserError(f"{bicubic} does not exist: run scripts/make_results.py --evaluate")
            data = _load(bicubic)
            table[("bicubic", dataset, scale)] = (data["psnr"], data["ssim"])
        for prefix, key in FAMILIES:
            checkpoint = shipped(pretrained_dir, scale, prefix)
            if not checkpoint:
                continue
            digest = file_sha256(checkpoint)
            summary = os.path.join(pretrained_dir, f"{prefix}_x{scale}.json")
            if os.path.isfile(summary):
                training[(key, scale)] = _load(summary)
            for dataset in DATASETS:
                ours = result_path(results_dir, prefix, scale, dataset)
                if not os.path.isfile(ours):
                    raise UserError(f"{ours} does not exist: run scripts/make_results.py --evaluate")
                data = _load(ours)
                if data.get("checkpoint_sha256") != digest:
                    raise UserError(f"{ours} was made with another checkpoint than {checkpoint}: run "
                                    f"scripts/make_results.py --evaluate")
                table[(key, dataset, scale)] = (data["psnr"], data["ssim"])
        for name, values in PAPER.items():
            for (dataset, paper_scale), value in values.items():
                if paper_scale == scale:
                    table[(name, dataset, scale)] = (value, None)
    return table, training


def _cell(entry):
    if entry is None:
        return "—"
    psnr, ssim = entry
    return f"{psnr:.2f}" if ssim is None else f"{psnr:.2f} / {ssim:.4f}"


def markdown(table, training, language="en"):
    """The PSNR / SSIM table (rows: dataset x method, columns: scales) and the training table."""
    label = LABELS[language]
    shipped_keys = [key for _, key in FAMILIES if key == "ours" or any(k == key for k, _ in training)]
    methods = ([("bicubic", label["bicubic"])] + [(name, label[name]) for name in PAPER]
               + [(key, label[key]) for key in shipped_keys])
    lines = [f"| {label['dataset']} | {label['method']} | " + " | ".join(f"×{s}" for s in SCALES) + " |",
             "|---|---|" + "---|" * len(SCALES)]
    for dataset in DATASETS:
        for key, name in methods:
            cells = [table.get((key, dataset, s)) for s in SCALES]
            if key in PAPER and all(c is None for c in cells):
                continue
            if key in shipped_keys:
                if dataset in TRAINED_ON.get(key, ()):
                    cells = [label["trained_on"] if c is not None else label["none"] for c in cells]
                cells = [c if c is not None else label["none"] for c in cells]
                text = [c if isinstance(c, str) else f"**{_cell(c)}**" for c in cells]
            else:
                text = [_cell(c) for c in cells]
            lines.append(f"| {dataset} | {name} | " + " | ".join(text) + " |")
    lines += ["", f"| {label['scale']} | {label['model']} | {label['steps']} | {label['gpix']} | "
              f"{label['hours']} | {label['hardware']} |", "|---|---|---|---|---|---|"]
    prefixes = dict((key, prefix) for prefix, key in FAMILIES)
    for key in shipped_keys:
        prefix = prefixes[key]
        for scale in SCALES:
            info = training.get((key, scale))
            if info is None:
                if key == "ours":
                    lines.append(f"| ×{scale} | — | — | — | — | {label['none']} |")
                continue
            hardware = "; ".join(info["hardware"]) + (f" ({info['note']})" if info.get("note") else "")
            lines.append(f"| ×{scale} | `pretrained/{prefix}_x{scale}.ckpt` | {info['steps']} | "
                         f"{info['train_pixels'] / 1e9:.1f} | {info['train_seconds'] / 3600:.2f} | {hardware} |")
    for key in shipped_keys:
        prefix = prefixes[key]
        tag = "" if key == "ours" else f" {prefix.split('_', 1)[1]}"
        for scale in SCALES:
            if (key, scale) in training:
                lines += ["", f"×{scale}{tag}: ![x{scale}{tag} training curves](pretrained/{prefix}_x{scale}_curves.png)",
                          f"![x{scale}{tag} comparison](pretrained/{prefix}_x{scale}_comparison.png)"]
    return "\n".join(lines)


def replace_between_markers(path, body):
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    if text.count(BEGIN) != 1 or text.count(END) != 1:
        raise UserError(f"{path} must hold the markers {BEGIN} and {END} once each")
    head, rest = text.split(BEGIN)
    _, tail = rest.split(END)
    write_text_atomic(path, f"{head}{BEGIN}\n{body}\n{END}{tail}", what="README")


def main(argv):
    parser = argparse.ArgumentParser(description="Make the README results tables from evaluation JSONs.")
    parser.add_argument("--datasets_dir", default=os.environ.get("SRCNN_DATASETS",
                                                                 os.path.join(REPO, "..", "shared", "datasets")))
    parser.add_argument("--results_dir", default=os.path.join(REPO, "results"))
    parser.add_argument("--pretrained_dir", default=os.path.join(REPO, "pretrained"))
    parser.add_argument("--evaluate", action="store_true",
                        help="first compute the JSONs that are missing or made with another checkpoint")
    parser.add_argument("--force", action="store_true", help="with --evaluate: recompute every JSON")
    parser.add_argument("--comparison_image", default=os.path.join("Set5", "butterfly.png"),
                        help="image (under datasets_dir) of each model's comparison PNG")
    parser.add_argument("--readme", nargs="*", default=[os.path.join(REPO, "README.md"),
                                                         os.path.join(REPO, "README_CN.md")])
    args = parser.parse_args(argv)
    if args.evaluate:
        evaluate(args.datasets_dir, args.results_dir, args.pretrained_dir, args.comparison_image, args.force)
    table, training = collect(args.results_dir, args.pretrained_dir)
    for readme in args.readme:
        language = "cn" if readme.endswith("_CN.md") else "en"
        replace_between_markers(readme, markdown(table, training, language))
        print(f"wrote the results tables into {readme}")
