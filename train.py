"""Train SRCNN on a MindRecord of patches made by src/create_dataset.py.

    python train.py --data_path=DIR_OR_FILE.mindrecord --output_path=./output [--scale=2 --validation_path=Set5]
"""
import src  # noqa: F401  (CPU kernel setting, before MindSpore loads)
from src.utils.errors import run_cli


def main(argv):
    from src.model_utils.config import get_config

    cfg = get_config(argv, script=__file__, description=__doc__)
    from src.model_utils.moxing_adapter import modelarts_paths, moxing_wrapper
    from src.train.cluster import stop_on_lost_peer
    from src.train.trainer import Trainer

    cfg = modelarts_paths(cfg)

    @moxing_wrapper(cfg)
    def run():
        with stop_on_lost_peer(cfg.run_distribute):
            Trainer(cfg).run()

    run()


if __name__ == "__main__":
    run_cli(main)
