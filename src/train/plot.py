"""Training curves as a PNG, drawn with Pillow (no plotting dependency): loss and validation PSNR, each panel
with labelled axes (step on x; loss or PSNR in dB on y) and tick values."""
import math

from PIL import Image, ImageDraw

from src.utils.file_io import read_jsonl, write_atomic

WIDTH, HEIGHT, MARGIN = 900, 330, 84  # the image is WIDTH x 2 HEIGHT; MARGIN: left of each panel's frame
TICK = 5  # tick mark length in pixels, outside the frame
INSET = 10  # pixels between the frame and the data range


def nice_ticks(lo, hi, count=5):
    """Round values (1, 2 or 5 x 10^k apart) inside [lo, hi], about ``count`` of them."""
    span = hi - lo
    if span <= 0:
        return [lo]
    raw = span / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step - 1e-9)
    ticks = [round(k * step, 12) for k in range(first, int(math.floor(hi / step + 1e-9)) + 1)]
    return ticks or [lo]


def log_ticks(lo, hi):
    """Tick values for a log axis spanning 10^lo .. 10^hi: the powers of ten inside, else 1-2-5 steps, else
    every digit, else round linear values."""
    decades = range(math.floor(lo), math.ceil(hi) + 1)
    for mantissas in ((1,), (1, 2, 5), range(1, 10)):
        ticks = [m * 10.0 ** k for k in decades for m in mantissas if lo - 1e-9 <= math.log10(m) + k <= hi + 1e-9]
        if len(ticks) >= 2:
            return ticks
    return [t for t in nice_ticks(10 ** lo, 10 ** hi) if t > 0]


def _label(value, log_scale):
    if log_scale:  # 1e-03 for a tick at a whole mantissa, else three digits
        return f"{value:.0e}" if math.isclose(float(f"{value:.0e}"), value) else f"{value:.2e}"
    return f"{value:g}"


def _vertical_text(image, text, centre):
    """``text`` turned 90 degrees counter-clockwise, centred on ``centre`` (x, y)."""
    box = ImageDraw.Draw(image).textbbox((0, 0), text)
    strip = Image.new("RGB", (box[2] + 2, box[3] + 2), "white")
    ImageDraw.Draw(strip).text((1, 1), text, fill="black")
    strip = strip.rotate(90, expand=True)
    image.paste(strip, (int(centre[0] - strip.width / 2), int(centre[1] - strip.height / 2)))


def _panel(image, top, points, title, y_label, log_scale=False, color=(31, 119, 180), reference=None):
    """One panel of ``points`` [(step, value)]; returns its axes: ``frame`` (left, top, right, bottom) and the
    ticks as [(value, pixel)] on each axis."""
    draw = ImageDraw.Draw(image)
    left, right, frame_top, bottom = MARGIN, WIDTH - 20, top + 25, top + HEIGHT - 60
    draw.text((left, top + 5), title, fill="black")
    draw.rectangle([left, frame_top, right, bottom], outline="black")
    axes = {"frame": (left, frame_top, right, bottom), "x_ticks": [], "y_ticks": []}
    draw.text(((left + right) / 2 - 12, bottom + 26), "step", fill="black")
    _vertical_text(image, y_label, (10, (frame_top + bottom) / 2))
    points = [(x, y) for x, y in points if not log_scale or y > 0]
    if not points:
        draw.text((left + 10, frame_top + 15), "no data", fill="gray")
        return axes

    def scaled(y):
        return math.log10(y) if log_scale else y

    ys = [scaled(y) for _, y in points] + ([scaled(reference)] if reference is not None else [])
    y_lo, y_hi = min(ys), max(ys)
    if y_hi - y_lo < 1e-9:
        y_lo, y_hi = y_lo - 0.5, y_hi + 0.5
    x_lo, x_hi = 0, max(x for x, _ in points)

    def to_px(x, y):
        return (left + INSET + (x - x_lo) / max(x_hi - x_lo, 1) * (right - left - 2 * INSET),
                bottom - INSET - (scaled(y) - y_lo) / (y_hi - y_lo) * (bottom - frame_top - 2 * INSET))

    for value in log_ticks(y_lo, y_hi) if log_scale else nice_ticks(y_lo, y_hi):
        py = round(to_px(0, value)[1])
        draw.line([left + 1, py, right - 1, py], fill=(225, 225, 225))  # grid
        draw.line([left - TICK, py, left - 1, py], fill="black")
        text = _label(value, log_scale)
        width = draw.textbbox((0, 0), text)[2]
        draw.text((left - TICK - 3 - width, py - 5), text, fill="black")
        axes["y_ticks"].append((value, py))
    for value in nice_ticks(x_lo, x_hi, count=8):
        px = round(to_px(value, y_hi if not log_scale else 10 ** y_hi)[0])
        draw.line([px, bottom + 1, px, bottom + TICK], fill="black")
        text = f"{value:g}"
        draw.text((px - draw.textbbox((0, 0), text)[2] / 2, bottom + TICK + 3), text, fill="black")
        axes["x_ticks"].append((value, px))
    draw.rectangle([left, frame_top, right, bottom], outline="black")  # over the grid lines' ends
    if reference is not None:
        _, py = to_px(0, reference)
        draw.line([left + 1, py, right - 1, py], fill=(200, 80, 80))
        draw.text((left + 5, py - 14), f"bicubic {reference:.2f}", fill=(200, 80, 80))
    pixels = [to_px(x, y) for x, y in points]
    if len(pixels) > 1:
        draw.line(pixels, fill=color, width=2)
    for px, py in pixels[-1:] if len(pixels) > 40 else pixels:
        draw.ellipse([px - 2, py - 2, px + 2, py + 2], fill=color)
    return axes


def draw_training_curves(records):
    """(image, [loss axes, PSNR axes]) of train_log.jsonl ``records`` (see _panel for the axes)."""
    losses = [(r["step"], r["loss"]) for r in records if "loss" in r]
    psnrs = [(r["step"], r["val_psnr"]) for r in records if "val_psnr" in r]
    bicubic = next((r["val_bicubic_psnr"] for r in records if "val_bicubic_psnr" in r), None)
    image = Image.new("RGB", (WIDTH, 2 * HEIGHT), "white")
    axes = [_panel(image, 0, losses, "training loss (MSE, log scale)", "loss (MSE)", log_scale=True),
            _panel(image, HEIGHT, psnrs, "validation PSNR (dB, Y, shave = scale)", "PSNR (dB)",
                   color=(44, 160, 44), reference=bicubic)]
    return image, axes


def plot_training_log(log_path, png_path):
    image, _ = draw_training_curves(read_jsonl(log_path))
    write_atomic(png_path, lambda handle: image.save(handle, format="PNG"), binary=True, what="training curves")
    return png_path
