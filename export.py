"""Export an SRCNN checkpoint for deployment (architecture read off the checkpoint).

    python export.py --checkpoint_path=srcnn_x2.ckpt --file_format=MINDIR|ONNX|AIR [--file_name=srcnn]
                     [--image_height=H --image_width=W]

Without a size the model takes images of any size (MINDIR [1,1,H,W], ONNX [N,1,H,W] dynamic); with one
its input is a static [1,1,H,W]. AIR needs device_target=Ascend. The written file's path is printed last.
"""
import src  # noqa: F401  (CPU kernel setting, before MindSpore loads)
from src.utils.errors import run_cli


def main(argv):
    from src.model_utils.config import get_config

    cfg = get_config(argv, script=__file__, description=__doc__)
    from src.deploy.export import run_export

    run_export(cfg)


if __name__ == "__main__":
    run_cli(main)
