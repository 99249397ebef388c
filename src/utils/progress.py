"""A dependency-free, single-line progress bar on stderr (silent when stderr is not a terminal)."""
import sys
import time

_BAR_WIDTH = 24


_MIN_REDRAW_SECONDS = 0.1  # redrawing on every item would cost more than fast items themselves


def _clock(seconds):
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes:02d}:{seconds:02d}"


def _line(desc, done, total, elapsed):
    rate = done / elapsed if elapsed > 0 else 0.0
    prefix = f"{desc}: " if desc else ""
    if total:
        filled = int(_BAR_WIDTH * min(done, total) / total)
        bar = "#" * filled + "." * (_BAR_WIDTH - filled)
        eta = _clock((total - done) / rate) if rate > 0 and done < total else "--:--"
        return f"{prefix}[{bar}] {done}/{total} {rate:.2f} it/s ETA {eta}"
    return f"{prefix}{done} {rate:.2f} it/s elapsed {_clock(elapsed)}"


def warn(message):
    """``warning: <message>`` on stderr, on a line of its own even while a progress bar is drawn there."""
    stream = sys.stderr
    if hasattr(stream, "isatty") and stream.isatty():
        stream.write("\r\033[K")  # clear the bar; it is redrawn below the warning
    print(f"warning: {message}", file=stream, flush=True)


def progress(iterable, total=None, desc=""):
    """Yield from ``iterable`` while drawing ``desc: [###...] done/total rate it/s ETA`` on stderr.

    ``total`` defaults to ``len(iterable)`` when it has one. Nothing is printed unless stderr is a TTY,
    so logs and pipes stay clean.
    """
    stream = sys.stderr
    if not (hasattr(stream, "isatty") and stream.isatty()):
        yield from iterable
        return
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)

    start = last_draw = time.monotonic()
    done = 0
    width = 0

    def draw():
        nonlocal width
        text = _line(desc, done, total, time.monotonic() - start)
        # Pad with spaces so a shorter line fully overwrites the previous one.
        stream.write("\r" + text.ljust(width))
        stream.flush()
        width = len(text)

    draw()
    try:
        for item in iterable:
            yield item
            done += 1
            now = time.monotonic()
            if now - last_draw >= _MIN_REDRAW_SECONDS:
                last_draw = now
                draw()
    finally:
        draw()
        stream.write("\n")
        stream.flush()
