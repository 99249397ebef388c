"""Files the entry points write and read back: every output is written to a temporary file beside its target,
flushed to disk and renamed over it, so a reader or a crash never sees half a file."""
import contextlib
import json
import os
import shutil
import uuid
from pathlib import Path

from src.errors import UserError


def write_atomic(path, write, binary=False, what="file"):
    """Call ``write(handle)`` on a temporary file beside ``path``, then rename it onto ``path`` (folders
    created). UserError naming ``what`` and the path if it cannot be written."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # open() rather than mkstemp() so the file gets the usual umask permissions, not 0600
        with open(temporary, "xb" if binary else "x", **({} if binary else {"encoding": "utf-8"})) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())  # the rename must never expose a half-written file after a crash
        os.replace(temporary, path)
    except OSError as err:
        raise UserError(f"cannot write {what} {path} ({err.strerror or err})") from None
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)  # only left behind if something failed


def write_text_atomic(path, text, what="file"):
    write_atomic(path, lambda handle: handle.write(text), what=what)


def copy_atomic(source, target, what="file"):
    with open(source, "rb") as handle:
        write_atomic(target, lambda out: shutil.copyfileobj(handle, out), binary=True, what=what)


def read_jsonl(path):
    """The records of a JSON-lines file (train.py's train_log.jsonl), blank lines skipped."""
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


LOCK_NAME = ".train.lock"


def lock_folder(folder, key="output_path", owner="train.py"):
    """An exclusive OS lock (``fcntl.flock``) on ``folder`` for the rest of the process's life: the open file
    ``<folder>/.train.lock`` (kept open; the kernel releases the lock when the process ends, however it ends).
    The folder is created if needed. UserError naming the folder if another process holds the lock. Returns
    the open file object (keep a reference)."""
    import fcntl

    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle = open(folder / LOCK_NAME, "a+", encoding="utf-8")  # never truncates a holder's pid
    except OSError as err:
        raise UserError(f"cannot lock {key} {folder} ({err.strerror or err})") from None
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip()
        handle.close()
        holder = f" (pid {holder})" if holder.isdigit() else ""
        raise UserError(f"{key} {folder} is in use by another {owner} run{holder}: wait for it to finish or "
                        f"give another --{key}") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle
