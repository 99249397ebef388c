"""ModelArts support: where the data comes from and where the outputs go.

Everything is a no-op unless ``cfg.enable_modelarts`` is true. Then ``data_url``, ``train_url`` and
``checkpoint_url`` are either
- local paths, as today's ModelArts training jobs pass them (the job downloads its inputs to a local folder and
  uploads its output folder itself): they are used directly, nothing is copied: ``data_url`` becomes
  ``data_path`` and ``train_url`` becomes ``output_path``;
- or ``obs://bucket/path`` URLs, copied from OBS before the run and back after it: with moxing when the
  ModelArts SDK is installed (older ModelArts images), else with the OBS SDK (``pip install esdk-obs-python``,
  ``from obs import ObsClient``) configured by the environment variables OBS_ENDPOINT (e.g.
  https://obs.cn-north-4.myhuaweicloud.com), OBS_ACCESS_KEY_ID, OBS_SECRET_ACCESS_KEY and optionally
  OBS_SECURITY_TOKEN (temporary credentials), OBS_SIGNATURE (obs, v2 or v4) and OBS_PATH_STYLE=true;
  with neither, a one-line error says what to install.
Neither moxing, the OBS SDK nor MindSpore is imported unless needed.
"""
import functools
import os
import stat
import tempfile
import time

from src.model_utils.device_adapter import get_device_num, get_job_id, get_local_rank
from src.utils.errors import UserError
from src.utils.file_io import write_text_atomic

_sync_count = 0
OBS_PREFIX = "obs://"
OBS_SETTINGS = ("OBS_ENDPOINT", "OBS_ACCESS_KEY_ID", "OBS_SECRET_ACCESS_KEY")
NO_CLIENT = ("obs:// URLs need the 'moxing' package (ModelArts images ship it) or the OBS SDK: pip install "
             "esdk-obs-python, with OBS_ENDPOINT, OBS_ACCESS_KEY_ID and OBS_SECRET_ACCESS_KEY set")


def is_obs(url):
    return str(url).startswith(OBS_PREFIX)


def _moxing():
    """The moxing module, or None when the ModelArts SDK is not installed. UserError if a module of that name is
    installed but is not the SDK (no moxing.file.copy_parallel): a package of the same name exists on the public
    package index, and copying data "with" it would run its code."""
    try:
        import moxing  # pylint: disable=import-outside-toplevel
    except ImportError:
        return None
    if not callable(getattr(getattr(moxing, "file", None), "copy_parallel", None)):
        raise UserError(f"enable_modelarts=True: the installed 'moxing' ({getattr(moxing, '__file__', None)}) is not "
                        "the ModelArts SDK (it has no moxing.file.copy_parallel); remove it and use a ModelArts image")
    return moxing


def _split(url):
    """obs://bucket/key/prefix -> (bucket, 'key/prefix')."""
    bucket, _, key = url[len(OBS_PREFIX):].partition("/")
    if not bucket:
        raise UserError(f"{url!r} names no bucket: OBS URLs look like obs://bucket/folder")
    return bucket, key.strip("/")


