"""The one scoring loop of the SRCNN_v1 protocol, shared by eval.py, eval_onnx.py, test.py --mode=degrade,
postprocess.py, the MINDIR reference runner and training validation.

``iter_images`` reads the ground truths of a folder (skipping, with a warning, what cannot be scored);
``evaluate`` turns each into the protocol's pair (``prepare_pair``: modcrop, Y, bicubic down and up), runs
the model through a predictor ``predict(lr_y, name) -> sr_y`` (see src/infer/base.py), scores PSNR/SSIM on
Y with a ``scale``-pixel shave, and returns the result dict that src/protocol/report.py prints. Only the
predictor differs between backends. Framework-free (numpy only, never MindSpore).
"""
import sys
from pathlib import Path

import numpy as np

from src.protocol.degradation import modcrop, prepare_pair, to_uint8
from src.protocol.image_io import check_fits_memory, list_images, read_or_skip
from src.protocol.metrics import SSIM_WINDOW, psnr, ssim
from src.protocol.naming import dataset_name, image_name
from src.utils.errors import UserError
from src.utils.progress import progress, warn


class ImageSizeError(UserError):
    """Raised by a predictor whose model cannot take an image of this size (static models)."""


class NonFiniteOutput(UserError):
    """The model's output for an image holds NaN or Inf: there is no honest PSNR for it."""


def min_image_side(scale):
    """Smallest modcropped side the protocol can score: ``scale`` shaved per border, then an SSIM window."""
    return 2 * int(scale) + SSIM_WINDOW


def no_usable_images(data_path, skipped, key="data_path"):
    """The UserError of a run in which every image was skipped."""
    return UserError(f"{key} {data_path} has no usable images: all {len(skipped)} were skipped "
                     f"(unreadable or too small, see the warnings above)")


def named(name, where, err):
    """The UserError ``err`` about one image, with the image's name first."""
    return UserError(f"image {name} of {where}: {err}")


def images_outside(paths, folder, key):
    """``paths`` minus those under ``folder`` (results of an earlier run saved inside the data folder), with
    a note on stderr when some are left out."""
    outside = Path(folder).resolve()
    kept = [p for p in paths if outside not in Path(p).resolve().parents]
    if len(kept) < len(paths):
        print(f"note: ignoring {len(paths) - len(kept)} image(s) under {key} {folder}", file=sys.stderr)
    return kept


def iter_images(data_path, scale, skipped, *, paths=None, show_progress=True, desc=None, min_side=0,
                min_side_reason=""):
    """Yield ``(name, img)`` (uint8 HxW or HxWx3) for every image the protocol can score, in sorted order.

    ``paths``: the images to read (default: every image under ``data_path``); names are ``image_name`` of
    each relative to ``data_path``. Unreadable or too small images are reported as ``warning: skipped
    <path>: <reason>`` on stderr and their paths appended to ``skipped`` (a list) instead of stopping the
    run. Too small: a modcropped side under ``min_image_side(scale)`` (the protocol's shave and SSIM window)
    or under ``min_side`` (e.g. the network's receptive field, described by ``min_side_reason``).
    ``desc`` labels the progress bar (default: ``<dataset> x<scale>``).
    """
    paths = list_images(data_path) if paths is None else paths
    check_fits_memory(paths)  # all of them, before the first is scored
    protocol_side = min_image_side(scale)
    needed = max(protocol_side, int(min_side or 0))
    why = f": {min_side_reason}" if min_side_reason and needed > protocol_side else ""
    desc = f"{dataset_name(data_path)} x{scale}" if desc is None else desc
    for path in progress(paths, desc=desc) if show_progress else paths:
        img = read_or_skip(path, skipped)
        if img is None:
            continue
        cropped = modcrop(img, scale)
        if min(cropped.shape[:2]) < needed:
            warn(f"skipped {path}: {img.shape[1]}x{img.shape[0]} is too small for x{scale} "
                 f"(needs at least {needed} pixels per side{why})")
            skipped.append(str(path))
            continue
        yield image_name(path, data_path), img


def check_finite_output(sr):
    """``sr`` unchanged, or NonFiniteOutput: NaN/Inf would be clipped to black or white by the conversion to
    8 bits and scored as if it were a (bad) picture."""
    sr = np.asarray(sr)
    finite = np.isfinite(sr)
    if not finite.all():
        raise NonFiniteOutput(f"the model output holds {int(sr.size - finite.sum())} NaN/Inf value(s) of "
                              f"{sr.size}: not scored (the model is damaged, or overflows on this input)")
    return sr


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


def evaluate(predict, images, scale, *, source, skipped=(), key="data_path", on_image=None, pairs=None):
    """Score ``predict`` on ``images`` with the SRCNN_v1 protocol at ``scale``; returns ``summarize``'s dict.

    ``images`` yields ``(name, uint8 ground truth)``, usually ``iter_images(source, scale, skipped)``;
    ``skipped`` is the list that iterator fills (reported in the result). ``predict(lr_y, name)`` gets the
    float32 HxW bicubic input in [0, 1] and returns the same shape. An ImageSizeError from it, an output of
    another shape or with NaN/Inf is a UserError naming the image of ``source``; no image left is one naming
    ``key``. ``on_image(name, img, sr, lr_up, scores)``, if given, is called after each image is scored
    (e.g. to save its result). ``pairs``, if given, is a dict of ``name -> prepare_pair(img, scale)``
    filled on first use: a caller scoring the same images many times (training validation) keeps one.
    """
    scale = int(scale)
    scored = []
    for name, img in images:
        if pairs is None:
            hr_y, lr_up = prepare_pair(img, scale)
        else:
            hr_y, lr_up = pairs[name] if name in pairs else pairs.setdefault(name, prepare_pair(img, scale))
        try:
            sr = np.asarray(predict(lr_up, name))
        except ImageSizeError as err:
            raise named(name, source, err) from None
        if sr.shape != lr_up.shape:
            raise named(name, source, f"the model returned shape {sr.shape}, expected the input's shape "
                                      f"{lr_up.shape}")
        try:
            scores = score_image(sr, hr_y, lr_up, scale)
        except NonFiniteOutput as err:
            raise named(name, source, err) from None
        scored.append({"name": name, **scores})
        if on_image is not None:
            on_image(name, img, sr, lr_up, scores)
    if not scored:
        raise no_usable_images(source, skipped, key)
    return summarize(scored, dataset=dataset_name(source), scale=scale, skipped=skipped)
