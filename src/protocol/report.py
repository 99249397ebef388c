"""What every evaluating entry point prints and writes: the per-image table, the one-line result and the JSON.

The format is fixed (README tables, scripts and tests read it): PSNR with 2 decimals, SSIM with 4, a mean
row, then ``result {'PSNR': .., 'SSIM': ..}`` as the last line; the JSON holds the result dict of
src/protocol/scoring.py plus the caller's keys (checkpoint and its sha256, model file, providers...).
Framework-free (no MindSpore).
"""
import hashlib
import json
from pathlib import Path

import numpy as np

from src.utils.file_io import write_text_atomic


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
