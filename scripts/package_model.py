"""Package a finished training run as the shipped model pretrained/srcnn_x<scale>.{ckpt,yaml,json}, with its
training log and curves (see src/release/package.py).

    python scripts/package_model.py --run_dir=runs/srcnn_x2 --recipe=configs/srcnn_x2.yaml
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import src  # noqa: E402,F401  (CPU kernel setting, before MindSpore loads)
from src.utils.errors import run_cli  # noqa: E402


def main(argv):
    from src.release.package import main as run

    return run(argv)


if __name__ == "__main__":
    run_cli(main)
