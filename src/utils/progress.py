"""Progress bars on stderr (tqdm), drawn only when stderr is a terminal: logs, pipes and CI stay clean."""
import os
import sys

from tqdm import tqdm

# tqdm's bar with the rate and the time left spelled out (its default shows them as [elapsed<left, rate])
_FORMAT = "{l_bar}{bar}| {n_fmt}/{total_fmt} {rate_fmt} ETA {remaining}"
# a terminal that reports no size (a bare pseudo-terminal): tqdm would draw nothing in 0 columns and 0 rows
_FALLBACK_SIZE = (80, 24)


def _on_terminal(stream):
    return hasattr(stream, "isatty") and stream.isatty()


def _size(stream):
    try:
        size = os.get_terminal_size(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return None
    return (size.columns, size.lines) if size.columns and size.lines else None


def warn(message):
    """``warning: <message>`` on stderr, on a line of its own even while a progress bar is drawn there
    (tqdm.write clears the bar and redraws it below)."""
    tqdm.write(f"warning: {message}", file=sys.stderr)
    sys.stderr.flush()


def progress(iterable, total=None, desc=""):
    """Yield from ``iterable`` while drawing ``desc: 40%|####      | done/total rate it/s ETA mm:ss`` on stderr
    (without a known total: the count and the rate). ``total`` defaults to ``len(iterable)`` when it has one.
    Nothing is printed unless stderr is a terminal."""
    stream = sys.stderr
    if not _on_terminal(stream):
        return tqdm(iterable, total=total, disable=True)
    known = total is not None or hasattr(iterable, "__len__")
    columns, rows = _size(stream) or _FALLBACK_SIZE
    return tqdm(iterable, total=total, desc=desc or None, file=stream, bar_format=_FORMAT if known else None,
                ncols=columns, nrows=rows)
