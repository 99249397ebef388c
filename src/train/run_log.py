"""train_log.jsonl, one JSON record a line: {"step", "event": "start", "host", "commit", "time"} when a run
(or a resume) starts, {"step", "loss", "lr", "samples_per_s", "ms_per_step"} every log_interval steps, with
"val_psnr" and "val_bicubic_psnr" added (or alone with "step") every val_interval steps."""
import json
import math
import os
import time

from src.utils.file_io import read_jsonl, write_text_atomic


def append_record(log_path, record):
    with open(log_path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def start_record(step, host, commit):
    return {"step": step, "event": "start", "host": host, "commit": commit,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def truncate_log(log_path, step):
    """Drop the records past ``step`` (a resume from there writes them again)."""
    if not os.path.exists(log_path):
        return
    kept = [r for r in read_jsonl(log_path) if r.get("step", 0) <= step]
    write_text_atomic(log_path, "".join(json.dumps(r) + "\n" for r in kept), "training log")


def logged_best(log_path):
    """Best validation PSNR already in the (truncated) log: a resumed run keeps srcnn-best.ckpt honest."""
    if not os.path.exists(log_path):
        return -math.inf
    return max((r.get("val_psnr", -math.inf) for r in read_jsonl(log_path)), default=-math.inf)
