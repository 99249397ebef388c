"""The training set: a MindRecord of (bicubic LR, HR) Y-channel patch pairs, built from image folders
(src/create_dataset.py is the command) and checked when read back."""
import collections
import contextlib
import functools
import json
import multiprocessing
import os
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np

from src.protocol.degradation import prepare_pair, to_uint8
from src.protocol.image_io import (
    ImageReadError,
    holdout_names,
    list_images,
    read_image,
    split_holdout,
)
from src.protocol.matlab_functions import imresize
from src.utils.checks import check_output_folder, check_outputs_spare_inputs
from src.utils.errors import UserError
from src.utils.file_io import (
    DISK_FULL,
    atomic_output,
    disk_full,
    free_bytes,
    make_owned_temp_dir,
    release_temp_dir,
    remove_stale_temp_dirs,
    replace_atomic,
    temp_dir_is_mine,
    temp_dir_owner_alive,
)
from src.utils.progress import progress

MINDRECORD_COLUMNS = ("lr", "hr")


TEMP_PREFIX = ".create_dataset.tmp-"  # this script's temporary folders (a killed run's are removed by the next)


CHUNK_ROWS = 2048  # rows per FileWriter.write_raw_data call (~18 MB at patch_size 33)


_SCHEMA_DESC = "srcnn_patches"


def dataset_file_name(scale, patch_size, stride):
    """File name of the MindRecord create_dataset writes for these settings."""
    return f"srcnn_x{int(scale)}_p{int(patch_size)}_s{int(stride)}.mindrecord"


def _schema(patch_size):
    shape = [1, int(patch_size), int(patch_size)]
    return {name: {"type": "float32", "shape": list(shape)} for name in MINDRECORD_COLUMNS}


def patch_positions(height, width, patch_size, stride):
    """Top-left (y, x) of every patch, row-major: y and x over range(0, size - patch_size + 1, stride)."""
    return [(y, x) for y in range(0, height - patch_size + 1, stride)
            for x in range(0, width - patch_size + 1, stride)]


def extract_patches(img, patch_size, stride):
    """All patch_size x patch_size windows of a 2-D array at `stride`, row-major over (y, x), as [N, 1, P, P].

    A copy (not a view) in the dtype of ``img``; N is 0 if the image is smaller than one patch.
    """
    img = np.asarray(img)
    height, width = img.shape
    if height < patch_size or width < patch_size:
        return np.empty((0, 1, patch_size, patch_size), dtype=img.dtype)
    windows = np.lib.stride_tricks.sliding_window_view(img, (patch_size, patch_size))[::stride, ::stride]
    return np.ascontiguousarray(windows).reshape(-1, 1, patch_size, patch_size)


def _modcropped_shape(shape, scale):
    return shape[0] - shape[0] % scale, shape[1] - shape[1] % scale


def _downscale(img, factor):
    """The ground-truth image shrunk by ``factor`` (bicubic on [0, 1] floats, every channel), back to uint8."""
    return to_uint8(imresize(np.asarray(img, dtype=np.float64) / 255.0, float(factor)))


def image_patches(img, scale, patch_size, stride, downscale_factors=(1.0,)):
    """(lr, hr, sizes) for one uint8 ground-truth image.

    lr and hr are float32 [N, 1, P, P] in [0, 1]: per factor (in the given order) the image is downscaled
    (f < 1), put through prepare_pair and cut into patches row-major. ``sizes`` lists the modcropped
    (height, width) per factor; a factor whose image is smaller than one patch contributes nothing.
    """
    lrs, hrs, sizes = [], [], []
    for factor in downscale_factors:
        hr_img = img if factor >= 1 else _downscale(img, factor)
        size = _modcropped_shape(hr_img.shape, scale)
        sizes.append(size)
        if min(size) < patch_size:
            continue
        hr_y, lr_up = prepare_pair(hr_img, scale)
        lrs.append(extract_patches(lr_up.astype(np.float32, copy=False), patch_size, stride))
        hrs.append(extract_patches((hr_y / 255.0).astype(np.float32), patch_size, stride))
    if not lrs:
        empty = np.empty((0, 1, patch_size, patch_size), dtype=np.float32)
        return empty, empty.copy(), sizes
    return np.concatenate(lrs), np.concatenate(hrs), sizes


