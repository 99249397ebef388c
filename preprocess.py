"""Prepare the inputs of offline (Ascend 310) inference: one float32 [1,1,H,W] .bin file per image.

    python preprocess.py --data_path=Set5 --output_path=OUT --scale=2 --image_height=H --image_width=W

Each ground-truth image goes through the eval.py protocol (modcrop, Y, bicubic down and up); the bicubic
input is padded (edge replication, bottom/right) to H x W, the static input size the MINDIR was exported
with, and written to OUT/00_data/<name>.bin (nested folders flattened with '__'). OUT/meta.json keeps each
image's real size for postprocess.py. H = W = 0 pads to the largest image. No MindSpore needed.
"""
import src  # noqa: F401
from src.utils.errors import run_cli


def main(argv):
    from src.model_utils.config import get_config

    cfg = get_config(argv, script=__file__, description=__doc__)
    from src.deploy.ascend310 import run_preprocess

    run_preprocess(cfg)


if __name__ == "__main__":
    run_cli(main)
