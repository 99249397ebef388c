"""Training curves as a PNG, drawn with Pillow (no plotting dependency): loss and validation PSNR."""
import math

from PIL import Image, ImageDraw

from src.utils.file_io import read_jsonl, write_atomic

WIDTH, HEIGHT, MARGIN = 900, 330, 60


def _panel(draw, top, points, title, log_scale=False, color=(31, 119, 180), reference=None):
    left, right, bottom = MARGIN, WIDTH - 20, top + HEIGHT - 45
    draw.text((left, top + 5), title, fill="black")
    draw.rectangle([left, top + 25, right, bottom], outline="black")
    if not points:
        draw.text((left + 10, top + 40), "no data", fill="gray")
        return
    xs = [p[0] for p in points]
    ys = [math.log10(p[1]) if log_scale else p[1] for p in points if not log_scale or p[1] > 0]
    extra = [reference] if reference is not None else []
    y_lo, y_hi = min(ys + extra), max(ys + extra)
    if y_hi - y_lo < 1e-9:
        y_lo, y_hi = y_lo - 0.5, y_hi + 0.5
    x_lo, x_hi = 0, max(xs)

    def to_px(x, y):
        return (left + (x - x_lo) / max(x_hi - x_lo, 1) * (right - left),
                bottom - (y - y_lo) / (y_hi - y_lo) * (bottom - top - 35))

    for frac in (0, 0.5, 1):
        value = y_lo + frac * (y_hi - y_lo)
        label = f"{10 ** value:.2e}" if log_scale else f"{value:.2f}"
        _, py = to_px(0, value)
        draw.line([left - 4, py, left, py], fill="black")
        draw.text((2, py - 6), label, fill="black")
    draw.text((right - 60, bottom + 8), f"step {x_hi}", fill="black")
    if reference is not None:
        _, py = to_px(0, reference)
        draw.line([left, py, right, py], fill=(200, 80, 80))
        draw.text((left + 5, py - 14), f"bicubic {reference:.2f}", fill=(200, 80, 80))
    pixels = [to_px(x, math.log10(y) if log_scale else y) for x, y in points if not log_scale or y > 0]
    if len(pixels) > 1:
        draw.line(pixels, fill=color, width=2)
    for px, py in pixels[-1:] if len(pixels) > 40 else pixels:
        draw.ellipse([px - 2, py - 2, px + 2, py + 2], fill=color)


def plot_training_log(log_path, png_path):
    records = read_jsonl(log_path)
    losses = [(r["step"], r["loss"]) for r in records if "loss" in r]
    psnrs = [(r["step"], r["val_psnr"]) for r in records if "val_psnr" in r]
    bicubic = next((r["val_bicubic_psnr"] for r in records if "val_bicubic_psnr" in r), None)
    image = Image.new("RGB", (WIDTH, 2 * HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    _panel(draw, 0, losses, "training loss (MSE, log scale)", log_scale=True)
    _panel(draw, HEIGHT, psnrs, "validation PSNR (dB, Y, shave = scale)", color=(44, 160, 44), reference=bicubic)
    write_atomic(png_path, lambda handle: image.save(handle, format="PNG"), binary=True, what="training curves")
    return png_path