def _too_small_reason(sizes, factors, patch_size):
    best = max(range(len(sizes)), key=lambda i: min(sizes[i]))
    height, width = sizes[best]
    factor = factors[best]
    how = "after modcrop" if factor >= 1 else f"after downscaling by {factor:g} and modcrop"
    return f"too small: {width}x{height} {how}, one patch needs {patch_size}x{patch_size} (patch_size)"


def _process_image(item, scale, patch_size, stride, downscale_factors, spool):
    """Worker: (path, patch_file, skip_reason) for item (index, path); patch_file is None when it is skipped.

    The patches go to ``spool/<index>.npy`` ([2, N, 1, P, P]: lr, hr) rather than through the pool's result
    pipe: Pool.terminate() can deadlock while a worker is half-way through sending a large result.
    """
    index, path = item
    try:
        img = read_image(path)
    except ImageReadError as err:
        return str(path), None, err.reason
    lr, hr, sizes = image_patches(img, scale, patch_size, stride, downscale_factors)
    if len(lr) == 0:
        return str(path), None, _too_small_reason(sizes, downscale_factors, patch_size)
    patch_file = os.path.join(spool, f"{index:08d}.npy")
    np.save(patch_file, np.stack([lr, hr]))
    return str(path), patch_file, None


def _init_worker(parent=None):
    # Ctrl-C in a terminal reaches the whole process group: only the main process reacts (and stops the pool).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # pool.terminate() must just end the worker
    if parent is None:  # not forked by the main process itself (forkserver)
        return
    # If the main process is killed outright (SIGKILL, OOM), idle forked workers would wait for tasks forever.
    with contextlib.suppress(Exception):
        # ctypes imported here, not at the top: only the path that needs it loads it
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # 1 = PR_SET_PDEATHSIG (Linux)
    if os.getppid() != parent:  # the main process died before prctl took effect
        os._exit(1)


