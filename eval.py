"""Evaluate an SRCNN checkpoint on an image folder with the SRCNN_v1 protocol (Y, shave=scale, PSNR/SSIM).

    python eval.py --data_path=Set5 --checkpoint_path=srcnn_x2.ckpt --scale=2 [--output_json=FILE]
                   [--save_images=DIR]

Unreadable images and images too small to score (the protocol's shave + SSIM window, or the network's receptive
field) are skipped with a warning and listed. --save_images writes per image <name>_srcnn_x<scale>.png (colour
inputs: SRCNN's Y with the bicubic Cb/Cr) and <name>_compare_x<scale>.png (bicubic | SRCNN | ground truth, with a
zoom of the most detailed region), as test.py --mode=degrade --compare=true does.
"""
import src  # noqa: F401  (CPU kernel setting, before MindSpore loads)
from src.utils.errors import run_cli


def main(argv):
    from src.model_utils.config import get_config

    cfg = get_config(argv, script=__file__, description=__doc__)
    from src.infer.evaluate import run_eval

    run_eval(cfg)


if __name__ == "__main__":
    run_cli(main)
