"""Time src/create_dataset.py: one build per scale into a temporary folder, one JSON line per run.

    python benchmarks/bench_create_dataset.py [--data_path=/work/shared/datasets/T91 --scales=2,3,4 --stride=14
                                               --patch_size=33 --num_workers=2]
"""
import argparse
import json
import os
import sys
import tempfile

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

import src  # noqa: E402,F401  (CPU kernel setting, before MindSpore loads)
from src.data.mindrecord import build_dataset  # noqa: E402
from src.utils.errors import run_cli  # noqa: E402


def _scales(text):
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data_path", default=os.path.join(os.path.dirname(REPO_ROOT), "shared", "datasets", "T91"))
    parser.add_argument("--scales", type=_scales, default=[2, 3, 4])
    parser.add_argument("--stride", type=int, default=14)
    parser.add_argument("--patch_size", type=int, default=33)
    parser.add_argument("--num_workers", type=int, default=2)
    args = parser.parse_args(argv)
    for scale in args.scales:
        with tempfile.TemporaryDirectory(prefix="bench_create_dataset_") as folder:
            result = build_dataset(args.data_path, folder, scale=scale, patch_size=args.patch_size,
                                   stride=args.stride, num_workers=args.num_workers, show_progress=False)
        seconds = result["seconds"]
        print(json.dumps({"scale": scale, "images": result["images"], "patches": result["count"],
                          "seconds": round(seconds, 3), "images_per_s": round(result["images"] / seconds, 2),
                          "patches_per_s": round(result["count"] / seconds, 1), "num_workers": args.num_workers}),
              flush=True)
    return 0


if __name__ == "__main__":
    run_cli(main)
