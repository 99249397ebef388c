"""The main job on a fresh machine, with no download: train SRCNN x2 for a few minutes on photographs that
scikit-image ships, then score it against bicubic on two held-out photographs.

It runs the repository's own entry points (create_dataset -> train.py -> eval.py) in subprocesses, exactly
as a user would. scikit-image is used only here, as the source of real photographs that need no download.
Run again, it continues the run in --output_path (or, if that run finished, only evaluates it again).
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
from PIL import Image

from src import REPO_ROOT

REPO = REPO_ROOT


# Photographs bundled inside the scikit-image wheel (no network). Held out: astronaut, coffee.
TRAIN_IMAGES = ("camera", "chelsea", "rocket", "coins", "moon", "hubble_deep_field", "gravel", "brick", "grass",
                "page")


HELD_OUT_IMAGES = ("astronaut", "coffee")


def export_photos(names, folder):
    # skimage imported here, not at the top: only the path that needs it loads it
    import skimage.data

    os.makedirs(folder, exist_ok=True)
    for name in names:
        img = np.asarray(getattr(skimage.data, name)())
        if img.ndim == 3 and img.shape[2] == 4:
            img = img[..., :3]
        Image.fromarray(img).save(os.path.join(folder, f"{name}.png"))


def run(step, args):
    print(f"\n==> {step}: {' '.join(args)}", flush=True)
    proc = subprocess.run([sys.executable, *args], cwd=REPO, check=False)
    if proc.returncode:  # the entry point has printed its own error line
        raise SystemExit(proc.returncode)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output_path", default=os.path.join(REPO, "output", "quickstart"))
    parser.add_argument("--train_steps", type=int, default=3000)
    args = parser.parse_args()
    out = args.output_path
    start = time.time()
    export_photos(TRAIN_IMAGES, os.path.join(out, "images", "train"))
    export_photos(HELD_OUT_IMAGES, os.path.join(out, "images", "held_out"))
    run("patches", ["src/create_dataset.py", f"--src_folder={out}/images/train",
                    f"--output_folder={out}/mindrecord", "--scale=2", "--patch_size=33", "--stride=14"])
    run("train", ["train.py", f"--data_path={out}/mindrecord", f"--output_path={out}/run", "--scale=2",
                  "--lr=0.001", "--lr_schedule=cosine", "--min_lr=0.00001", "--batch_size=32",
                  f"--train_steps={args.train_steps}", "--augment=true", "--log_interval=250", "--resume=true",
                  f"--save_checkpoint_steps={args.train_steps}", "--val_interval=1000",
                  f"--validation_path={out}/images/held_out"])
    result_json = os.path.join(out, "eval_held_out.json")
    run("evaluate", ["eval.py", f"--data_path={out}/images/held_out",
                     f"--checkpoint_path={out}/run/ckpt_0/srcnn-final.ckpt", "--scale=2",
                     f"--output_json={result_json}"])
    with open(result_json, encoding="utf-8") as handle:
        result = json.load(handle)
    gain = result["psnr"] - result["bicubic_psnr"]
    print(f"\nheld-out x2: SRCNN {result['psnr']:.2f} dB vs bicubic {result['bicubic_psnr']:.2f} dB "
          f"({gain:+.2f} dB) after {args.train_steps} steps; total {time.time() - start:.0f} s")
    return 0 if gain > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