class ObsCopier:
    """Copies folders between OBS and local disk with esdk-obs-python's ObsClient."""

    def __init__(self, client):
        self.client = client

    @classmethod
    def from_environment(cls):
        try:
            from obs import ObsClient  # pylint: disable=import-outside-toplevel
        except ImportError:
            return None
        missing = [name for name in OBS_SETTINGS if not os.environ.get(name, "").strip()]
        if missing:
            raise UserError(f"obs:// URLs without moxing are copied with esdk-obs-python, which needs the "
                            f"environment variable(s) {', '.join(missing)} (endpoint and access keys)")
        options = {"access_key_id": os.environ["OBS_ACCESS_KEY_ID"],
                   "secret_access_key": os.environ["OBS_SECRET_ACCESS_KEY"], "server": os.environ["OBS_ENDPOINT"]}
        if os.environ.get("OBS_SECURITY_TOKEN"):
            options["security_token"] = os.environ["OBS_SECURITY_TOKEN"]
        if os.environ.get("OBS_SIGNATURE"):
            options["signature"] = os.environ["OBS_SIGNATURE"]
        if os.environ.get("OBS_PATH_STYLE", "").lower() in ("1", "true", "yes"):
            options["path_style"] = True
        return cls(ObsClient(**options))

    def _check(self, response, what):
        if response.status >= 300:
            raise UserError(f"OBS {what} failed: {response.status} {response.errorCode or ''} "
                            f"{response.errorMessage or ''}".strip())
        return response

    def _keys(self, bucket, prefix):
        keys, marker = [], None
        while True:
            response = self._check(self.client.listObjects(bucket, prefix=prefix, marker=marker, max_keys=1000),
                                   f"listing obs://{bucket}/{prefix}")
            keys += [item.key for item in response.body.contents]
            if not response.body.is_truncated:
                return keys
            marker = response.body.next_marker or keys[-1]

    def download(self, url, folder):
        """Every object under the prefix ``url`` into ``folder`` (relative names kept)."""
        bucket, prefix = _split(url)
        base = f"{prefix}/" if prefix else ""
        keys = [key for key in self._keys(bucket, base) if not key.endswith("/")]
        if not keys:
            raise UserError(f"{url} holds no object: check the bucket and the folder")
        for key in keys:
            parts = key[len(base):].split("/")
            if key.startswith("/") or ".." in parts or "\\" in key:
                raise UserError(f"obs://{bucket}/{key}: an object key with '..', a leading '/' or '\\' would be "
                                f"written outside {folder}; refused (nothing of {url} is trusted further)")
            target = os.path.join(folder, *parts)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            self._check(self.client.getObject(bucket, key, downloadPath=target), f"download of obs://{bucket}/{key}")
        return len(keys)

    def upload(self, folder, url):
        """Every file under ``folder`` to the prefix ``url``."""
        bucket, prefix = _split(url)
        count = 0
        for root, _, files in os.walk(folder):
            for name in sorted(files):
                path = os.path.join(root, name)
                key = "/".join(filter(None, [prefix, os.path.relpath(path, folder).replace(os.sep, "/")]))
                self._check(self.client.putFile(bucket, key, path), f"upload of {path} to obs://{bucket}/{key}")
                count += 1
        return count


def _copy(from_path, to_path):
    """One copy between OBS and local disk, with moxing if installed, else esdk-obs-python."""
    mox = _moxing()
    if mox is not None:
        mox.file.copy_parallel(from_path, to_path)
        return
    copier = ObsCopier.from_environment()
    if copier is None:
        raise UserError(NO_CLIENT)
    if is_obs(from_path):
        copier.download(from_path, to_path)
    else:
        copier.upload(from_path, to_path)


def _launch_token():
    """Shared by the processes one launcher started on this node, new with every launch: their parent's pid and
    start time (msrun, mpirun's daemon or the launcher script), so that no lock of an earlier run counts."""
    parent = os.getppid()
    try:
        with open(f"/proc/{parent}/stat", encoding="utf-8") as handle:
            started = handle.read().rsplit(")", 1)[1].split()[19]  # field 22: start time
    except (OSError, IndexError):
        started = "0"
    return f"{get_job_id()}_{parent}_{started}"


def private_lock_dir():
    """A folder of this user's only (mode 0700, checked): lock files at a fixed name in a world-writable /tmp
    could be planted or removed by another user."""
    folder = os.path.join(tempfile.gettempdir(), f"srcnn-sync-{os.getuid()}")
    try:
        os.mkdir(folder, 0o700)
    except FileExistsError:
        pass
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077:
        raise UserError(f"{folder} (the lock folder of ModelArts copies) is not a private folder of this user "
                        "(mode 0700): remove it")
    return folder


def sync_data(from_path, to_path, lock_dir=None):
    """Copy ``from_path`` to ``to_path`` (one of them an obs:// URL).

    With several devices, only local rank 0 of each node copies; the others wait for the lock file it writes
    when done, as in the model zoo. The lock is named after this launch (``_launch_token``) in a private
    folder, so a lock left by an earlier run is never taken for this one's. Calls must happen in the same order
    on every rank (each call gets the next lock file)."""
    global _sync_count  # pylint: disable=global-statement
    start = time.time()
    if get_device_num() <= 1:
        _copy(from_path, to_path)
    else:
        lock = os.path.join(lock_dir or private_lock_dir(), f"{_launch_token()}_{_sync_count}.lock")
        _sync_count += 1
        if get_local_rank() == 0:
            _copy(from_path, to_path)
            write_text_atomic(lock, "", "copy lock")
        else:
            while not os.path.exists(lock):
                time.sleep(1)
    print(f"synced {from_path} -> {to_path} in {time.time() - start:.1f} s", flush=True)


