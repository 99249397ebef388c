"""Convert a model of the authors' MATLAB package (SRCNN_v1, e.g. model/9-5-5(ImageNet)/x3.mat) to a checkpoint.

    python src/convert_official_weights.py --mat_path=x3.mat --output=srcnn_955_x3.ckpt [--scale=3]

The MAT-file layout and the conversion: src/model/official_weights.py.
"""
import argparse
import os
import sys

if __name__ == "__main__" and not __package__:  # run as a script: the repo root replaces src/ on sys.path
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import src  # noqa: E402,F401  (CPU kernel setting, before MindSpore loads)
from src.model.official_weights import convert  # noqa: E402
from src.utils.checks import check_output_folder, check_outputs_spare_inputs  # noqa: E402
from src.utils.errors import run_cli  # noqa: E402


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mat_path", required=True, help="SRCNN_v1 MAT-file, e.g. model/9-5-5(ImageNet)/x3.mat")
    parser.add_argument("--output", required=True, help="checkpoint to write (.ckpt)")
    parser.add_argument("--scale", type=int, choices=(2, 3, 4), help="recorded in the checkpoint")
    args = parser.parse_args(argv)

    check_output_folder(os.path.dirname(os.path.abspath(args.output)), "output")
    check_outputs_spare_inputs([("output", args.output)], [("mat_path", args.mat_path)])
    arch, n1, n2 = convert(args.mat_path, args.output, args.scale)
    print(f"{args.mat_path}: SRCNN {arch} (n1={n1}, n2={n2}) -> {args.output}")


if __name__ == "__main__":
    run_cli(main)
