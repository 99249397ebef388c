"""Convert a model of the authors' MATLAB package (SRCNN_v1, e.g. model/9-5-5(ImageNet)/x3.mat) to a checkpoint.

    python src/convert_official_weights.py --mat_path=x3.mat --output=srcnn_955_x3.ckpt [--scale=3]

--scale is recorded in the checkpoint only when given (the MAT-file does not say which scale it is for).
The MAT-file layout and the conversion: src/model/official_weights.py.
"""
import os
import sys

if __name__ == "__main__" and not __package__:  # run as a script: the repo root replaces src/ on sys.path
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import src  # noqa: E402,F401  (CPU kernel setting, before MindSpore loads)
from src.utils.errors import UserError, run_cli  # noqa: E402


def main(argv):
    from src.model_utils.config import DEFAULT_CONFIG_PATH, get_config
    from src.utils.checks import check_output_folder, check_outputs_spare_inputs

    cfg = get_config(argv, script=__file__, description=__doc__)
    for key, what in (("mat_path", "FILE.mat"), ("output", "FILE.ckpt")):
        if not getattr(cfg, key):
            raise UserError(f"{key} is empty: give --{key}={what}")
    check_output_folder(os.path.dirname(os.path.abspath(cfg.output)), "output")
    check_outputs_spare_inputs([("output", cfg.output)], [("mat_path", cfg.mat_path)])
    from src.model.official_weights import convert

    scale = cfg.scale if cfg.source("scale") != DEFAULT_CONFIG_PATH else None
    arch, n1, n2 = convert(cfg.mat_path, cfg.output, scale)
    print(f"{cfg.mat_path}: SRCNN {arch} (n1={n1}, n2={n2}) -> {cfg.output}")


if __name__ == "__main__":
    run_cli(main)
