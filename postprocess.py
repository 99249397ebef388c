"""Score the outputs of offline (Ascend 310) inference with the eval.py protocol.

    python postprocess.py --data_path=Set5 --result_path=RESULT --preprocess_path=OUT --scale=2
                          [--output_json=FILE]

--preprocess_path is the output_path of preprocess.py (it holds meta.json); RESULT holds the harness's
<name>_0.bin outputs. Each output is cropped to its image's real size and scored (Y, shave = scale) against
the ground truth of --data_path; prints the same table and result line as eval.py. No MindSpore needed.
"""
import src  # noqa: F401
from src.utils.errors import run_cli


def main(argv):
    from src.model_utils.config import get_config

    cfg = get_config(argv, script=__file__, description=__doc__)
    from src.deploy.ascend310 import run_postprocess

    run_postprocess(cfg)


if __name__ == "__main__":
    run_cli(main)
