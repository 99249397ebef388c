"""Files the entry points write and read back: every output, file or folder, is written to a temporary beside
its target, flushed to disk and renamed over it (atomic_output, replace_atomic), so a reader or a crash never
sees half of it; locks on output folders and temporary folders."""
import contextlib
import errno
import fcntl
import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path

from src.utils.errors import IN_FLIGHT, UserError

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def free_bytes(path):
    """Bytes free for this user on the file system of ``path`` (or of its nearest existing folder)."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return 0


def disk_full(path, what="file", needed=None):
    """The UserError of a write that found no space: names the path, the free space and what was needed."""
    need = f", about {needed} bytes needed" if isinstance(needed, int) else f", {needed} bytes needed" if needed else ""
    return UserError(f"cannot write {what} {path}: no space left on its file system ({free_bytes(path)} bytes "
                     f"free{need}); free some space and run again")


def check_space(path, needed, what="file"):
    """UserError (disk_full) unless the file system of ``path`` has ``needed`` bytes free: checked before
    writing, so a full disk leaves no partial file behind and earlier files stay as they are."""
    if free_bytes(path) < needed:
        raise disk_full(path, what, needed)


def new_file_mode(folder=False):
    """The permissions open() gives a new file (0o666 & ~umask), or os.mkdir() a new folder (0o777 & ~umask)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:  # reads the umask without changing it
            umask = next(int(line.split()[1], 8) for line in status if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError):
        umask = os.umask(0o022)
        os.umask(umask)
    return (0o777 if folder else 0o666) & ~umask


def _fsync(path, directory=False):
    """Flush ``path`` (a file, or a folder's entries) to disk; file systems that cannot sync a folder are
    skipped."""
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    except OSError as err:
        if not directory or err.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def replace_atomic(temporary, path):
    """Put the finished file or folder ``temporary`` (beside ``path``, on the same file system) in place of
    ``path``, so that a reader, a kill or a power cut sees the old ``path`` or the complete new one, never a
    part of it. Raises OSError as the file system does (callers word it: write_atomic).

    Steps: the temporary's data flushed to disk (a folder: every file in it, and the folder), the
    permissions set, one rename onto ``path``, the parent folder flushed (the rename itself survives a
    crash). A folder replaces an existing ``path`` in two renames (the old one is moved aside, then
    removed); a run killed between them leaves no ``path`` and the old one as ``.<name>.old.*``, which the
    next atomic_output of ``path`` removes. A make_owned_temp_dir folder's ``.owner.lock`` is left out.

    The one permissions rule: the result gets what a new file or folder would, 0o666 & ~umask for files and
    0o777 & ~umask for folders (as open() and os.mkdir() make them), for everything in a folder too: not the
    owner-only mode of mkstemp/mkdtemp or of MindSpore's writers (0o600), and not the mode of the file it
    replaces (the result is a new file, as with any rename)."""
    temporary, path = Path(temporary), Path(path)
    file_mode = new_file_mode()
    if temporary.is_dir():
        (temporary / OWNER_LOCK).unlink(missing_ok=True)  # the lock stays held on the open file until release
        folder_mode = new_file_mode(folder=True)
        for root, folders, files in os.walk(temporary):
            for name in files:
                os.chmod(os.path.join(root, name), file_mode)
                _fsync(os.path.join(root, name))
            for name in folders:
                os.chmod(os.path.join(root, name), folder_mode)
            _fsync(root, directory=True)
        os.chmod(temporary, folder_mode)
        old = None
        if path.exists() or path.is_symlink():
            old = path.with_name(f".{path.name}.old.{os.getpid()}.{uuid.uuid4().hex[:8]}")
            os.replace(path, old)
        os.replace(temporary, path)
        _fsync(path.parent, directory=True)
        if old is not None:
            if old.is_dir() and not old.is_symlink():
                shutil.rmtree(old, ignore_errors=True)
            else:
                old.unlink(missing_ok=True)
        return
    os.chmod(temporary, file_mode)
    _fsync(temporary)
    os.replace(temporary, path)
    _fsync(path.parent, directory=True)


