"""curves.png: labelled axes whose tick marks stand where their values are, read back from the PNG."""
import json
import math

import numpy as np
from PIL import Image

from src.train.plot import draw_training_curves, plot_training_log

LOSS = {100: 0.1, 200: 0.02, 300: 0.005, 400: 0.001}
PSNR = {200: 30.0, 400: 32.0}
BICUBIC = 29.5
BLUE, GREEN = (31, 119, 180), (44, 160, 44)


def _write_log(path):
    records = [{"step": 0, "event": "start"}]
    for step, loss in LOSS.items():
        record = {"step": step, "loss": loss, "lr": 1e-3}
        if step in PSNR:
            record.update(val_psnr=PSNR[step], val_bicubic_psnr=BICUBIC)
        records.append(record)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def _interpolate(ticks, value):
    """The pixel of ``value`` on an axis from two of its (value, pixel) ticks."""
    (v0, p0), (v1, p1) = ticks[0], ticks[-1]
    return p0 + (value - v0) / (v1 - v0) * (p1 - p0)


def _centroid(pixels, color, box):
    left, top, right, bottom = box
    region = pixels[top:bottom, left:right]
    ys, xs = np.nonzero(np.all(region == color, axis=2))
    assert len(xs), (color, box)
    return left + xs.mean(), top + ys.mean()


def test_ticks_carry_round_values_at_their_places_and_the_data_sits_between_them(tmp_path):
    log = tmp_path / "train_log.jsonl"
    _write_log(log)
    png = plot_training_log(log, tmp_path / "curves.png")
    with Image.open(png) as image:
        pixels = np.asarray(image.convert("RGB")).astype(int)
    _, (loss_axes, psnr_axes) = draw_training_curves([json.loads(line) for line in log.read_text().splitlines()])

    # values: every 50 steps from 0 to 400; the decades the losses span; half-decibels from the bicubic line up
    assert [v for v, _ in loss_axes["x_ticks"]] == [50 * k for k in range(9)]
    assert [v for v, _ in loss_axes["y_ticks"]] == [0.001, 0.01, 0.1]
    assert [v for v, _ in psnr_axes["y_ticks"]] == [29.5, 30.0, 30.5, 31.0, 31.5, 32.0]

    for axes in (loss_axes, psnr_axes):
        left, top, right, bottom = axes["frame"]
        assert (pixels[top, left:right + 1] == 0).all() and (pixels[bottom, left:right + 1] == 0).all()
        for _, py in axes["y_ticks"]:  # a black mark left of the frame, a label further left
            assert top < py < bottom and (pixels[py, left - 5:left] == 0).all()
            assert (pixels[py - 5:py + 6, 20:left - 7] < 128).any()
        xs = [px for _, px in axes["x_ticks"]]
        assert xs == sorted(xs) and len(set(np.diff(xs))) <= 2  # evenly spaced (to the rounding)
        for px in xs:  # a black mark below the frame, a label under it
            assert left <= px <= right and (pixels[bottom + 1:bottom + 6, px] == 0).all()
            assert (pixels[bottom + 8:bottom + 20, px - 12:px + 13] < 128).any()
        # the axis names: "step" under the ticks, the quantity turned upright left of the labels
        assert (pixels[bottom + 24:bottom + 40, (left + right) // 2 - 20:(left + right) // 2 + 20] < 128).any()
        assert (pixels[top + 60:bottom - 60, 2:18] < 128).any()

    # each point is drawn where the ticks say it belongs (log scale for the loss)
    log_ticks = [(math.log10(v), p) for v, p in loss_axes["y_ticks"]]
    for step, loss in LOSS.items():
        x, y = _interpolate(loss_axes["x_ticks"], step), _interpolate(log_ticks, math.log10(loss))
        cx, cy = _centroid(pixels, BLUE, (round(x) - 3, round(y) - 3, round(x) + 4, round(y) + 4))
        assert abs(cx - x) <= 1.0 and abs(cy - y) <= 1.0, (step, cx, cy, x, y)
    for step, value in PSNR.items():
        x, y = _interpolate(psnr_axes["x_ticks"], step), _interpolate(psnr_axes["y_ticks"], value)
        cx, cy = _centroid(pixels, GREEN, (round(x) - 3, round(y) - 3, round(x) + 4, round(y) + 4))
        assert abs(cx - x) <= 1.0 and abs(cy - y) <= 1.0, (step, cx, cy, x, y)
    bicubic_row = round(_interpolate(psnr_axes["y_ticks"], BICUBIC))
    assert (pixels[bicubic_row, psnr_axes["frame"][0] + 200] == (200, 80, 80)).all()


def test_an_empty_log_still_draws_both_labelled_panels(tmp_path):
    log = tmp_path / "train_log.jsonl"
    log.write_text(json.dumps({"step": 0, "event": "start"}) + "\n")
    image, axes = draw_training_curves([{"step": 0, "event": "start"}])
    assert image.size == (900, 660) and all(not a["x_ticks"] and not a["y_ticks"] for a in axes)
