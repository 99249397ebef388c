"""eval_onnx.py's work: an exported SRCNN ONNX model run by onnxruntime, scored by the shared protocol.

Framework-free: imports onnxruntime and numpy, never MindSpore.
"""
import os

from src.infer.onnx_backend import OnnxPredictor
from src.infer.predictor import make_predictor
from src.model.checkpoint import checkpoint_settings, resolve_checkpoint
from src.protocol.image_io import list_images
from src.protocol.report import file_sha256, report
from src.protocol.scoring import evaluate_folder, evaluate_model
from src.utils.checks import (
    check_output_file,
    check_output_folder,
    check_outputs_spare_inputs,
)
from src.utils.errors import UserError


def run_eval_onnx(cfg):
    if not cfg.data_path:
        raise UserError("data_path is empty: give --data_path=FOLDER of images (e.g. Set5)")
    images = list_images(cfg.data_path, key="data_path")  # a missing or empty folder fails before the model loads
    check_output_file(cfg.output_json, "output_json")
    check_outputs_spare_inputs([("output_json", cfg.output_json)],
                               [("onnx_path", cfg.onnx_path)] + [("data_path", path) for path in images]
                               + [("config_path", f) for f in cfg.config_files()])
    predict = OnnxPredictor(cfg.onnx_path, cfg.device_target, cfg.device_id)
    return evaluate_model(cfg.data_path, cfg.scale, predict, cfg.output_json,
                          onnx_model=os.path.abspath(cfg.onnx_path), providers=predict.providers)


def saved_image_files(folder, data_path, images, scale):
    """[("save_images", path)] of the files evaluate_folder(save_images=folder) writes for ``images``."""
    from src.protocol.naming import image_name

    files = []
    for path in images:
        name = image_name(path, data_path)
        files += [("save_images", os.path.join(folder, f"{name}_{kind}_x{scale}.png")) for kind in ("srcnn", "compare")]
    return files


def receptive_field(arch):
    """Side of the input window one output pixel of an SRCNN ``arch`` sees: f1 + f2 + f3 - 2."""
    from src.model.srcnn import border

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