def _folder_of(path):
    """``path`` itself if it names a folder, else its folder (data_path may name a .mindrecord file)."""
    return (os.path.dirname(path) or ".") if os.path.splitext(os.path.basename(path))[1] else path


def _same_path(a, b):
    return os.path.abspath(a) == os.path.abspath(b)


def _inside(path, folder):
    path, folder = os.path.abspath(path), os.path.abspath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def modelarts_paths(cfg):
    """``cfg`` with local data_url / train_url in place of data_path / output_path (today's jobs pass local
    paths: used directly, no copy). Unchanged off ModelArts or for obs:// URLs."""
    if not getattr(cfg, "enable_modelarts", False):
        return cfg
    changes = {}
    data_url, train_url = getattr(cfg, "data_url", ""), getattr(cfg, "train_url", "")
    if data_url and not is_obs(data_url) and "data_path" in cfg.to_dict():
        if not cfg.data_path:
            changes["data_path"] = data_url
        elif not _inside(cfg.data_path, data_url):
            raise UserError(f"data_url {data_url} is a local folder, used directly, but data_path {cfg.data_path} "
                            "is not inside it: leave data_path empty or name a file inside data_url")
    if train_url and not is_obs(train_url) and "output_path" in cfg.to_dict():
        if not (cfg.is_default("output_path") or _same_path(cfg.output_path, train_url)):
            raise UserError(f"train_url {train_url} is a local folder, used as output_path, but output_path "
                            f"{cfg.output_path} (from {cfg.source('output_path')}) names another: give one of them, "
                            "or the same folder to both")
        changes["output_path"] = train_url  # the job uploads this folder itself
    return cfg.replace(**changes) if changes else cfg


def modelarts_pre_process(cfg):
    """Before work: obs:// data_url -> data_path and checkpoint_url -> folder of checkpoint_path (else of
    pre_trained_path); create output_path."""
    if not getattr(cfg, "enable_modelarts", False):
        return
    if is_obs(getattr(cfg, "data_url", "")):
        if not cfg.data_path:
            raise UserError("enable_modelarts=True with an obs:// data_url needs data_path, the local folder to "
                            "copy the data to (e.g. --data_path=/cache/data)")
        sync_data(cfg.data_url, _folder_of(cfg.data_path))
    if is_obs(getattr(cfg, "checkpoint_url", "")):
        target = getattr(cfg, "checkpoint_path", "") or getattr(cfg, "pre_trained_path", "")
        if not target:
            raise UserError("checkpoint_url is set but checkpoint_path is empty; set it to the local checkpoint "
                            "file (e.g. --checkpoint_path=/cache/checkpoint/srcnn.ckpt)")
        sync_data(cfg.checkpoint_url, os.path.dirname(target) or ".")
    os.makedirs(cfg.output_path, exist_ok=True)


def modelarts_post_process(cfg):
    """After work: output_path -> an obs:// train_url (a local train_url is output_path itself)."""
    if getattr(cfg, "enable_modelarts", False) and is_obs(getattr(cfg, "train_url", "")):
        sync_data(cfg.output_path, cfg.train_url)


def check_obs_client(cfg):
    """Stop at once, before any work, when obs:// URLs are given but no client can copy them."""
    if not getattr(cfg, "enable_modelarts", False):
        return
    mox = _moxing()  # an installed 'moxing' that is not the ModelArts SDK stops here, whatever the URLs
    urls = [getattr(cfg, key, "") for key in ("data_url", "train_url", "checkpoint_url")]
    if any(is_obs(url) for url in urls) and mox is None and ObsCopier.from_environment() is None:
        raise UserError(NO_CLIENT)


def moxing_wrapper(cfg, pre_process=None, post_process=None):
    """Decorator running ``modelarts_pre_process`` (then ``pre_process()``) before the function and
    ``post_process()`` (then ``modelarts_post_process``) after it; the hooks run only on ModelArts."""
    def decorator(run):
        @functools.wraps(run)
        def wrapped(*args, **kwargs):
            on_modelarts = getattr(cfg, "enable_modelarts", False)
            if os.environ.get("MS_ROLE") == "MS_SCHED":
                # msrun's scheduler runs the script too, but trains nothing: the workers copy
                return run(*args, **kwargs)
            check_obs_client(cfg)
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
