"""Packaging a finished training run as a shipped model: pretrained/srcnn_x<scale>.{ckpt,yaml,json}, its
training log and curves. The checkpoint keeps the weights only (no Adam moments) plus the run's metadata; the
JSON records what the run cost (steps, training pixels, hours) and where it ran."""
import argparse
import json
import os

import yaml

from src import REPO_ROOT
from src.model.arch import loss_side
from src.protocol.report import file_sha256, write_json
from src.train.plot import plot_training_log
from src.utils.errors import UserError
from src.utils.file_io import copy_atomic, read_jsonl

REPO = REPO_ROOT


# recipe keys that the checkpoint's own metadata must agree with
CHECKED = ("arch", "n1", "n2", "padding", "scale", "seed")


def training_cost(records, batch_size, output_side):
    """(steps, training output pixels, seconds of training steps) from a train_log.jsonl's loss records:
    each record holds the mean step time of the interval ending at its step (validation excluded).
    ``output_side``: the side of the loss's square per patch (src.model.arch.loss_side)."""
    seconds, previous, steps = 0.0, 0, 0
    for record in records:
        if "loss" in record:
            seconds += record["ms_per_step"] / 1000 * (record["step"] - previous)
            previous = steps = record["step"]
    return steps, steps * batch_size * output_side ** 2, seconds


def model_stem(arch, scale):
    """File stem of a shipped model: srcnn_x<scale> for the paper's 9-1-5, srcnn_955_x<scale> for 9-5-5."""
    arch = arch if isinstance(arch, str) else str(arch)
    return f"srcnn_x{int(scale)}" if arch == "9-1-5" else f"srcnn_{arch.replace('-', '')}_x{int(scale)}"


def package(run_dir, recipe_path, out_dir, host=None, note="", commit=None):
    """Write the shipped files for the finished run in ``run_dir`` trained with ``recipe_path``; returns the
    summary dict."""
    # imported here, not at the top: the command checks its inputs before MindSpore starts (seconds)
    import mindspore as ms

    from src.model.checkpoint import PARAM_NAMES, read_checkpoint, save_checkpoint

    final = os.path.join(run_dir, "ckpt_0", "srcnn-final.ckpt")
    log_path = os.path.join(run_dir, "train_log.jsonl")
    for path, what in ((final, "the run's final checkpoint (is the run finished?)"), (log_path, "the run's log"),
                       (recipe_path, "the recipe")):
        if not os.path.isfile(path):
            raise UserError(f"{path} does not exist: expected {what}")
    with open(recipe_path, encoding="utf-8") as handle:
        recipe = yaml.safe_load(handle)
    entries = read_checkpoint(final)
    for key in CHECKED + ("total_steps",):
        recipe_key = "train_steps" if key == "total_steps" else key
        have = entries.get(key)
        have = have if isinstance(have, str) else (None if have is None else have.item())
        if have is not None and recipe.get(recipe_key) is not None and have != recipe[recipe_key]:
            raise UserError(f"{final} was trained with {key}={have!r} but {recipe_path} says "
                            f"{recipe_key}={recipe[recipe_key]!r}")
    records = read_jsonl(log_path)
    side = loss_side(recipe["patch_size"], recipe.get("arch", "9-1-5"), recipe.get("padding", "replicate"))
    steps, pixels, seconds = training_cost(records, recipe["batch_size"], side)
    if steps != recipe["train_steps"]:
        raise UserError(f"{log_path} ends at step {steps}, the recipe has train_steps={recipe['train_steps']}")
    hosts = sorted({r["host"] for r in records if r.get("event") == "start"})
    if host:
        hosts = [host]
    if not hosts:
        raise UserError(f"{log_path} does not name the host it ran on (older log): give --host=...")
    commits = sorted({r["commit"] for r in records if r.get("event") == "start" and r.get("commit")})
    if commit:
        commits = [commit]
    if not commits:
        raise UserError(f"{log_path} does not name the commit it was trained with (older log): give --commit=...")
    scale = int(recipe["scale"])
    stem = os.path.join(out_dir, model_stem(recipe.get("arch", "9-1-5"), scale))
    os.makedirs(out_dir, exist_ok=True)
    meta = {k: (entries[k] if isinstance(entries[k], str) else entries[k].item())
            for k in CHECKED + ("step", "total_steps") if k in entries}
    meta["recipe"] = f"configs/{os.path.basename(recipe_path)}"
    weights = [{"name": name, "data": ms.Tensor(entries[name])} for name in PARAM_NAMES]
    save_checkpoint(weights, stem + ".ckpt", meta)
    copy_atomic(recipe_path, stem + ".yaml")
    copy_atomic(log_path, stem + "_train_log.jsonl")
    plot_training_log(stem + "_train_log.jsonl", stem + "_curves.png")
    digest = file_sha256(stem + ".ckpt")
    validation = [(r["step"], round(r["val_psnr"], 3)) for r in records if "val_psnr" in r]
    summary = {"scale": scale, "arch": meta.get("arch"), "steps": steps, "train_pixels": pixels,
               "train_seconds": round(seconds, 1), "hardware": hosts, "commit": commits, "note": note,
               "sha256": digest,
               "validation_psnr": validation}
    write_json(summary, stem + ".json")
    return summary


def main(argv):
    parser = argparse.ArgumentParser(description="Package a finished training run as pretrained/srcnn_x<scale>.*")
    parser.add_argument("--run_dir", required=True, help="train.py's output_path of the finished run")
    parser.add_argument("--recipe", required=True, help="the configs/srcnn_x<scale>.yaml the run used")
    parser.add_argument("--out_dir", default=os.path.join(REPO, "pretrained"))
    parser.add_argument("--host", default=None, help="hardware, for logs that predate the host record")
    parser.add_argument("--note", default="", help="anything a reader of the results should know")
    parser.add_argument("--commit", default=None, help="the code's git commit, for logs that predate the commit record")
    args = parser.parse_args(argv)
    summary = package(args.run_dir, args.recipe, args.out_dir, args.host, args.note, args.commit)
    print(json.dumps({k: v for k, v in summary.items() if k != "validation_psnr"}))
