"""Validation during training: the run's current weights scored on validation_path by the evaluation protocol
(Y channel, shave = scale), as eval.py scores a checkpoint."""
from typing import NamedTuple

from src.protocol.degradation import to_uint8
from src.protocol.image_io import holdout_names
from src.protocol.scoring import evaluate, iter_images, no_usable_images
from src.utils.errors import UserError


class Validation(NamedTuple):
    psnr: float  # mean over the images, dB
    ssim: float
    bicubic_psnr: float
    image: tuple  # (name, sr_y, hr_y) of the first image: uint8 HxW Y planes of the network output and truth


def build_validator(cfg, net):
    """``validate() -> Validation`` of ``net``'s current weights on cfg.validation_path (only the
    holdout_images when given), or None without a validation_path. The images are read, and the inference
    network built, once here; UserError when no image is usable."""
    if not cfg.validation_path:
        return None
    # imported here, not at the top: the command checks its inputs before MindSpore starts (seconds)
    from src.infer.mindspore_backend import MindSporePredictor
    from src.model.network import build_network, inference_padding

    skipped = []
    images = list(iter_images(cfg.validation_path, cfg.scale, skipped, show_progress=False))
    held = holdout_names(cfg.holdout_images)
    if held:  # validate on the held-out images only: the rest of the folder may be training data
        found = {name.rsplit("/", 1)[-1] for name, _ in images}
        if held - found:
            raise UserError(f"holdout_images: no usable image named {', '.join(sorted(held - found))} "
                            f"in validation_path {cfg.validation_path}")
        images = [image for image in images if image[0].rsplit("/", 1)[-1] in held]
    if not images:
        raise no_usable_images(cfg.validation_path, skipped, key="validation_path")
    eval_net = build_network(cfg.arch, cfg.n1, cfg.n2, inference_padding(cfg.padding), cfg.device_target,
                             training=False)
    predictor = MindSporePredictor(eval_net, cfg.tile_size)
    eval_params = {p.name: p for p in eval_net.get_parameters()}
    pairs = {}  # name -> (hr_y, lr_up): the degradation is the same at every validation

    def validate():
        for param in net.trainable_params():
            eval_params[param.name].set_data(param.data.copy())
        first = []

        def keep_first(name, img, sr, lr_up, scores):  # the first image's output, to show
            if not first:
                first.append((name, to_uint8(sr), pairs[name][0]))

        result = evaluate(predictor, images, cfg.scale, source=cfg.validation_path, skipped=skipped,
                          key="validation_path", on_image=keep_first, pairs=pairs)
        return Validation(psnr=result["psnr"], ssim=result["ssim"], bicubic_psnr=result["bicubic_psnr"],
                          image=first[0])

    return validate
