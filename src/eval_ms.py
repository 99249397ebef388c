"""eval.py's work: a checkpoint through MindSpore, scored by the framework-free protocol."""
import os

from src.checks import check_output_file, check_output_folder
from src.errors import UserError
from src.evaluation import evaluate_folder, file_sha256, report
from src.image_io import list_images

# file prefix of the shipped models of each pretrained_family (config.yaml)
SHIPPED_PREFIX = {"9-1-5": "srcnn", "9-5-5": "srcnn_955"}


def resolve_checkpoint(cfg):
    """The checkpoint to use: --checkpoint_path, else the shipped model of ``pretrained_family`` for the scale
    (pretrained/srcnn_x<scale>.ckpt for 9-1-5, pretrained/srcnn_955_x<scale>.ckpt for 9-5-5)."""
    if cfg.checkpoint_path:
        path = cfg.checkpoint_path
        if not os.path.exists(path):
            raise UserError(f"checkpoint_path {path} does not exist")
        if not os.path.isfile(path):
            raise UserError(f"checkpoint_path {path} is not a file, expected a .ckpt file")
        return path
    shipped = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pretrained",
                           f"{SHIPPED_PREFIX[cfg.pretrained_family]}_x{cfg.scale}.ckpt")
    if os.path.isfile(shipped):
        return shipped
    raise UserError(f"no checkpoint: give --checkpoint_path=FILE.ckpt (no shipped {shipped} either)")


def make_predictor(cfg, checkpoint):
    from src.device import init_context
    from src.inference import Predictor
    from src.network import inference_padding, network_from_checkpoint

    init_context(cfg.device_target, cfg.device_id)
    net, meta = network_from_checkpoint(checkpoint, inference_padding(cfg.padding), cfg.device_target)
    trained_scale = meta.get("scale")
    if trained_scale is not None and int(trained_scale) != cfg.scale:
        print(f"warning: {checkpoint} was trained for x{int(trained_scale)}, evaluating at x{cfg.scale}")
    return Predictor(net, cfg.tile_size), meta


def receptive_field(arch):
    """Side of the input window one output pixel of an SRCNN ``arch`` sees: f1 + f2 + f3 - 2."""
    from src.srcnn import border

    return 2 * border(arch) + 1


def run_eval(cfg):
    if not cfg.data_path:
        raise UserError("data_path is empty: give --data_path=FOLDER of images (e.g. Set5)")
    # inputs and outputs are checked before MindSpore starts: a missing or empty folder, an output that
    # cannot be written
    list_images(cfg.data_path, key="data_path")
    check_output_file(cfg.output_json, "output_json")
    check_output_folder(cfg.save_images, "save_images")
    checkpoint = resolve_checkpoint(cfg)
    predict, meta = make_predictor(cfg, checkpoint)
    arch = predict.net.arch
    result = evaluate_folder(cfg.data_path, cfg.scale, predict, save_images=cfg.save_images or None,
                             min_side=receptive_field(arch),
                             min_side_reason=f"the receptive field of the {arch} network")
    report(result, cfg.output_json, checkpoint=os.path.abspath(checkpoint),
           checkpoint_sha256=file_sha256(checkpoint), arch=predict.net.arch)
    return result
