"""ModelArts support: copy data from OBS before a run and outputs back after it, with moxing.

Everything is a no-op unless ``cfg.enable_modelarts`` is true. moxing is imported only when needed and
MindSpore is never imported here.
"""
import functools
import os
import time

from src.errors import UserError
from src.model_utils.device_adapter import get_device_id, get_device_num, get_job_id

_sync_count = 0


def _moxing():
    try:
        import moxing  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise UserError("enable_modelarts=True needs the 'moxing' package (ModelArts images ship it); "
                        "it is not installed") from None
    if not callable(getattr(getattr(moxing, "file", None), "copy_parallel", None)):
        # a package of the same name exists on the public index: copying "data" with it would run its code
        raise UserError(f"enable_modelarts=True: the installed 'moxing' ({getattr(moxing, '__file__', None)}) is not "
                        "the ModelArts SDK (it has no moxing.file.copy_parallel); remove it and use a ModelArts image")
    return moxing


def _local_side(from_path, to_path):
    """The local folder of a copy (the marker files of sync_data live there, not at a fixed /tmp path)."""
    local = to_path if not str(to_path).startswith(("obs://", "s3://")) else from_path
    return local if os.path.isdir(local) or not os.path.splitext(local)[1] else os.path.dirname(local) or "."


def sync_data(from_path, to_path, lock_dir=None):
    """Copy ``from_path`` to ``to_path`` (OBS or local) with moxing.file.copy_parallel.

    With several devices, only the first device of each node (at most 8 per node) copies; the others wait
    for the marker file it writes when done, as in the model zoo. The marker lives in ``lock_dir``, by default
    the local side of the copy (shared by the node's devices, private to the job), never a predictable shared
    path such as /tmp. Calls must happen in the same order on every rank (each call gets the next marker)."""
    global _sync_count  # pylint: disable=global-statement
    mox = _moxing()
    device_num = get_device_num()
    lock_dir = lock_dir or _local_side(from_path, to_path)
    if device_num > 1:
        os.makedirs(lock_dir, exist_ok=True)
    lock = os.path.join(lock_dir, f"srcnn_sync_{get_job_id()}_{_sync_count}.lock")
    _sync_count += 1
    if device_num <= 1:
        mox.file.copy_parallel(from_path, to_path)
    elif get_device_id() % min(device_num, 8) == 0 and not os.path.exists(lock):
        mox.file.copy_parallel(from_path, to_path)
        with open(lock, "w", encoding="utf-8"):
            pass
    else:
        while not os.path.exists(lock):
            time.sleep(1)
    print(f"synced {from_path} -> {to_path}", flush=True)


def _folder_of(path):
    """``path`` itself if it names a folder, else its folder (data_path may name a .mindrecord file)."""
    return (os.path.dirname(path) or ".") if os.path.splitext(os.path.basename(path))[1] else path


def modelarts_pre_process(cfg):
    """Before work: data_url -> data_path and checkpoint_url -> folder of checkpoint_path (else of
    pre_trained_path); create output_path."""
    if not getattr(cfg, "enable_modelarts", False):
        return
    _moxing()
    if getattr(cfg, "data_url", ""):
        if not cfg.data_path:
            raise UserError("enable_modelarts=True with data_url needs data_path, the local folder to copy the "
                            "data to (e.g. --data_path=/cache/data)")
        sync_data(cfg.data_url, _folder_of(cfg.data_path))
    if getattr(cfg, "checkpoint_url", ""):
        target = getattr(cfg, "checkpoint_path", "") or getattr(cfg, "pre_trained_path", "")
        if not target:
            raise UserError("checkpoint_url is set but checkpoint_path is empty; set it to the local checkpoint "
                            "file (e.g. --checkpoint_path=/cache/checkpoint/srcnn.ckpt)")
        sync_data(cfg.checkpoint_url, os.path.dirname(target) or ".")
    os.makedirs(cfg.output_path, exist_ok=True)


def modelarts_post_process(cfg):
    """After work: output_path -> train_url."""
    if getattr(cfg, "enable_modelarts", False) and getattr(cfg, "train_url", ""):
        sync_data(cfg.output_path, cfg.train_url)


def moxing_wrapper(cfg, pre_process=None, post_process=None):
    """Decorator running ``modelarts_pre_process`` (then ``pre_process()``) before the function and
    ``post_process()`` (then ``modelarts_post_process``) after it; the hooks run only on ModelArts."""
    def decorator(run):
        @functools.wraps(run)
        def wrapped(*args, **kwargs):
            on_modelarts = getattr(cfg, "enable_modelarts", False)
            modelarts_pre_process(cfg)
            if on_modelarts and pre_process:
                pre_process()
            result = run(*args, **kwargs)
            if on_modelarts and post_process:
                post_process()
            modelarts_post_process(cfg)
            return result
        return wrapped
    return decorator
