"""preprocess.py and postprocess.py: the two ends of offline (Ascend 310) inference, framework-free (no MindSpore).

Preprocessing writes the protocol's bicubic LR (``prepare_pair``) of every ground truth, padded by edge
replication at the bottom and right to the model's static H x W, as float32 [1, 1, H, W] files
(``<output_path>/00_data/<name>.bin``, atomically as one folder) plus ``meta.json`` with each image's real
size. The harness (or the reference runner) writes ``<name>_0.bin`` per input; postprocessing scores them
with the shared loop (``src.protocol.scoring.evaluate``), the outputs read back by the .bin backend
(src/infer/bin_backend.py), so the table and JSON are eval.py's.
"""
import json
import os
from pathlib import Path

import numpy as np

from src.infer.bin_backend import BinOutputs
from src.protocol.degradation import prepare_pair
from src.protocol.image_io import list_images
from src.protocol.naming import bin_name, image_names
from src.protocol.report import report, write_json
from src.protocol.scoring import evaluate, iter_images, no_usable_images
from src.utils.checks import check_output_file, check_output_folder, check_outputs_spare_inputs
from src.utils.errors import UserError
from src.utils.file_io import (
    OWNER_LOCK,
    make_owned_temp_dir,
    release_temp_dir,
    remove_stale_temp_dirs,
    replace_atomic,
)

DATA_DIR = "00_data"
META_FILE = "meta.json"


def _require(value, key, what):
    if not value:
        raise UserError(f"{key} is empty: give --{key}={what}")
    return value


def run_preprocess(cfg):
    """Write ``<output_path>/00_data/<name>.bin`` (float32 [1,1,H,W]) for every image of ``data_path``, and
    ``<output_path>/meta.json``. image_height = image_width = 0 pads to the largest image."""
    data_path = _require(cfg.data_path, "data_path", "FOLDER of ground-truth images")
    output_path = Path(_require(cfg.output_path, "output_path", "FOLDER"))
    scale = int(cfg.scale)
    names = image_names(data_path)
    check_output_folder(output_path, "output_path")  # before the images are processed
    inputs = [("data_path", path) for path in names.values()] + [("config_path", f) for f in cfg.config_files()]
    check_outputs_spare_inputs([("output_path", output_path / META_FILE)], inputs,
                               folders=[("output_path", output_path / DATA_DIR)])
    skipped = []
    pairs = [(name, prepare_pair(img, scale)[1]) for name, img in iter_images(data_path, scale, skipped)]
    if not pairs:
        raise no_usable_images(data_path, skipped)
    files = {}
    for name, _ in pairs:
        other = files.setdefault(bin_name(name), name)
        if other != name:
            raise UserError(f"images {other} and {name} of {data_path} both flatten to {bin_name(name)}: "
                            "rename one of them")

    height, width = int(cfg.image_height), int(cfg.image_width)
    if height == 0 and width == 0:
        height = max(lr.shape[0] for _, lr in pairs)
        width = max(lr.shape[1] for _, lr in pairs)
        print(f"no image_height/image_width given: padding to the largest image, {height}x{width} (HxW); "
              f"the model must be exported with --image_height={height} --image_width={width}")
    for name, lr_up in pairs:
        h, w = lr_up.shape
        if h > height or w > width:
            raise UserError(f"image {names[name]} is {h}x{w} (HxW, after modcrop to a multiple of {scale}), "
                            f"larger than the model input {height}x{width}: export the model with a larger "
                            f"--image_height/--image_width and preprocess with the same size")

    try:
        output_path.mkdir(parents=True, exist_ok=True)
        remove_stale_temp_dirs(output_path, f".{DATA_DIR}.")  # a killed run's (its lock is free)
        tmp_dir = make_owned_temp_dir(output_path, f".{DATA_DIR}.")
    except OSError as err:
        raise UserError(f"cannot write to output_path {output_path} ({err.strerror or err})") from None
    entries = []
    try:
        for name, lr_up in pairs:
            h, w = lr_up.shape
            padded = np.pad(lr_up, ((0, height - h), (0, width - w)), mode="edge").astype(np.float32)
            padded.reshape(1, 1, height, width).tofile(tmp_dir / bin_name(name))
            entries.append({"name": name, "file": bin_name(name), "height": h, "width": w,
                            "source": str(Path(names[name]).resolve())})
        os.chmod(tmp_dir, 0o755)  # mkdtemp makes it private
        os.remove(tmp_dir / OWNER_LOCK)  # not part of the result (the lock itself is held until release)
        replace_atomic(tmp_dir, output_path / DATA_DIR)
    except OSError as err:
        raise UserError(f"cannot write {output_path / DATA_DIR} ({err.strerror or err})") from None
    finally:
        release_temp_dir(tmp_dir)
    meta = {"scale": scale, "height": height, "width": width, "data_path": str(Path(data_path).resolve()),
            "images": entries, "skipped": skipped}
    write_json(meta, output_path / META_FILE)
    print(f"wrote {len(entries)} inputs of shape [1,1,{height},{width}] (float32) to {output_path / DATA_DIR} "
          f"and {output_path / META_FILE}", flush=True)
    return meta


