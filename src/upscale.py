"""test.py's work: super-resolve image files with a checkpoint and save colour PNGs.

upscale mode: every input is a low-resolution image made ``scale`` x larger. Its YCbCr (MATLAB
``rgb2ycbcr``) / 255 is upscaled with MATLAB bicubic ``imresize``; SRCNN restores Y, Cb and Cr stay
bicubic, and ``ycbcr2rgb`` gives the RGB result. Single-channel images are their own Y and stay gray.

degrade mode: every input is a ground truth. The eval.py protocol (``prepare_pair``: modcrop, Y, bicubic
down and up) makes the network input, the result is scored like eval.py (same table and result line),
and the colour output uses Cb/Cr degraded the same way.

Outputs: ``<output_path>/<relative folder>/<stem>_srcnn_x<scale>.png``; with compare=true also
``<stem>_compare_x<scale>.png``: bicubic | SRCNN (| ground truth) side by side with labels, and under each
a x3 nearest-neighbour zoom of the 64 x 64 region with the most detail (highest gradient energy).
"""
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from src.checks import check_output_file, check_output_folder
from src.errors import UserError
from src.evaluation import (NonFiniteOutput, check_finite_output, min_image_side, named, report, score_image,
                            summarize)
from src.image_io import (SCORING_BYTES_PER_PIXEL, ImageReadError, check_fits_memory, list_images, read_image,
                          write_image)
from src.matlab_functions import imresize, rgb2ycbcr, ycbcr2rgb
from src.progress import progress, warn
from src.protocol import degrade, modcrop, prepare_pair, to_uint8

PAD = 8  # pixels around and between the panels of a comparison image
LABEL_HEIGHT = 22  # label strip above each panel
CROP = 64  # side of the zoomed region
ZOOM = 3  # nearest-neighbour magnification of the zoomed region
MARK = (255, 0, 0)  # outline of the zoomed region on each panel


# ------------------------------------------------------------------ colour handling

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


def degrade_image(img, scale, predict):
    """(SRCNN, bicubic, ground truth, scores) for a ground-truth uint8 image, with the eval.py protocol."""
    hr_y, lr_up = prepare_pair(img, scale)
    sr = predict(lr_up)
    scores = score_image(sr, hr_y, lr_up, scale)
    return (*degraded_colour(img, scale, sr, lr_up), scores)


def degrade_panels(sr, bicubic, gt, scores):
    """The comparison panels of a scored image: bicubic | SRCNN (with their PSNR) | ground truth."""
    return [(f"bicubic {scores['bicubic_psnr']:.2f} dB", bicubic), (f"SRCNN {scores['psnr']:.2f} dB", sr),
            ("ground truth", gt)]


def save_scored_images(out_dir, stem, scale, img, sr, lr_up, scores, compare=True):
    """Write ``<stem>_srcnn_x<scale>.png`` (colour as ``degraded_colour``) and, with ``compare``,
    ``<stem>_compare_x<scale>.png`` (``degrade_panels`` drawn by ``make_comparison``) under ``out_dir``."""
    sr_img, bicubic, gt = degraded_colour(img, scale, sr, lr_up)
    write_image(Path(out_dir) / f"{stem}_srcnn_x{scale}.png", sr_img)
    if compare:
        write_image(Path(out_dir) / f"{stem}_compare_x{scale}.png",
                    make_comparison(degrade_panels(sr_img, bicubic, gt, scores), gt))


# ------------------------------------------------------------------ comparison image

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


# ------------------------------------------------------------------ files

def output_names(paths, input_path, scale):
    """{input path: (relative output stem)}: ``sub/a.b.c.png`` -> ``sub/a.b.c``; UserError if two inputs
    would write the same file (e.g. a.png and a.jpg)."""
    input_path = Path(input_path)
    stems, seen = {}, {}
    for path in paths:
        relative = Path(path.name) if path == input_path else path.relative_to(input_path)
        stem = relative.parent / relative.stem
        key = stem.as_posix()
        if key in seen:
            raise UserError(f"{seen[key]} and {path} would both be saved as {key}_srcnn_x{scale}.png: "
                            "rename one of them")
        seen[key] = path
        stems[path] = stem
    return stems


