"""Run a MINDIR model like the Ascend 310 harness (ascend310_infer/out/main), on CPU in Python.

    python scripts/run_infer_reference.py --mindir_path=srcnn.mindir --input_path=OUT/00_data --result_path=DIR

See --help (and src/reference_runner.py) for the evaluation and --print_input_shape modes.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import src  # noqa: E402,F401  (CPU kernel setting, before MindSpore loads)
from src.utils.errors import run_cli  # noqa: E402


def main(argv):
    from src.deploy.reference_runner import main as run

    return run(argv)


if __name__ == "__main__":
    run_cli(main)
