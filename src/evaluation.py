"""Benchmark evaluation shared by eval.py, eval_onnx.py, postprocess.py and training validation.

Framework-free: the model enters only as ``predict(lr_up) -> sr`` (float32 HxW in [0, 1] in, same shape
out), or, for offline outputs, through ``iter_pairs`` + ``score_image`` + ``summarize``.
"""
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

from src.errors import UserError
from src.file_io import write_text_atomic
from src.image_io import ImageReadError, check_fits_memory, list_images, read_image
from src.metrics import SSIM_WINDOW, psnr, ssim
from src.progress import progress, warn
from src.protocol import modcrop, prepare_pair, to_uint8

__all__ = ["iter_pairs", "score_image", "summarize", "evaluate_folder", "format_table", "result_line",
           "write_json", "file_sha256", "min_image_side", "no_usable_images"]


def min_image_side(scale):
    """Smallest modcropped side the protocol can score: ``scale`` shaved per border, then an SSIM window."""
    return 2 * int(scale) + SSIM_WINDOW


def _warn(message):
    warn(message)  # clears a progress bar drawn on the same terminal line


def image_name(path, data_path):
    """Path relative to the data folder, without extension (the file's stem if data_path is the file)."""
    path, data_path = Path(path), Path(data_path)
    if path == data_path:
        return path.stem
    return path.relative_to(data_path).with_suffix("").as_posix()


def _dataset_name(data_path):
    data_path = Path(data_path).resolve()
    return data_path.parent.name if data_path.is_file() else data_path.name


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
    desc = f"{_dataset_name(data_path)} x{scale}"
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
        from src.upscale import save_scored_images  # upscale imports this module

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
    return summarize(images, dataset=_dataset_name(data_path), scale=scale, skipped=skipped)


def format_table(result):
    """Per-image table (PSNR 2 decimals, SSIM 4) with a mean row, for printing."""
    rows = [(image["name"], image["psnr"], image["ssim"], image["bicubic_psnr"], image["bicubic_ssim"])
            for image in result["images"]]
    rows.append(("mean", result["psnr"], result["ssim"], result["bicubic_psnr"], result["bicubic_ssim"]))
    width = max(len("image"), *(len(row[0]) for row in rows))
    header = f"{'image':<{width}}  {'PSNR':>7}  {'SSIM':>6}  {'bicubic PSNR':>12}  {'bicubic SSIM':>12}"
    lines = [f"{result['dataset']} x{result['scale']}", header, "-" * len(header)]
    for index, (name, sr_psnr, sr_ssim, bic_psnr, bic_ssim) in enumerate(rows):
        if index == len(rows) - 1:
            lines.append("-" * len(header))
        lines.append(f"{name:<{width}}  {sr_psnr:7.2f}  {sr_ssim:6.4f}  {bic_psnr:12.2f}  {bic_ssim:12.4f}")
    if result.get("skipped"):
        lines.append(f"skipped {len(result['skipped'])} unreadable or too small image(s)")
    return "\n".join(lines)


def result_line(result):
    """The one-line summary, e.g. ``result {'PSNR': 36.66, 'SSIM': 0.9542}``."""
    return "result " + repr({"PSNR": round(float(result["psnr"]), 2), "SSIM": round(float(result["ssim"]), 4)})


def _json_value(value):
    # Paths and numpy scalars/arrays sneak in through ``extra`` (checkpoint=Path(...), step=np.int64(...)).
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in JSON")


def file_sha256(path):
    """Hex digest of a file: which exact checkpoint a result came from."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_json(result, path, **extra):
    """Write ``result`` (plus ``extra`` keys, e.g. checkpoint=...) as JSON, atomically; UserError if unwritable."""
    text = json.dumps({**result, **extra}, indent=2, default=_json_value) + "\n"
    write_text_atomic(path, text, what="results file")


def report(result, output_json="", **extra):
    """What every evaluating entry point prints: the table, then the seed's last line; JSON if asked."""
    if output_json:
        write_json(result, output_json, **extra)
    print(format_table(result))
    if output_json:
        print(f"wrote {output_json}")
    print(result_line(result), flush=True)