def _inputs(input_path, out_dir):
    """The images of ``input_path``, minus any under ``out_dir`` (results of an earlier run when the output
    folder is inside the input folder)."""
    paths = list_images(input_path, key="input_path")
    out_real = out_dir.resolve()
    kept = [p for p in paths if out_real not in p.resolve().parents]
    if not kept:
        raise UserError(f"input_path {input_path} has no images outside output_path {out_dir}")
    if len(kept) < len(paths):
        print(f"note: ignoring {len(paths) - len(kept)} image(s) under output_path {out_dir}", file=sys.stderr)
    return kept


def _warn(message):
    warn(message)  # clears a progress bar drawn on the same terminal line


def run_test(cfg):
    """Process every image of cfg.input_path in cfg.mode; returns the degrade-mode result dict (or None)."""
    from src.checks import check_outputs_spare_inputs
    from src.eval_ms import checkpoint_settings, make_predictor, resolve_checkpoint
    from src.offline import dataset_name

    if not cfg.input_path:
        raise UserError("input_path is empty: give --input_path=IMAGE or FOLDER of images")
    if not cfg.output_path:
        raise UserError("output_path is empty: give --output_path=FOLDER for the results")
    degrade_mode = cfg.mode == "degrade"
    check_output_folder(cfg.output_path, "output_path")
    if degrade_mode:
        check_output_file(cfg.output_json, "output_json")  # before any image is written
    out_dir = Path(cfg.output_path)
    paths = _inputs(cfg.input_path, out_dir)
    checkpoint = resolve_checkpoint(cfg)
    inputs = [("checkpoint_path", checkpoint)] + [("config_path", f) for f in cfg.config_files()]
    inputs += [("input_path", path) for path in paths]
    check_outputs_spare_inputs([("output_json", cfg.output_json if degrade_mode else "")], inputs)
    cfg, weights = checkpoint_settings(cfg, checkpoint)
    scale = int(cfg.scale)
    stems = output_names(paths, cfg.input_path, scale)
    outputs = [("output_path", out_dir / f"{stem.as_posix()}_{kind}_x{scale}.png") for stem in stems.values()
               for kind in (("srcnn", "compare") if cfg.compare else ("srcnn",))]
    check_outputs_spare_inputs(outputs, inputs)
    # upscale mode works on the scale x larger image
    check_fits_memory(paths, SCORING_BYTES_PER_PIXEL * (1 if degrade_mode else scale ** 2), key="input_path")
    network, _ = make_predictor(cfg, checkpoint, weights)

    def predict(lr_y):  # no NaN/Inf output is saved or scored
        return check_finite_output(network(lr_y))

    images, skipped, written = [], [], 0
    for path in progress(paths, desc=f"{cfg.mode} x{scale}"):
        try:
            img = read_image(path)
        except ImageReadError as err:
            _warn(f"skipped {path}: not a readable image ({err.reason})")
            skipped.append(str(path))
            continue
        stem = stems[path]
        try:
            if degrade_mode:
                if min(modcrop(img, scale).shape[:2]) < min_image_side(scale):
                    _warn(f"skipped {path}: {img.shape[1]}x{img.shape[0]} is too small for x{scale} "
                          f"(needs at least {min_image_side(scale)} pixels per side)")
                    skipped.append(str(path))
                    continue
                sr, bicubic, gt, scores = degrade_image(img, scale, predict)
                images.append({"name": stem.as_posix(), **scores})
                panels = degrade_panels(sr, bicubic, gt, scores)
                reference = gt
            else:
                sr, bicubic = upscale_image(img, scale, predict)
                panels = [(f"bicubic x{scale}", bicubic), (f"SRCNN x{scale}", sr)]
                reference = bicubic  # the content, whatever the model does
            write_image(out_dir / f"{stem.as_posix()}_srcnn_x{scale}.png", sr)
            if cfg.compare:
                write_image(out_dir / f"{stem.as_posix()}_compare_x{scale}.png",
                            make_comparison(panels, reference))
            written += 1
        except NonFiniteOutput as err:
            raise named(path.name, cfg.input_path, err) from None
    if not written:
        raise UserError(f"no image of {cfg.input_path} could be processed ({len(skipped)} skipped)")
    result = None
    if degrade_mode:
        result = summarize(images, dataset=dataset_name(cfg.input_path), scale=scale, skipped=skipped)
        report(result, cfg.output_json, checkpoint=str(Path(checkpoint).resolve()), mode="degrade")
    extra = " and comparison images" if cfg.compare else ""
    print(f"wrote {written} x{scale} SRCNN image(s){extra} to {out_dir}"
          + (f" ({len(skipped)} skipped)" if skipped else ""), flush=True)
    return result