@contextlib.contextmanager
def _signals_deferred():
    """Hold Ctrl-C / SIGTERM during the block, then act on them. Used while MindSpore loads (an import
    interrupted halfway crashes the interpreter at exit) and while the finished files are moved into place."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received, previous = [], {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(signum)
        if callable(handler):
            previous[signum] = handler
            signal.signal(signum, lambda number, frame: received.append(number))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if received:
        previous[received[0]](received[0], None)


def _pool_context():
    # fork is cheapest and safe while MindSpore is not loaded (the workers only run numpy); otherwise fork
    # from a clean server process instead of from a process with MindSpore's runtime in it.
    return multiprocessing.get_context("fork" if "mindspore" not in sys.modules else "forkserver")


def _ordered_results(pool, func, items, window):
    """``pool.imap(func, items)`` with at most ``window`` items in flight: results come in input order (so the
    output does not depend on the number of workers), and workers faster than the writer cannot pile up
    patches in memory."""
    pending = collections.deque()
    for item in items:
        pending.append(pool.apply_async(func, (item,)))
        if len(pending) >= window:
            yield pending.popleft().get()
    while pending:
        yield pending.popleft().get()


def _warn(message):
    if sys.stderr.isatty():
        sys.stderr.write("\r\033[K")  # clear a progress bar drawn on the same line
    print(f"warning: {message}", file=sys.stderr, flush=True)


def _open_writer(file, patch_size):
    with _signals_deferred():  # imported only now: the pool's forked workers stay MindSpore-free
        # imported here, not at the top: the command checks its inputs before MindSpore starts (seconds)
        from mindspore.mindrecord import FileWriter
    writer = FileWriter(str(file), shard_num=1)
    writer.add_schema(_schema(patch_size), _SCHEMA_DESC)
    return writer


class _ChunkedWriter:
    """Buffers patch arrays and hands them to FileWriter.write_raw_data at most ``chunk_rows`` rows at a time.

    The FileWriter is made by ``open_writer()`` at the first flush, so a run without patches never loads MindSpore.
    """

    def __init__(self, open_writer, chunk_rows):
        self.open_writer, self.chunk_rows, self.writer = open_writer, chunk_rows, None
        self.lr, self.hr, self.pending, self.written = [], [], 0, 0

    def add(self, lr, hr):
        self.lr.append(lr)
        self.hr.append(hr)
        self.pending += len(lr)
        if self.pending >= self.chunk_rows:
            self.flush()

    def flush(self):
        if not self.pending:
            return
        if self.writer is None:
            self.writer = self.open_writer()
        lr, hr = np.concatenate(self.lr), np.concatenate(self.hr)
        self.lr, self.hr, self.pending = [], [], 0
        for start in range(0, len(lr), self.chunk_rows):
            rows = [{"lr": lr[i], "hr": hr[i]} for i in range(start, min(start + self.chunk_rows, len(lr)))]
            self.writer.write_raw_data(rows)
            self.written += len(rows)


def _switch_journal(final):
    """The file that exists only while the three files of ``final`` are being replaced (see _switch_in)."""
    return final.with_name(f".{final.name}.switch")


def _switch_in(temp_folder, final):
    """Replace the set ``final``, ``final.db``, ``final.json`` by the complete new set in ``temp_folder``.
    Three renames cannot be one atomic step, so the journal names the new set first: a run killed between the
    renames leaves the journal, readers refuse the mixed set (inspect_mindrecord), and the next build finishes
    the switch from the journal (_finish_switch) before anything else."""
    journal = _switch_journal(final)
    # written in the temporary folder and renamed into place: a run killed before that leaves no journal
    draft = temp_folder / journal.name
    draft.write_text(json.dumps({"from": str(temp_folder)}), encoding="utf-8")
    replace_atomic(draft, journal)
    _finish_switch(final)


def _finish_switch(final):
    """Complete the switch a journal describes (the renames not done yet), then drop the journal and the
    emptied temporary folder. UserError if the process that started it is still at work."""
    journal = _switch_journal(final)
    if not journal.exists():
        return
    meta = _read_sidecar(journal) or {}
    source = Path(meta.get("from", ""))
    if source.name.startswith(TEMP_PREFIX) and source.parent == final.parent and source.is_dir():
        if not temp_dir_is_mine(source) and temp_dir_owner_alive(source):
            raise UserError(f"{final} is being replaced by another create_dataset run right now: wait for it")
        for suffix in (".db", "", ".json"):  # the .db names the data file by basename only
            part = source / f"{final.name}{suffix}"
            if part.exists():
                replace_atomic(part, f"{final}{suffix}")  # flushed to disk, the usual permissions, renamed
    journal.unlink()
    if source.name.startswith(TEMP_PREFIX) and source.parent == final.parent:
        release_temp_dir(source)


def _make_temp_folder(output_folder):
    folder = Path(output_folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UserError(f"output folder {folder} exists and is not a folder") from None
    except OSError as err:
        raise UserError(f"cannot create output folder {folder} ({err.strerror or err})") from None
    if not folder.is_dir():
        raise UserError(f"output folder {folder} exists and is not a folder")
    remove_stale_temp_dirs(folder, TEMP_PREFIX)  # left by a killed run (its lock is free)
    try:
        return make_owned_temp_dir(folder, TEMP_PREFIX)
    except OSError as err:
        raise UserError(f"output folder {folder} is not writable ({err.strerror or err})") from None


def build_dataset(src_folder, output_folder, scale=2, patch_size=33, stride=14, downscale_factors=(1.0,),
                  num_workers=2, chunk_rows=CHUNK_ROWS, show_progress=True, holdout="", config_files=()):
    """Write the MindRecord of patch pairs (see the module docstring); returns the sidecar dict plus
    ``file`` (path of the .mindrecord) and ``seconds``.

    Raises UserError for a missing/empty src_folder, an unwritable output_folder or no usable image; on any
    error (or KeyboardInterrupt) nothing is left in output_folder and an existing output is untouched.
    """
    if not str(src_folder):
        raise UserError("--src_folder is required: the folder of training images")
    if not str(output_folder):
        raise UserError("--output_folder is required: where the MindRecord is written")
    scale, patch_size, stride = int(scale), int(patch_size), int(stride)
    factors = [float(f) for f in downscale_factors]
    if patch_size < 1 or stride < 1 or scale < 1 or not factors or not all(0 < f <= 1 for f in factors):
        raise UserError(f"invalid settings: scale={scale}, patch_size={patch_size}, stride={stride}, "
                        f"downscale_factors={factors}")
    start = time.monotonic()
    paths = list_images(src_folder, key="src_folder")
    held_names = holdout_names(holdout)
    paths, held = split_holdout(paths, held_names, src_folder)
    if held:
        print(f"note: {len(held)} image(s) of holdout_images left out of the training set", file=sys.stderr)
    check_output_folder(output_folder, "output_folder")
    output_folder = Path(output_folder)
    name = dataset_file_name(scale, patch_size, stride)
    final = output_folder / name
    check_outputs_spare_inputs([("output_folder", f"{final}{suffix}") for suffix in ("", ".db", ".json")],
                               [("src_folder", path) for path in paths + held]
                               + [("config_path", path) for path in config_files])
    created_folder = not output_folder.exists()
    temp_folder = _make_temp_folder(output_folder)
    try:
        _finish_switch(final)  # an earlier run killed half-way through replacing the set
    except BaseException:
        release_temp_dir(temp_folder)
        raise
    pool, chunks = None, None
    try:
        workers = max(1, min(int(num_workers), len(paths)))
        context = _pool_context()
        parent = os.getpid() if context.get_start_method() == "fork" else None
        pool = context.Pool(workers, initializer=_init_worker, initargs=(parent,))
        temp_file = temp_folder / name
        spool = temp_folder / "patches"
        spool.mkdir()
        chunks = _ChunkedWriter(functools.partial(_open_writer, temp_file, patch_size), chunk_rows)
        work = functools.partial(_process_image, scale=scale, patch_size=patch_size, stride=stride,
                                 downscale_factors=tuple(factors), spool=str(spool))
        results = _ordered_results(pool, work, enumerate(paths), window=4 * workers + 4)
        if show_progress:
            results = progress(results, total=len(paths), desc=f"create_dataset x{scale}")
        used, skipped = 0, []
        for path, patch_file, reason in results:
            if reason is not None:
                _warn(f"skipped {path}: {reason}")
                skipped.append({"path": path, "reason": reason})
                continue
            pair = np.load(patch_file)
            os.unlink(patch_file)
            chunks.add(pair[0], pair[1])
            used += 1
        chunks.flush()
        pool.close()
        pool.join()
        if used == 0:
            raise UserError(f"no usable images in {src_folder} ({len(skipped)} skipped)")
        chunks.writer.commit()

        from mindspore.mindrecord import FileReader

        reader = FileReader(str(temp_file), num_consumer=1)
        try:
            stored = reader.len()
        finally:
            reader.close()
        if stored != chunks.written:  # FileWriter drops rows that do not fit the schema (with a log warning)
            raise RuntimeError(f"MindRecord holds {stored} rows, {chunks.written} were written")

        meta = {"scale": scale, "patch_size": patch_size, "stride": stride, "downscale_factors": factors,
                "holdout_images": sorted(held_names),
                "count": stored, "images": used, "skipped": skipped,
                "src_folder": os.path.abspath(src_folder), "columns": list(MINDRECORD_COLUMNS)}
        with atomic_output(Path(f"{temp_file}.json")) as sidecar:
            sidecar.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        with _signals_deferred():  # the three files are replaced together (a Ctrl-C here acts after them)
            _switch_in(temp_folder, final)
    except BaseException as err:
        if pool is not None:
            pool.terminate()
            pool.join()
        release_temp_dir(temp_folder)
        if created_folder:
            with contextlib.suppress(OSError):
                output_folder.rmdir()  # only if empty: the folder this run made for its output
        # MindSpore's FileWriter reports a full disk as a RuntimeError ("Failed to write data ...")
        if isinstance(err, (OSError, RuntimeError)) and (getattr(err, "errno", None) in DISK_FULL
                                                         or free_bytes(output_folder) < (1 << 20)):
            written = 2 * 4 * patch_size * patch_size * (chunks.written + chunks.pending) if chunks else 0
            raise disk_full(final, "MindRecord", f"more than {written}" if written else None) from None
        raise
    finally:
        release_temp_dir(temp_folder)
    return dict(meta, file=str(final), seconds=time.monotonic() - start)


def _summary_line(result):
    seconds = max(result["seconds"], 1e-9)
    return (f"wrote {result['count']} patches from {result['images']} images ({len(result['skipped'])} skipped) "
            f"to {result['file']} in {result['seconds']:.1f} s "
            f"({result['images'] / seconds:.1f} images/s, {result['count'] / seconds:.0f} patches/s)")


def _read_sidecar(path):
    try:
        with open(path, encoding="utf-8") as handle:
            meta = json.load(handle)
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def inspect_mindrecord(path):
    """Check a patch MindRecord made by this script: ``path`` is the .mindrecord or a folder holding exactly one.

    Returns ``{"file", "patch_size", "count", "meta"}``; meta is the .mindrecord.json sidecar (None when absent,
    unreadable or describing another file). Raises UserError naming the file on anything else.
    """
    path = Path(path)
    if path.is_dir():
        found = sorted(p for p in path.glob("*.mindrecord") if p.is_file())
        if not found:
            raise UserError(f"no .mindrecord file in {path} (make one with src/create_dataset.py)")
        if len(found) > 1:
            raise UserError(f"{path} holds {len(found)} .mindrecord files ({', '.join(p.name for p in found)}); "
                            f"pass one of them as the file")
        path = found[0]
    elif not path.exists():
        raise UserError(f"MindRecord {path} does not exist")
    elif path.name.endswith(".mindrecord.db"):
        raise UserError(f"{path} is a MindRecord index; pass the data file {path.name[:-3]}")
    if _switch_journal(path).exists():
        raise UserError(f"{path} is being replaced, or a create_dataset run was killed while replacing it (its "
                        f"{_switch_journal(path).name} exists): wait for it, or run src/create_dataset.py again")
    index = Path(f"{path}.db")
    if not index.is_file():
        raise UserError(f"{path}: its index file {index.name} is missing (keep the .mindrecord and .db together)")

    # imported here, not at the top: the command checks its inputs before MindSpore starts (seconds)
    from mindspore.mindrecord import FileReader

    try:
        reader = FileReader(str(path), num_consumer=1)
    except Exception as err:  # noqa: BLE001 - MindRecord raises RuntimeError/MRMError subclasses with long texts
        reason = " ".join(str(err).split())[:200]
        raise UserError(f"{path}: not a readable MindRecord ({reason})") from None
    try:
        schema = reader.schema()
        count = int(reader.len())
    finally:
        reader.close()

    def column(name):
        entry = schema.get(name) or {}
        return entry.get("type"), list(entry.get("shape") or [])

    (lr_type, lr_shape), (hr_type, hr_shape) = column("lr"), column("hr")
    ok = (sorted(schema) == sorted(MINDRECORD_COLUMNS) and lr_type == hr_type == "float32"
          and lr_shape == hr_shape and len(lr_shape) == 3 and lr_shape[0] == 1
          and lr_shape[1] == lr_shape[2] and lr_shape[1] > 0)
    if not ok:
        described = ", ".join(f"{k} {v.get('type')} {v.get('shape', [])}" for k, v in sorted(schema.items()))
        raise UserError(f"{path}: MindRecord columns are [{described}], expected lr and hr float32 [1, P, P] "
                        f"(made by src/create_dataset.py)")
    patch_size = int(lr_shape[1])
    meta = _read_sidecar(f"{path}.json")
    if meta is not None and (meta.get("count") != count or meta.get("patch_size") != patch_size):
        meta = None  # a stale sidecar of another run
    return {"file": str(path), "patch_size": patch_size, "count": count, "meta": meta}
