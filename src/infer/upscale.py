"""test.py's work: super-resolve image files with a checkpoint and save colour PNGs.

upscale mode: every input is a low-resolution image made ``scale`` x larger (``upscale_image``: SRCNN
restores Y, Cb and Cr stay bicubic; single-channel images stay gray).

degrade mode: every input is a ground truth, scored by the shared loop (``src.protocol.scoring.evaluate``,
the same table and result line as eval.py) and saved with Cb/Cr degraded the same way as Y.

Outputs: ``<output_path>/<relative folder>/<stem>_srcnn_x<scale>.png``; with compare=true also
``<stem>_compare_x<scale>.png`` (src/protocol/comparison.py).
"""
from pathlib import Path

from src.model.checkpoint import checkpoint_settings, resolve_checkpoint
from src.protocol.comparison import make_comparison, save_scored_images, upscale_image
from src.protocol.image_io import (
    SCORING_BYTES_PER_PIXEL,
    check_fits_memory,
    list_images,
    read_or_skip,
    write_image,
)
from src.protocol.naming import output_names, saved_image_name
from src.protocol.report import report
from src.protocol.scoring import (
    NonFiniteOutput,
    check_finite_output,
    evaluate,
    images_outside,
    iter_images,
    named,
)
from src.utils.checks import check_output_file, check_output_folder, check_outputs_spare_inputs
from src.utils.errors import UserError
from src.utils.progress import progress


def _upscale_all(paths, names, scale, predict, out_dir, compare, input_path, skipped):
    """Upscale mode: write every readable image of ``paths`` ``scale`` x larger; returns how many were written."""
    written = 0
    for path in progress(paths, desc=f"upscale x{scale}"):
        img = read_or_skip(path, skipped)
        if img is None:
            continue
        try:
            sr, bicubic = upscale_image(img, scale, lambda lr_y: check_finite_output(predict(lr_y)))
        except NonFiniteOutput as err:  # no NaN/Inf output is saved
            raise named(path.name, input_path, err) from None
        write_image(out_dir / saved_image_name(names[path], "srcnn", scale), sr)
        if compare:
            panels = [(f"bicubic x{scale}", bicubic), (f"SRCNN x{scale}", sr)]
            write_image(out_dir / saved_image_name(names[path], "compare", scale),
                        make_comparison(panels, bicubic))  # the reference: the content, whatever the model does
        written += 1
    return written


def run_test(cfg):
    """Process every image of cfg.input_path in cfg.mode; returns the degrade-mode result dict (or None)."""
    if not cfg.input_path:
        raise UserError("input_path is empty: give --input_path=IMAGE or FOLDER of images")
    if not cfg.output_path:
        raise UserError("output_path is empty: give --output_path=FOLDER for the results")
    degrade_mode = cfg.mode == "degrade"
    check_output_folder(cfg.output_path, "output_path")
    if degrade_mode:
        check_output_file(cfg.output_json, "output_json")  # before any image is written
    out_dir = Path(cfg.output_path)
    paths = images_outside(list_images(cfg.input_path, key="input_path"), out_dir, "output_path")
    if not paths:
        raise UserError(f"input_path {cfg.input_path} has no images outside output_path {out_dir}")
    checkpoint = resolve_checkpoint(cfg)
    inputs = [("checkpoint_path", checkpoint)] + [("config_path", f) for f in cfg.config_files()]
    inputs += [("input_path", path) for path in paths]
    check_outputs_spare_inputs([("output_json", cfg.output_json if degrade_mode else "")], inputs)
    cfg, weights = checkpoint_settings(cfg, checkpoint)
    scale = int(cfg.scale)
    names = output_names(paths, cfg.input_path, scale)
    outputs = [("output_path", out_dir / saved_image_name(name, kind, scale)) for name in names.values()
               for kind in (("srcnn", "compare") if cfg.compare else ("srcnn",))]
    check_outputs_spare_inputs(outputs, inputs)
    # upscale mode works on the scale x larger image
    check_fits_memory(paths, SCORING_BYTES_PER_PIXEL * (1 if degrade_mode else scale ** 2), key="input_path")
    from src.infer.mindspore_backend import predictor_from_checkpoint  # here: refusals above skip its start-up

    predict, _ = predictor_from_checkpoint(cfg, checkpoint, weights)
    skipped = []
    if degrade_mode:
        def save(name, img, sr, lr_up, scores):
            save_scored_images(out_dir, name, scale, img, sr, lr_up, scores, compare=cfg.compare)

        result = evaluate(predict, iter_images(cfg.input_path, scale, skipped, paths=paths, desc=f"degrade x{scale}"),
                          scale, source=cfg.input_path, skipped=skipped, key="input_path", on_image=save)
        report(result, cfg.output_json, checkpoint=str(Path(checkpoint).resolve()), mode="degrade")
        written = len(result["images"])
    else:
        result = None
        written = _upscale_all(paths, names, scale, predict, out_dir, cfg.compare, cfg.input_path, skipped)
        if not written:
            raise UserError(f"no image of {cfg.input_path} could be processed ({len(skipped)} skipped)")
    extra = " and comparison images" if cfg.compare else ""
    print(f"wrote {written} x{scale} SRCNN image(s){extra} to {out_dir}"
          + (f" ({len(skipped)} skipped)" if skipped else ""), flush=True)
    return result
