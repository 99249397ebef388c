"""eval.py's work: a checkpoint scored on an image folder by the shared protocol, with the MindSpore backend.

Inputs and outputs are checked before the device context starts (a missing folder, an output that would
replace an input, a checkpoint that contradicts the flags), and those that need no checkpoint read before
MindSpore loads (a refused path costs no start-up); then every image is scored by
``src.protocol.scoring.evaluate`` and, with save_images, saved as test.py --mode=degrade saves it.
"""
import os

from src.model.checkpoint import checkpoint_settings, resolve_checkpoint
from src.model.arch import border
from src.protocol.comparison import save_scored_images
from src.protocol.image_io import list_images
from src.protocol.naming import image_name, saved_image_name
from src.protocol.report import file_sha256, report
from src.protocol.scoring import evaluate, images_outside, iter_images
from src.utils.checks import check_output_file, check_output_folder, check_outputs_spare_inputs
from src.utils.errors import UserError


def saved_image_files(folder, data_path, images, scale):
    """[("save_images", path)] of the files eval.py --save_images=folder writes for ``images``."""
    return [("save_images", os.path.join(folder, saved_image_name(image_name(path, data_path), kind, scale)))
            for path in images for kind in ("srcnn", "compare")]


def receptive_field(arch):
    """Side of the input window one output pixel of an SRCNN ``arch`` sees: f1 + f2 + f3 - 2."""
    return 2 * border(arch) + 1


def run_eval(cfg):
    """Score cfg's checkpoint on cfg.data_path, print the table and result line; returns the result dict."""
    if not cfg.data_path:
        raise UserError("data_path is empty: give --data_path=FOLDER of images (e.g. Set5)")
    images = list_images(cfg.data_path, key="data_path")
    check_output_file(cfg.output_json, "output_json")
    check_output_folder(cfg.save_images, "save_images")
    checkpoint = resolve_checkpoint(cfg)
    inputs = [("checkpoint_path", checkpoint)] + [("config_path", f) for f in cfg.config_files()]
    inputs += [("data_path", path) for path in images]
    check_outputs_spare_inputs([("output_json", cfg.output_json)], inputs)
    cfg, weights = checkpoint_settings(cfg, checkpoint)
    scale = int(cfg.scale)
    if cfg.save_images:
        check_outputs_spare_inputs(saved_image_files(cfg.save_images, cfg.data_path, images, scale), inputs)
    from src.infer.mindspore_backend import predictor_from_checkpoint  # here: refusals above skip its start-up

    predict, _ = predictor_from_checkpoint(cfg, checkpoint, weights)
    arch = predict.net.arch
    on_image = None
    if cfg.save_images:
        images = images_outside(images, cfg.save_images, "save_images")  # an earlier run's results

        def on_image(name, img, sr, lr_up, scores):
            save_scored_images(cfg.save_images, name, scale, img, sr, lr_up, scores)

    skipped = []
    result = evaluate(predict, iter_images(cfg.data_path, scale, skipped, paths=images,
                                           min_side=receptive_field(arch),
                                           min_side_reason=f"the receptive field of the {arch} network"),
                      scale, source=cfg.data_path, skipped=skipped, on_image=on_image)
    report(result, cfg.output_json, checkpoint=os.path.abspath(checkpoint),
           checkpoint_sha256=file_sha256(checkpoint), arch=arch)
    return result