def read_meta(preprocess_path):
    """meta.json of a preprocess output folder (or the file itself); UserError naming what is wrong."""
    if not preprocess_path:
        raise UserError("preprocess_path is empty: give --preprocess_path=FOLDER written by preprocess.py "
                        f"(the one holding {META_FILE})")
    path = Path(preprocess_path)
    path = path / META_FILE if path.is_dir() else path
    try:
        with open(path, encoding="utf-8") as handle:
            meta = json.load(handle)
    except FileNotFoundError:
        raise UserError(f"preprocess_path {path} does not exist: give --preprocess_path=the output_path of "
                        f"preprocess.py (the folder holding {META_FILE})") from None
    except (OSError, ValueError) as err:
        raise UserError(f"{path} is not a readable preprocess {META_FILE} ({err})") from None
    keys = ("scale", "height", "width", "images")
    if not isinstance(meta, dict) or any(k not in meta for k in keys):
        raise UserError(f"{path} is not a preprocess {META_FILE}: expected the keys {', '.join(keys)}")
    return path, meta


def run_postprocess(cfg):
    """Score the harness outputs ``<result_path>/<stem>_0.bin`` against the ground truth of ``data_path``."""
    meta_path, meta = read_meta(cfg.preprocess_path)
    data_path = _require(cfg.data_path, "data_path", "FOLDER of ground-truth images (as given to preprocess.py)")
    result_path = Path(_require(cfg.result_path, "result_path", "FOLDER of model outputs (<name>_0.bin)"))
    if not result_path.is_dir():
        raise UserError(f"result_path {result_path} does not exist or is not a folder")
    images = list_images(data_path, key="data_path")
    check_output_file(cfg.output_json, "output_json")
    inputs = [("data_path", path) for path in images] + [("preprocess_path", meta_path)]
    inputs += [("result_path", path) for path in result_path.glob("*.bin")]
    check_outputs_spare_inputs([("output_json", cfg.output_json)],
                               inputs + [("config_path", f) for f in cfg.config_files()])
    scale = int(cfg.scale)
    if int(meta["scale"]) != scale:
        if not cfg.given("scale"):  # take the preprocessed one
            scale = int(meta["scale"])
        else:
            raise UserError(f"{meta_path} was written for x{meta['scale']} but scale={scale}: use the same "
                            "scale for preprocess.py and postprocess.py")
    skipped = []
    result = evaluate(BinOutputs(result_path, meta_path, meta, data_path),
                      iter_images(data_path, scale, skipped, paths=images), scale, source=data_path,
                      skipped=skipped)
    report(result, cfg.output_json, result_path=str(result_path.resolve()))
    return result
