"""One way for every entry point to report a user's mistake: one line on stderr, non-zero exit."""
import errno
import os
import shutil
import signal
import sys
import threading


class UserError(Exception):
    """A mistake in the user's input (file, key, value). The message names the culprit and what was expected."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where a command cleans up after an interrupt itself (src/create_dataset.py)."""


# Temporary files and folders being written right now (file_io, checkpoints, exports): an interrupt removes them.
IN_FLIGHT = set()
_STOPPING = threading.Lock()  # one _stop_at_once per process (the waiting thread or the main thread's handler)


def _stop_at_once(signum, frame):
    """Ctrl-C / SIGTERM: the message, the temporary files removed, and exit 128 + signal at once. Raising
    KeyboardInterrupt in the main thread instead would land anywhere, e.g. inside ``import mindspore`` or a
    graph compilation, where it aborts the interpreter ("Fatal Python error") or leaves MindSpore's state
    half-built. Every output is written to a temporary name and renamed into place, so stopping at any moment
    never leaves a half-written file, and completed checkpoints stay; os._exit skips MindSpore's exit handlers,
    which would run on that half-built state."""

    if not _STOPPING.acquire(blocking=False):
        threading.Event().wait()  # the other thread that got a signal is already ending the process
    for path in list(IN_FLIGHT):
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            _remove(path)
    # the message from a thread of its own, waited for 1 s at most: a stderr pipe nobody reads any more (a
    # stopped launcher's) must not keep the process alive, holding its files and ports

    writer = threading.Thread(target=_write_stderr, args=(b"error: interrupted\n",), daemon=True)
    writer.start()
    writer.join(1.0)
    os._exit(128 + signum)


def _write_stderr(data):
    try:
        os.write(2, data)
    except OSError:
        pass


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


_WATCHED = set()
_PREVIOUS_HANDLERS = {}


def _wait_for_signals(signals):
    _stop_at_once(signal.sigwait(signals), None)


def _unblock_in_child():
    # a forked child has no waiting thread, and must not remove its parent's files on a signal
    for signum, handler in _PREVIOUS_HANDLERS.items():
        signal.signal(signum, handler)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _WATCHED)


def stop_on_signals():
    """Route SIGINT and SIGTERM to _stop_at_once: both are blocked in this thread and in every thread started
    after it, and one thread of ours waits for them. A Python handler would not do: it runs only when the main
    thread runs Python code (not while it waits inside MindSpore, e.g. msrun's scheduler in init()), and
    MindSpore installs its own SIGINT handler around graph runs (which re-sends SIGTERM). Forked children get
    the signals unblocked again. Called from the main thread, before MindSpore loads (src/__init__.py for the
    entry scripts); idempotent. A signal the parent ignores stays ignored (SIGINT for a background job of a
    shell). A command that cleans up after an interrupt itself unblocks them (unblock_signals) and installs its
    own handlers."""

    if _WATCHED or threading.current_thread() is not threading.main_thread():
        return
    if os.environ.get("MS_ROLE") == "MS_SCHED":
        # msrun's scheduler (a train.py that only waits in MindSpore's init(), holding the interpreter lock, so
        # no Python code of ours could run): the default actions end it at once, as its launcher expects
        return
    _WATCHED.update(signum for signum in (signal.SIGINT, signal.SIGTERM)
                    if signal.getsignal(signum) is not signal.SIG_IGN)
    if not _WATCHED:
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, _WATCHED)
    # and where code unblocks them again in the main thread (multiprocessing's resource tracker does, when it
    # starts) or a library's thread leaves them unblocked, the Python handler does the same instead of raising
    # KeyboardInterrupt wherever the main thread is (where library code may swallow it)
    for signum in _WATCHED:
        _PREVIOUS_HANDLERS[signum] = signal.signal(signum, _stop_at_once)
    os.register_at_fork(after_in_child=_unblock_in_child)
    threading.Thread(target=_wait_for_signals, args=(set(_WATCHED),), name="srcnn-signals", daemon=True).start()


def unblock_signals():
    """Deliver SIGINT and SIGTERM to this (main) thread's handlers again (see stop_on_signals)."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})


def run_cli(main, argv=None):
    """Run ``main(argv)``; a UserError becomes ``error: <message>`` on stderr and exit code 2; Ctrl-C / SIGTERM
    ``error: interrupted`` and exit code 130 / 143 (see _stop_at_once; ``main`` may install its own handlers)."""
    stop_on_signals()
    for stream in (sys.stdout, sys.stderr):  # a file name that is not valid UTF-8, on any terminal encoding
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
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
