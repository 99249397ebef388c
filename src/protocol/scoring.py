"""Benchmark evaluation shared by eval.py, eval_onnx.py, postprocess.py and training validation.

Framework-free: the model enters only as ``predict(lr_up) -> sr`` (float32 HxW in [0, 1] in, same shape
out), or, for offline outputs, through ``iter_pairs`` + ``score_image`` + ``summarize``.
"""
import sys
from pathlib import Path

import numpy as np

from src.protocol.degradation import modcrop, prepare_pair, to_uint8
from src.protocol.image_io import (
    ImageReadError,
    check_fits_memory,
    list_images,
    read_image,
)
from src.protocol.metrics import SSIM_WINDOW, psnr, ssim
from src.protocol.naming import dataset_name, image_name
from src.protocol.report import report
from src.utils.errors import UserError
from src.utils.progress import progress, warn


def min_image_side(scale):
    """Smallest modcropped side the protocol can score: ``scale`` shaved per border, then an SSIM window."""
    return 2 * int(scale) + SSIM_WINDOW


def _warn(message):
    warn(message)  # clears a progress bar drawn on the same terminal line


def no_usable_images(data_path, skipped, key="data_path"):
    """The UserError of a run in which every image was skipped."""
    return UserError(f"{key} {data_path} has no usable images: all {len(skipped)} were skipped "
                     f"(unreadable or too small, see the warnings above)")


def _iter_images(data_path, scale, skipped, show_progress, min_side=0, min_side_reason="", exclude=None):
    """Yield ``(name, img)`` for every image of ``data_path`` the protocol can score (see iter_pairs), minus
    those under the folder ``exclude`` (saved results of an earlier run inside the data folder)."""
    paths = list_images(data_path)
    if exclude is not None:
        excluded = Path(exclude).resolve()
        kept = [p for p in paths if excluded not in p.resolve().parents]
        if len(kept) < len(paths):
            print(f"note: ignoring {len(paths) - len(kept)} image(s) under save_images {exclude}", file=sys.stderr)
        paths = kept
    check_fits_memory(paths)  # all of them, before the first is scored
    protocol_side = min_image_side(scale)
    needed = max(protocol_side, int(min_side or 0))
    why = f": {min_side_reason}" if min_side_reason and needed > protocol_side else ""
    desc = f"{dataset_name(data_path)} x{scale}"
    for path in progress(paths, desc=desc) if show_progress else paths:
        try:
            img = read_image(path)
        except ImageReadError as err:
            _warn(f"skipped {path}: not a readable image ({err.reason})")
            skipped.append(str(path))
            continue
        cropped = modcrop(img, scale)
        if min(cropped.shape[:2]) < needed:
            _warn(f"skipped {path}: {img.shape[1]}x{img.shape[0]} is too small for x{scale} "
                  f"(needs at least {needed} pixels per side{why})")
            skipped.append(str(path))
            continue
        yield image_name(path, data_path), img


def iter_pairs(data_path, scale, skipped=None, show_progress=False, min_side=0, min_side_reason=""):
    """Yield ``(name, hr_y, lr_up)`` for every image under ``data_path``, in sorted order.

    Unreadable or too small images are reported as ``warning: skipped <path>: <reason>`` on stderr and their
    paths appended to ``skipped`` (a list) instead of stopping the run. Too small: a modcropped side under
    ``min_image_side(scale)`` (the protocol's shave and SSIM window) or under ``min_side`` (e.g. the
    network's receptive field, described by ``min_side_reason`` in the warning).
    """
    skipped = [] if skipped is None else skipped
    for name, img in _iter_images(data_path, scale, skipped, show_progress, min_side, min_side_reason):
        hr_y, lr_up = prepare_pair(img, scale)
        yield name, hr_y, lr_up


class ImageSizeError(UserError):
    """Raised by a predict function whose model cannot take an image of this size (static models)."""


class NonFiniteOutput(UserError):
    """The model's output for an image holds NaN or Inf: there is no honest PSNR for it."""


def check_finite_output(sr):
    """``sr`` unchanged, or NonFiniteOutput: NaN/Inf would be clipped to black or white by the conversion to
    8 bits and scored as if it were a (bad) picture."""
    sr = np.asarray(sr)
    finite = np.isfinite(sr)
    if not finite.all():
        raise NonFiniteOutput(f"the model output holds {int(sr.size - finite.sum())} NaN/Inf value(s) of "
                              f"{sr.size}: not scored (the model is damaged, or overflows on this input)")
    return sr


def named(name, where, err):
    """The UserError ``err`` about one image, with the image's name first."""
    return UserError(f"image {name} of {where}: {err}")


