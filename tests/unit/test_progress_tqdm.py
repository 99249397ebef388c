"""src.utils.progress: tqdm bars on a terminal only, warnings on a line of their own."""
import os
import sys

from src.utils.progress import progress, warn


def _run_with_stderr(stream, work):
    saved = sys.stderr
    sys.stderr = stream
    try:
        work()
    finally:
        sys.stderr = saved
        stream.close()


def _read_all(fd):
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # a pseudo-terminal whose other end is closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks).decode()


def _work():
    for item in progress(range(3), desc="Set5 x2"):
        if item == 1:
            warn("skipped a.png: too small")
    assert list(progress(iter("ab"), desc="upscale x2")) == ["a", "b"]  # no length, no total


def test_on_a_pipe_only_the_warning_is_written():
    read_end, write_end = os.pipe()
    _run_with_stderr(os.fdopen(write_end, "w"), _work)
    assert _read_all(read_end) == "warning: skipped a.png: too small\n"


def test_on_a_terminal_the_bar_is_drawn_and_the_warning_has_its_own_line():
    master, slave = os.openpty()  # a terminal that reports no size (0 x 0), as a bare pty does
    _run_with_stderr(os.fdopen(slave, "w"), _work)
    text = _read_all(master)
    assert "Set5 x2: 100%|" in text and "3/3" in text and "it/s ETA 00:00" in text
    assert "upscale x2: 2it" in text
    before, after = text.split("warning: skipped a.png: too small", 1)
    # the bar's line was cleared (carriage return, then the line blanked) and is drawn again below the warning
    assert before.endswith("\r") and before.rstrip("\r").endswith(" ")
    assert after.startswith("\r\n") and "Set5 x2:" in after.split("\r\n", 1)[1]
