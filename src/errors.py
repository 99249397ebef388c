"""One way for every entry point to report a user's mistake: one line on stderr, non-zero exit."""
import errno
import os
import signal
import sys


class UserError(Exception):
    """A mistake in the user's input (file, key, value). The message names the culprit and what was expected."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where a command cleans up after an interrupt itself (src/create_dataset.py)."""


# Temporary files and folders being written right now (file_io, checkpoints, exports): an interrupt removes them.
IN_FLIGHT = set()


def _stop_at_once(signum, frame):
    """Ctrl-C / SIGTERM: the message, the temporary files removed, and exit 128 + signal at once. Raising
    KeyboardInterrupt instead would land anywhere, e.g. inside ``import mindspore`` or a graph compilation,
    where it aborts the interpreter ("Fatal Python error") or leaves MindSpore's state half-built. Every output
    is written to a temporary name and renamed into place, so stopping between two bytecodes never leaves a
    half-written file, and completed checkpoints stay; os._exit skips MindSpore's exit handlers, which would
    run on that half-built state."""
    import shutil

    for path in list(IN_FLIGHT):
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            _remove(path)
    try:
        os.write(2, b"error: interrupted\n")
    finally:
        os._exit(128 + signum)


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def stop_on_signals():
    """Install _stop_at_once for SIGINT and SIGTERM (main thread only; a SIGINT the parent ignores stays
    ignored, as for a background job of a shell)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, _stop_at_once)


def run_cli(main, argv=None):
    """Run ``main(argv)``; a UserError becomes ``error: <message>`` on stderr and exit code 2; Ctrl-C / SIGTERM
    ``error: interrupted`` and exit code 130 / 143 (see _stop_at_once; ``main`` may install its own handlers)."""
    stop_on_signals()
    try:
        code = main(sys.argv[1:] if argv is None else argv)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        sys.exit(2)
    except KeyboardInterrupt as err:
        print("error: interrupted", file=sys.stderr, flush=True)
        sys.exit(143 if isinstance(err, Terminated) else 130)
    except BrokenPipeError:
        # whoever read stdout has gone (e.g. `eval.py --help | head`): stop quietly, as other command-line
        # tools do, instead of a traceback; stdout goes to /dev/null so the exit-time flush cannot fail again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)  # 128 + SIGPIPE, what a shell reports for a tool killed by the broken pipe
    except OSError as err:
        if err.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        # a write that no specific check caught: still one line naming the file, never a traceback
        where = f" writing {err.filename}" if err.filename else ""
        print(f"error: no space left on the device{where}: free some space and run again", file=sys.stderr,
              flush=True)
        sys.exit(2)
    sys.exit(code or 0)
