"""Validation during training: the run's current weights scored on validation_path by the evaluation protocol
(Y channel, shave = scale), as eval.py scores a checkpoint."""
from typing import NamedTuple

import numpy as np

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
    from src.infer.predictor import Predictor
    from src.model.network import build_network, inference_padding
    from src.protocol.degradation import to_uint8
    from src.protocol.image_io import holdout_names
    from src.protocol.scoring import iter_pairs, score_image

    skipped = []
    pairs = list(iter_pairs(cfg.validation_path, cfg.scale, skipped))
    held = holdout_names(cfg.holdout_images)
    if held:  # validate on the held-out images only: the rest of the folder may be training data
        found = {name.rsplit("/", 1)[-1] for name, _, _ in pairs}
        if held - found:
            raise UserError(f"holdout_images: no usable image named {', '.join(sorted(held - found))} "
                            f"in validation_path {cfg.validation_path}")
        pairs = [pair for pair in pairs if pair[0].rsplit("/", 1)[-1] in held]
    if not pairs:
        from src.protocol.scoring import no_usable_images

        raise no_usable_images(cfg.validation_path, skipped, key="validation_path")
    eval_net = build_network(cfg.arch, cfg.n1, cfg.n2, inference_padding(cfg.padding), cfg.device_target,
                             training=False)
    predictor = Predictor(eval_net, cfg.tile_size)
    eval_params = {p.name: p for p in eval_net.get_parameters()}

    def validate():
        for param in net.trainable_params():
            eval_params[param.name].set_data(param.data.copy())
        outputs = []

        def predict(lr_up):  # the predictor, keeping the first image's output to show
            sr = predictor(lr_up)
            if not outputs:
                outputs.append(sr)
            return sr

        scores = [score_image(predict(lr_up), hr_y, lr_up, cfg.scale) for _, hr_y, lr_up in pairs]
        name, hr_y, _ = pairs[0]
        return Validation(psnr=float(np.mean([s["psnr"] for s in scores])),
                          ssim=float(np.mean([s["ssim"] for s in scores])),
                          bicubic_psnr=float(np.mean([s["bicubic_psnr"] for s in scores])),
                          image=(name, to_uint8(outputs[0]), hr_y))

    return validate
