"""What a run is: the settings that decide its result (RECIPE_KEYS), the data it trains on, and run_config.yaml,
the file that records both so that a resume continues the same run (numpy-free, MindSpore-free)."""
import hashlib
import json
import os
import re

import yaml

from src.utils.errors import UserError
from src.utils.file_io import write_text_atomic

# the settings that decide where a run ends: a resume must use the values the run started with
RECIPE_KEYS = ("arch", "n1", "n2", "padding", "scale", "lr", "lr_schedule", "min_lr", "batch_size", "epoch_size",
               "train_steps", "augment", "amp_level", "loss_scale", "seed", "pre_trained_path", "pre_trained_widen",
               "holdout_images")

# the create_dataset sidecar keys that say what the patches are (not where they lie)
_FINGERPRINT_KEYS = ("count", "images", "scale", "patch_size", "stride", "downscale_factors", "holdout_images",
                     "skipped")

_FRESH = "start fresh with --resume=false and another --output_path"


def data_fingerprint(data):
    """What the training data ``data`` (a PatchBatches) is, independent of where it lies: a digest of its
    sidecar's counts and settings (src/create_dataset.py writes one), else the MindRecord's size and
    modification time."""
    meta = data.meta
    if meta:
        text = json.dumps({k: meta.get(k) for k in _FINGERPRINT_KEYS}, sort_keys=True)
        return "sidecar " + hashlib.sha256(text.encode()).hexdigest()[:16]
    stat = os.stat(data.file)
    return f"size {stat.st_size} mtime {stat.st_mtime_ns}"


def check_recipe(cfg, run_config_path, data):
    """A resumed run must continue the run it started: the recipe and the data saved in ``run_config_path``
    (UserError naming the first difference)."""

    try:
        with open(run_config_path, encoding="utf-8") as handle:
            text = handle.read()
        saved = yaml.safe_load(text)
    except FileNotFoundError:
        raise UserError(f"resume=true but {run_config_path} is missing: the run's settings are unknown, "
                        f"so its checkpoints cannot be continued safely; {_FRESH}") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        reason = " ".join(str(getattr(err, "strerror", None) or err).split())[:120]
        raise UserError(f"resume=true but {run_config_path} is unreadable ({reason}); {_FRESH}") from None
    if not isinstance(saved, dict):
        raise UserError(f"resume=true but {run_config_path} does not hold the run's settings; {_FRESH}")
    recorded = re.search(r"^# data_fingerprint: (.+)$", text, re.M)
    if recorded and recorded.group(1).strip() != data_fingerprint(data):
        raise UserError(f"{run_config_path}: this run was trained on other data ({recorded.group(1).strip()})"
                        f" than data_path {cfg.data_path} ({data_fingerprint(data)}); resume with the "
                        f"run's data, or {_FRESH}")
    for key in RECIPE_KEYS:
        if key in saved and saved[key] != getattr(cfg, key):
            raise UserError(f"{run_config_path}: this run started with {key}={saved[key]!r}, not "
                            f"{getattr(cfg, key)!r} (from {cfg.source(key)}); resume with the run's "
                            f"settings: --config_path={run_config_path} --resume=true")


def write_run_config(cfg, run_config_path, data, world, host):
    """Every setting of the run as YAML that --config_path reads back (the resume command)."""

    values = {k: v for k, v in cfg.to_dict().items() if k != "resume"}
    # the patches' own geometry (create_dataset keys), not the defaults this process happened to have
    meta = data.meta or {}
    values.update({k: meta[k] for k in ("patch_size", "stride") if k in meta})
    header = (f"# SRCNN training run: python train.py --config_path={run_config_path} [--resume=true]\n"
              f"# data: {data.file} ({data.count} patches of {data.patch_size}x{data.patch_size}); "
              f"{world} device(s); started on {host}\n"
              f"# data_fingerprint: {data_fingerprint(data)}\n")
    write_text_atomic(run_config_path, header + yaml.safe_dump(values, sort_keys=False), "run settings")
