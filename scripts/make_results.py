"""The README results tables from evaluation JSONs (src/release/results.py).

    python scripts/make_results.py [--evaluate [--force]] [--datasets_dir=../shared/datasets]

--evaluate first computes the results/*.json that are missing or were made with another checkpoint (bicubic
in-process, eval.py on each pretrained/srcnn_x<s>.ckpt); --force recomputes them all.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import src  # noqa: E402,F401  (CPU kernel setting, before MindSpore loads)
from src.utils.errors import run_cli  # noqa: E402


def main(argv):
    from src.release.results import main as run

    return run(argv)


if __name__ == "__main__":
    run_cli(main)
