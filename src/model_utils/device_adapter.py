"""Device and rank information from the environment (DEVICE_ID, RANK_SIZE, RANK_ID, JOB_ID), as in the
MindSpore model zoo, but pure Python: nothing here imports MindSpore."""
import os

from src.errors import UserError


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


def get_device_num():
    """Number of devices in the job (RANK_SIZE, default 1)."""
    return _env_int("RANK_SIZE", 1)


def get_rank_id():
    """Global rank of this process (RANK_ID, default 0)."""
    return _env_int("RANK_ID", 0)


def get_job_id():
    """Job identifier (JOB_ID, default "Local")."""
    return os.environ.get("JOB_ID", "").strip() or "Local"