@contextlib.contextmanager
def atomic_output(path, folder=False, suffix=""):
    """The one way outputs are written: ``with atomic_output(path) as temporary:`` yields a fresh temporary
    path beside ``path`` (its parent folders created) to fill, a name nothing has yet for a file
    (``.tmp_<name>.<random><suffix>``; ``suffix`` for writers that insist on an extension) or an empty
    folder (``folder=True``: a make_owned_temp_dir folder ``.<name>.<random>``; a killed run's are removed
    here). On a clean exit replace_atomic puts it in place of ``path`` (fsync, the one permissions rule,
    rename); on an exception, or an interrupt (IN_FLIGHT, src/utils/errors.py), it is removed and ``path``
    is untouched. OSError propagates as raised (callers word it: write_atomic)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if folder:
        remove_stale_temp_dirs(path.parent, f".{path.name}.")
        temporary = make_owned_temp_dir(path.parent, f".{path.name}.")
    else:
        temporary = path.with_name(f".tmp_{path.name}.{uuid.uuid4().hex[:8]}{suffix}")
        IN_FLIGHT.add(str(temporary))
    try:
        yield temporary
        replace_atomic(temporary, path)
    finally:
        if folder:
            release_temp_dir(temporary)
        else:
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)  # only left behind if something failed
            IN_FLIGHT.discard(str(temporary))


def write_atomic(path, write, binary=False, what="file"):
    """Call ``write(handle)`` on a new file in place of ``path`` (atomic_output: the old file or the complete
    new one, folders created). UserError naming ``what`` and the path if it cannot be written (a full disk:
    the free space)."""
    path = Path(path)
    written = 0
    try:
        with atomic_output(path) as temporary:
            with open(temporary, "xb" if binary else "x", **({} if binary else {"encoding": "utf-8"})) as handle:
                try:
                    write(handle)
                    handle.flush()
                finally:
                    with contextlib.suppress(OSError, ValueError):
                        written = handle.tell()
    except OSError as err:
        if err.errno in DISK_FULL:
            raise disk_full(path, what, f"at least {written}" if written else None) from None
        raise UserError(f"cannot write {what} {path} ({err.strerror or err})") from None


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


OWNER_LOCK = ".owner.lock"


_OWNED = {}  # temporary folder -> the open file holding its lock


def make_owned_temp_dir(parent, prefix):
    """A fresh temporary folder ``<parent>/<prefix><random>`` whose ``.owner.lock`` this process holds
    (fcntl.flock) until release_temp_dir or its end: remove_stale_temp_dirs can tell a folder left by a killed
    run (lock free) from one a running process is filling (lock held). OSError as tempfile.mkdtemp raises."""

    path = tempfile.mkdtemp(prefix=prefix, dir=parent)
    handle = open(os.path.join(path, OWNER_LOCK), "w", encoding="utf-8")
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
    _OWNED[path] = handle
    IN_FLIGHT.add(path)  # removed by an interrupt (src/utils/errors.py)
    return Path(path)


def release_temp_dir(path):
    """Remove a folder of make_owned_temp_dir and drop its lock."""
    path = str(path)
    shutil.rmtree(path, ignore_errors=True)
    IN_FLIGHT.discard(path)
    handle = _OWNED.pop(path, None)
    if handle is not None:
        handle.close()


def temp_dir_is_mine(path):
    """Whether ``path`` is a make_owned_temp_dir folder of this process."""
    return str(path) in _OWNED


def temp_dir_owner_alive(path):
    """Whether a live process holds the lock of the make_owned_temp_dir folder ``path``."""

    try:
        with open(os.path.join(path, OWNER_LOCK), "a", encoding="utf-8") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return True
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            return False
    except OSError:
        return False  # no lock file: the run was killed between creating the folder and locking it


def remove_stale_temp_dirs(parent, prefix):
    """Remove the folders ``<parent>/<prefix>*`` of make_owned_temp_dir whose process has ended (a killed
    run's); folders of running processes and anything not named so stay. Returns the removed paths."""
    removed = []
    for path in sorted(Path(parent).glob(f"{prefix}*")) if Path(parent).is_dir() else []:
        if path.is_dir() and not path.is_symlink() and not temp_dir_owner_alive(path):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed
