"""Run a MINDIR model like the Ascend 310 harness (ascend310_infer/out/main), on CPU with MindSpore (GraphCell).

    python scripts/run_infer_reference.py --mindir_path=FILE --input_path=DIR [--result_path=DIR]
                                          [--device_type=Ascend|CPU] [--device_id=N]
    python scripts/run_infer_reference.py --mindir_path=FILE --data_path=DIR [--scale=2] [--output_json=FILE]
    python scripts/run_infer_reference.py --mindir_path=FILE --print_input_shape

Every *.bin file of --input_path (sorted by name) holds the float32 input tensor of one image, of exactly the
byte size of the model input; output 0 is written to RESULT/<name>_0.bin (default ./result_Files).
--data_path instead evaluates the model on ground-truth images (eval.py's protocol, table and result line);
--print_input_shape prints the static input size as "H W". --device_type/--device_id are accepted for
compatibility with the harness: this runner always uses the CPU. See src/deploy/reference_runner.py.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import src  # noqa: E402,F401  (CPU kernel setting, before MindSpore loads)
from src.utils.errors import run_cli  # noqa: E402


def main(argv):
    from src.deploy.reference_runner import harness_flags, run_reference
    from src.model_utils.config import get_config

    run_reference(get_config(harness_flags(argv), script=__file__, description=__doc__))


if __name__ == "__main__":
    run_cli(main)
