"""Evaluate an SRCNN checkpoint on an image folder with the SRCNN_v1 protocol (Y, shave=scale, PSNR/SSIM).

    python eval.py --data_path=Set5 --checkpoint_path=srcnn_x2.ckpt --scale=2 [--output_json=FILE]
"""
import src  # noqa: F401  (CPU kernel setting, before MindSpore loads)
from src.errors import run_cli


def main(argv):
    from src.model_utils.config import get_config

    cfg = get_config(argv, description=__doc__)
    from src.eval_ms import run_eval

    run_eval(cfg)


if __name__ == "__main__":
    run_cli(main)
