"""Build the SRCNN training set: a MindRecord of (bicubic LR, HR) Y-channel patch pairs.

    python src/create_dataset.py --src_folder=T91 --output_folder=data [--scale=2 --patch_size=33 --stride=14
                                 --num_workers=2 --downscale_factors=1.0,0.9]

Every readable image under src_folder (recursively) is, for each downscale factor f, shrunk by f (when f < 1;
scale-space augmentation), then put through the test protocol (src.protocol.prepare_pair: modcrop, Y, bicubic
down and back up without rounding) and cut into patch_size x patch_size sub-images every `stride` pixels. The
output is <output_folder>/srcnn_x{scale}_p{patch_size}_s{stride}.mindrecord (+ its .db index) with float32
columns lr and hr of shape [1, P, P] in [0, 1], and a .mindrecord.json sidecar describing the run.
Unreadable and too-small images are skipped with a warning. The output appears only once complete.
"""
import os
import sys

if __name__ == "__main__" and not __package__:  # run as a script: the repo root replaces src/ on sys.path
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
import signal  # noqa: E402

import src  # noqa: E402,F401  (CPU kernel setting, before MindSpore loads)
from src.data.mindrecord import _summary_line, build_dataset  # noqa: E402
from src.model_utils.config import get_config  # noqa: E402
from src.utils.errors import Terminated, run_cli, unblock_signals  # noqa: E402


def main(argv=None):
    cfg = get_config(argv, script="create_dataset.py", description=__doc__.split("\n\n")[0])

    def interrupted(signum, frame):  # cleaned up by build_dataset (its pool and temporary folder)
        raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt

    previous = {signum: signal.signal(signum, interrupted) for signum in (signal.SIGINT, signal.SIGTERM)
                if signal.getsignal(signum) is not signal.SIG_IGN}
    unblock_signals()  # this script cleans up through KeyboardInterrupt (its pool, see _signals_deferred)
    try:
        result = build_dataset(cfg.src_folder, cfg.output_folder, scale=cfg.scale, patch_size=cfg.patch_size,
                               stride=cfg.stride, downscale_factors=cfg.downscale_factors,
                               num_workers=cfg.num_workers, holdout=cfg.holdout_images,
                               config_files=cfg.config_files())
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    print(_summary_line(result), flush=True)
    return 0


if __name__ == "__main__":
    run_cli(main)
