"""Super-resolve images with an SRCNN checkpoint.

    python test.py --input_path=IMAGE_OR_FOLDER --output_path=OUT --scale=2 [--checkpoint_path=CKPT]
                   [--mode=upscale|degrade] [--compare=true] [--tile_size=N]

upscale (default): each input is a low-resolution image, made scale x larger (Y by SRCNN, Cb/Cr bicubic;
gray stays gray). degrade: each input is a ground truth, degraded by the eval.py protocol, restored and
scored (PSNR/SSIM table). Results: OUT/<folder>/<stem>_srcnn_x<scale>.png (+ <stem>_compare_x<scale>.png
with --compare=true: bicubic | SRCNN | ground truth with zoomed details). Folders are searched recursively.
"""
import src  # noqa: F401  (CPU kernel setting, before MindSpore loads)
from src.utils.errors import run_cli


def main(argv):
    from src.model_utils.config import get_config

    cfg = get_config(argv, script=__file__, description=__doc__)
    from src.infer.upscale import run_test

    run_test(cfg)


if __name__ == "__main__":
    run_cli(main)
