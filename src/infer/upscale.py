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

from src.protocol.comparison import (
    degrade_image,
    degrade_panels,
    make_comparison,
    upscale_image,
)
from src.protocol.degradation import modcrop
from src.protocol.image_io import (
    SCORING_BYTES_PER_PIXEL,
    ImageReadError,
    check_fits_memory,
    list_images,
    read_image,
    write_image,
)
from src.protocol.report import report
from src.protocol.scoring import (
    NonFiniteOutput,
    check_finite_output,
    min_image_side,
    named,
    summarize,
)
from src.utils.checks import check_output_file, check_output_folder
from src.utils.errors import UserError
from src.utils.progress import progress, warn


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
    from src.infer.predictor import make_predictor
    from src.model.checkpoint import checkpoint_settings, resolve_checkpoint
    from src.protocol.naming import dataset_name
    from src.utils.checks import check_outputs_spare_inputs

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
