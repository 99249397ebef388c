"""eval.py's work: a checkpoint through MindSpore, scored by the framework-free protocol."""
import os

from src.checks import check_output_file, check_output_folder, check_outputs_spare_inputs
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


def checkpoint_settings(cfg, checkpoint):
    """(cfg, weights): ``cfg`` with the checkpoint's own arch, n1, n2, padding and scale (src.network.
    checkpoint_record) where the user gave none, and the checkpoint's entries. A value the user gave that
    contradicts the checkpoint is a UserError naming both; for padding and scale --override_checkpoint=true
    uses the given value instead, with a warning (arch, n1 and n2 are the weights' shapes: never overridable)."""
    from src.network import RECORD_KEYS, checkpoint_record, read_checkpoint
    from src.progress import warn

    weights = read_checkpoint(checkpoint)
    record = checkpoint_record(weights, checkpoint)
    changes = {}
    for key in RECORD_KEYS:
        if key not in record or getattr(cfg, key) == record[key]:
            continue
        given = getattr(cfg, key)
        if not cfg.given(key):
            changes[key] = record[key]
        elif key in ("arch", "n1", "n2"):
            raise UserError(f"{key}={given!r} (from {cfg.source(key)}) contradicts {checkpoint}, whose weights are "
                            f"{key}={record[key]!r}: leave {key} out (the checkpoint's is used)")
        elif not cfg.override_checkpoint:
            raise UserError(f"{key}={given!r} (from {cfg.source(key)}) contradicts {checkpoint}, trained with "
                            f"{key}={record[key]!r}: leave {key} out to use the checkpoint's, or give "
                            f"--override_checkpoint=true to use {given!r} anyway")
        else:
            warn(f"{key}={given!r} used although {checkpoint} was trained with {key}={record[key]!r} "
                 "(override_checkpoint=true)")
    return (cfg.replace(**changes) if changes else cfg), weights


def make_predictor(cfg, checkpoint, weights=None):
    """(Predictor, the checkpoint's metadata) for ``checkpoint`` with cfg's padding, device and tiles."""
    from src.device import init_context
    from src.inference import Predictor
    from src.network import inference_padding, network_from_checkpoint

    init_context(cfg.device_target, cfg.device_id)
    net, meta = network_from_checkpoint(checkpoint, inference_padding(cfg.padding), cfg.device_target,
                                        weights=weights)
    return Predictor(net, cfg.tile_size), meta


def saved_image_files(folder, data_path, images, scale):
    """[("save_images", path)] of the files evaluate_folder(save_images=folder) writes for ``images``."""
    from src.evaluation import image_name

    files = []
    for path in images:
        name = image_name(path, data_path)
        files += [("save_images", os.path.join(folder, f"{name}_{kind}_x{scale}.png")) for kind in ("srcnn", "compare")]
    return files


def receptive_field(arch):
    """Side of the input window one output pixel of an SRCNN ``arch`` sees: f1 + f2 + f3 - 2."""
    from src.srcnn import border

    return 2 * border(arch) + 1


def run_eval(cfg):
    if not cfg.data_path:
        raise UserError("data_path is empty: give --data_path=FOLDER of images (e.g. Set5)")
    # inputs and outputs are checked before MindSpore starts: a missing or empty folder, an output that
    # cannot be written
    images = list_images(cfg.data_path, key="data_path")
    check_output_file(cfg.output_json, "output_json")
    check_output_folder(cfg.save_images, "save_images")
    checkpoint = resolve_checkpoint(cfg)
    inputs = [("checkpoint_path", checkpoint)] + [("config_path", f) for f in cfg.config_files()]
    inputs += [("data_path", path) for path in images]
    check_outputs_spare_inputs([("output_json", cfg.output_json)], inputs)
    cfg, weights = checkpoint_settings(cfg, checkpoint)
    if cfg.save_images:
        check_outputs_spare_inputs(saved_image_files(cfg.save_images, cfg.data_path, images, cfg.scale), inputs)
    predict, meta = make_predictor(cfg, checkpoint, weights)
    arch = predict.net.arch
    result = evaluate_folder(cfg.data_path, cfg.scale, predict, save_images=cfg.save_images or None,
                             min_side=receptive_field(arch),
                             min_side_reason=f"the receptive field of the {arch} network")
    report(result, cfg.output_json, checkpoint=os.path.abspath(checkpoint),
           checkpoint_sha256=file_sha256(checkpoint), arch=predict.net.arch)
    return result