def score_image(sr01, hr_y, lr_up, scale):
    """PSNR/SSIM of the network output and of the bicubic input against ``hr_y`` (Y, shave = scale).

    ``sr01`` and ``lr_up`` are float images in [0, 1] (unclipped is fine), ``hr_y`` is uint8; all HxW.
    Returns ``{"psnr", "ssim", "bicubic_psnr", "bicubic_ssim"}`` as Python floats.
    """
    sr01 = check_finite_output(sr01)
    if sr01.shape != hr_y.shape or lr_up.shape != hr_y.shape:
        raise ValueError(f"shape mismatch: sr {sr01.shape}, lr_up {lr_up.shape}, hr_y {hr_y.shape}")
    sr_y = to_uint8(sr01)
    bic_y = to_uint8(lr_up)
    return {
        "psnr": psnr(sr_y, hr_y, shave_border=scale),
        "ssim": ssim(sr_y, hr_y, shave_border=scale),
        "bicubic_psnr": psnr(bic_y, hr_y, shave_border=scale),
        "bicubic_ssim": ssim(bic_y, hr_y, shave_border=scale),
    }


def summarize(images, *, dataset, scale, skipped=()):
    """Result dict from per-image scores (each ``{"name", "psnr", "ssim", "bicubic_psnr", "bicubic_ssim"}``)."""
    if not images:
        raise ValueError("summarize: no scored images")

    def mean(key):
        return float(np.mean([image[key] for image in images]))

    return {
        "dataset": dataset,
        "scale": int(scale),
        "psnr": mean("psnr"),
        "ssim": mean("ssim"),
        "bicubic_psnr": mean("bicubic_psnr"),
        "bicubic_ssim": mean("bicubic_ssim"),
        "images": list(images),
        "skipped": [str(path) for path in skipped],
    }


def evaluate_folder(data_path, scale, predict, *, show_progress=True, save_images=None, min_side=0,
                    min_side_reason=""):
    """Score ``predict`` on every image under ``data_path`` with the SRCNN_v1 protocol at ``scale``.

    ``predict(lr_up)`` gets a float32 HxW array in [0, 1] and must return an array of the same shape.
    ``min_side``/``min_side_reason``: see iter_pairs. If ``save_images`` is a folder, each image's result is
    written there as test.py --mode=degrade does: ``<name>_srcnn_x<scale>.png`` (colour images: SRCNN's Y
    with the bicubic-degraded Cb/Cr; gray stays gray) and ``<name>_compare_x<scale>.png`` (bicubic | SRCNN |
    ground truth, with a zoom of the most detailed region). Returns the dict described in ``summarize``.
    """
    scale = int(scale)
    skipped = []
    images = []
    if save_images is not None:
        from src.protocol.comparison import (
            save_scored_images,  # upscale imports this module
        )

    for name, img in _iter_images(data_path, scale, skipped, show_progress, min_side, min_side_reason,
                                  exclude=save_images):
        hr_y, lr_up = prepare_pair(img, scale)
        sr = np.asarray(predict(lr_up))
        if sr.shape != lr_up.shape:
            raise UserError(f"{name} in {data_path}: the model returned shape {sr.shape}, "
                            f"expected the input's shape {lr_up.shape}")
        try:
            scores = score_image(sr, hr_y, lr_up, scale)
        except NonFiniteOutput as err:
            raise named(name, data_path, err) from None
        images.append({"name": name, **scores})
        if save_images is not None:
            save_scored_images(save_images, name, scale, img, sr, lr_up, scores)
    if not images:
        raise no_usable_images(data_path, skipped)
    return summarize(images, dataset=dataset_name(data_path), scale=scale, skipped=skipped)


def evaluate_model(data_path, scale, predict, output_json="", **extra):
    """Score ``predict(lr_up) -> sr`` on every image of ``data_path`` (protocol of src/evaluation.py),
    print the table and result line, write ``output_json``. An ImageSizeError from ``predict`` becomes a
    UserError naming the image. Returns the result dict."""
    scale = int(scale)
    skipped, images = [], []
    for name, hr_y, lr_up in iter_pairs(data_path, scale, skipped, show_progress=True):
        try:
            sr = np.asarray(predict(lr_up))
        except ImageSizeError as err:
            raise UserError(f"image {name} of {data_path}: {err}") from None
        if sr.shape != lr_up.shape:
            raise UserError(f"image {name} of {data_path}: the model returned shape {sr.shape}, "
                            f"expected the input's shape {lr_up.shape}")
        try:
            images.append({"name": name, **score_image(sr, hr_y, lr_up, scale)})
        except NonFiniteOutput as err:
            raise named(name, data_path, err) from None
    if not images:
        raise no_usable_images(data_path, skipped)
    result = summarize(images, dataset=dataset_name(data_path), scale=scale, skipped=skipped)
    report(result, output_json, **extra)
    return result
