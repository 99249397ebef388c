"""Up-front checks of output paths, made before any heavy work and without creating anything.

An entry point calls these as soon as it has its configuration, so that a results file or folder that can
never be written (a path under a regular file, a file where a folder is expected, a read-only folder) is a
one-line UserError naming the key, not a failure after minutes of work or a half-written set of outputs.
Framework-free (no MindSpore).
"""
import os
from pathlib import Path

from src.utils.errors import UserError


def _existing_ancestor(path):
    """The nearest ancestor of ``path`` that exists (``path`` itself excluded)."""
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    return parent


def _check_creatable(path, key):
    """``path`` does not exist: its nearest existing ancestor must be a writable folder."""
    ancestor = _existing_ancestor(path)
    if not ancestor.is_dir():
        raise UserError(f"{key} {path} cannot be created: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UserError(f"{key} {path} cannot be created: folder {ancestor} is not writable")


def check_output_file(path, key):
    """``path`` (the value of config key ``key``) can be written as a file: it is not a folder and its folder
    exists and is writable, or can be created. Nothing is created. Empty ``path`` = not asked for: no check."""
    if not path:
        return
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{key} {path} is a folder, expected a file name")
    if path.exists():
        if not os.access(path.parent, os.W_OK | os.X_OK):
            raise UserError(f"{key} {path} cannot be replaced: folder {path.parent} is not writable")
        return
    _check_creatable(path, key)


def check_output_folder(path, key):
    """``path`` (the value of config key ``key``) is a writable folder or can be created as one. Nothing is
    created. Empty ``path`` = not asked for: no check."""
    if not path:
        return
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise UserError(f"{key} {path} exists and is not a folder")
        if not os.access(path, os.W_OK | os.X_OK):
            raise UserError(f"{key} {path} is not writable")
        return
    _check_creatable(path, key)


def check_outputs_spare_inputs(outputs, inputs, folders=()):
    """Before anything is written: no output is an input of the same command, by real path (symlinks
    resolved). ``outputs`` and ``inputs`` are [(key, path)] of files (empty paths skipped); ``folders`` are
    [(key, path)] of output folders whose whole content the command replaces or deletes (no input may lie
    in them). UserError naming both paths."""
    def real(path):
        return os.path.realpath(os.fspath(path))

    def same(path, real_path):
        return "" if os.path.abspath(os.fspath(path)) == real_path else f" (the same file: {real_path})"

    by_real = {}
    for key, path in inputs:
        if path and os.path.isfile(path):
            by_real.setdefault(real(path), (key, path))
    for key, path in outputs:
        if not path:
            continue
        clash = by_real.get(real(path))
        if clash:
            raise UserError(f"{key} {path} is the input {clash[0]} {clash[1]}{same(path, real(path))}: writing "
                            f"it would replace the input; choose another {key}")
    for key, folder in folders:
        if not folder:
            continue
        inside = real(folder) + os.sep
        for real_path, (in_key, in_path) in by_real.items():
            if real_path.startswith(inside):
                raise UserError(f"{key} {folder} holds the input {in_key} {in_path}, and this command replaces "
                                f"or deletes what is in it: choose another {key}")
