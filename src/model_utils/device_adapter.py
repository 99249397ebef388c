"""Device and rank information from the environment (DEVICE_ID, RANK_SIZE, RANK_ID, JOB_ID), as in the
MindSpore model zoo, but pure Python: nothing here imports MindSpore."""
import os

from src.utils.errors import UserError


def _env_int(name, default):
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        return int(text)
    except ValueError:
        raise UserError(f"environment variable {name} must be an integer, got {text!r}") from None


def get_device_id():
    """Index of this process's device (DEVICE_ID, default 0)."""
    return _env_int("DEVICE_ID", 0)


def get_local_rank():
    """This process's index among the processes of its node: LOCAL_RANK if the launcher sets it, else
    DEVICE_ID (msrun sets it to the local rank; rank tables to the card, at most 8 a node)."""
    if os.environ.get("LOCAL_RANK", "").strip():
        return _env_int("LOCAL_RANK", 0)
    return get_device_id() % min(max(get_device_num(), 1), 8)


def get_device_num():
    """Number of devices in the job (RANK_SIZE, default 1)."""
    return _env_int("RANK_SIZE", 1)


def get_rank_id():
    """Global rank of this process (RANK_ID, default 0)."""
    return _env_int("RANK_ID", 0)


def get_job_id():
    """Job identifier (JOB_ID, default "Local")."""
    return os.environ.get("JOB_ID", "").strip() or "Local"
