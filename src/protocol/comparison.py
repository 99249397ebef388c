"""The images a person looks at: colour results and side-by-side comparisons (framework-free, numpy + Pillow).

``upscale_image`` super-resolves a low-resolution image (test.py's upscale mode: YCbCr by MATLAB
``rgb2ycbcr``, bicubic ``imresize``, SRCNN on Y, Cb/Cr stay bicubic; gray stays gray). For a scored ground
truth (eval.py --save_images, test.py --mode=degrade) ``save_scored_images`` writes
``<name>_srcnn_x<scale>.png`` (SRCNN's Y with the Cb/Cr degraded like the Y) and
``<name>_compare_x<scale>.png``: bicubic | SRCNN (| ground truth) side by side with labels, and under each a
x3 nearest-neighbour zoom of the 64 x 64 region with the most detail (highest gradient energy).
"""
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from src.protocol.degradation import degrade, modcrop, to_uint8
from src.protocol.image_io import write_image
from src.protocol.matlab_functions import imresize, rgb2ycbcr, ycbcr2rgb
from src.protocol.naming import saved_image_name

PAD = 8  # pixels around and between the panels of a comparison image


LABEL_HEIGHT = 22  # label strip above each panel


CROP = 64  # side of the zoomed region


ZOOM = 3  # nearest-neighbour magnification of the zoomed region


MARK = (255, 0, 0)  # outline of the zoomed region on each panel


def _ycc_to_rgb(y01, cb01, cr01):
    """RGB uint8 from a Y in [0, 1] (quantized like the scored output) and float Cb, Cr in [0, 1]."""
    y = to_uint8(y01).astype(np.float64) / 255.0
    ycc = np.stack([y, np.clip(cb01, 0.0, 1.0), np.clip(cr01, 0.0, 1.0)], axis=-1)
    return ycbcr2rgb(ycc)


def upscale_image(img, scale, predict):
    """(SRCNN, bicubic) results for a low-resolution uint8 image (HxW gray or HxWx3 RGB), ``scale`` x larger."""
    if img.ndim == 2:
        y_up = imresize(img.astype(np.float64) / 255.0, scale)
        sr = predict(y_up.astype(np.float32))
        return to_uint8(sr), to_uint8(y_up)
    up = imresize(rgb2ycbcr(img).astype(np.float64) / 255.0, scale)
    sr = predict(up[..., 0].astype(np.float32))
    return _ycc_to_rgb(sr, up[..., 1], up[..., 2]), _ycc_to_rgb(up[..., 0], up[..., 1], up[..., 2])


def degraded_colour(img, scale, sr, lr_up):
    """(SRCNN, bicubic, ground truth) uint8 images for a ground-truth ``img`` whose protocol input ``lr_up``
    (``prepare_pair``) the network turned into the Y ``sr``: colour images get SRCNN's (or bicubic's) Y with
    the Cb/Cr degraded by the same bicubic down and up; gray images stay gray."""
    gt = modcrop(img, scale)
    if gt.ndim == 2:
        return to_uint8(sr), to_uint8(lr_up), gt
    ycc = rgb2ycbcr(gt)
    cb, cr = degrade(ycc[..., 1], scale), degrade(ycc[..., 2], scale)
    return _ycc_to_rgb(sr, cb, cr), _ycc_to_rgb(lr_up, cb, cr), gt


def degrade_panels(sr, bicubic, gt, scores):
    """The comparison panels of a scored image: bicubic | SRCNN (with their PSNR) | ground truth."""
    return [(f"bicubic {scores['bicubic_psnr']:.2f} dB", bicubic), (f"SRCNN {scores['psnr']:.2f} dB", sr),
            ("ground truth", gt)]


def save_scored_images(out_dir, stem, scale, img, sr, lr_up, scores, compare=True):
    """Write ``<stem>_srcnn_x<scale>.png`` (colour as ``degraded_colour``) and, with ``compare``,
    ``<stem>_compare_x<scale>.png`` (``degrade_panels`` drawn by ``make_comparison``) under ``out_dir``."""
    sr_img, bicubic, gt = degraded_colour(img, scale, sr, lr_up)
    write_image(Path(out_dir) / saved_image_name(stem, "srcnn", scale), sr_img)
    if compare:
        write_image(Path(out_dir) / saved_image_name(stem, "compare", scale),
                    make_comparison(degrade_panels(sr_img, bicubic, gt, scores), gt))


def detail_region(img, size=CROP):
    """(top, left, side) of the ``size`` x ``size`` window (clipped to the image) with the highest gradient
    energy of the image's luminance; ties go to the top-left-most window."""
    y = img.astype(np.float64) if img.ndim == 2 else img.astype(np.float64) @ [0.299, 0.587, 0.114]
    side = min(size, y.shape[0], y.shape[1])
    energy = np.zeros_like(y)
    energy[:, :-1] += np.diff(y, axis=1) ** 2
    energy[:-1, :] += np.diff(y, axis=0) ** 2
    integral = np.pad(energy.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    sums = (integral[side:, side:] - integral[:-side, side:] - integral[side:, :-side] + integral[:-side, :-side])
    top, left = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return int(top), int(left), side


def comparison_size(width, height, panels, crop=CROP):
    """(width, height) of a comparison image of ``panels`` images of width x height."""
    side = min(crop, width, height)
    column = max(width, ZOOM * side)
    return panels * column + (panels + 1) * PAD, PAD + LABEL_HEIGHT + height + PAD + ZOOM * side + PAD


def _font():
    try:
        return ImageFont.load_default(size=14)
    except TypeError:  # Pillow < 10.1: bitmap font only
        return ImageFont.load_default()


def make_comparison(panels, reference):
    """One RGB uint8 image: ``panels`` [(label, image)] of equal size side by side, labelled, each with the
    zoom of the most detailed region of ``reference`` (outlined on the panel) underneath."""
    height, width = panels[0][1].shape[:2]
    top, left, side = detail_region(reference)
    canvas_w, canvas_h = comparison_size(width, height, len(panels))
    column = (canvas_w - (len(panels) + 1) * PAD) // len(panels)
    canvas = Image.new("RGB", (canvas_w, canvas_h), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    font = _font()
    for index, (label, img) in enumerate(panels):
        rgb = np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img
        x0 = PAD + index * (column + PAD)
        y0 = PAD + LABEL_HEIGHT
        draw.text((x0, PAD + 2), label, fill=(0, 0, 0), font=font)
        canvas.paste(Image.fromarray(np.ascontiguousarray(rgb)), (x0, y0))
        draw.rectangle([x0 + left - 1, y0 + top - 1, x0 + left + side, y0 + top + side], outline=MARK)
        crop = rgb[top:top + side, left:left + side]
        zoomed = np.repeat(np.repeat(crop, ZOOM, axis=0), ZOOM, axis=1)
        canvas.paste(Image.fromarray(np.ascontiguousarray(zoomed)), (x0, y0 + height + PAD))
    return np.asarray(canvas)
