"""The repository's rule for bad input, checked entry point by entry point as real subprocesses.

Bad input gets a one-line ``error: ...`` on stderr naming the file or key, what was found and what was
expected, and exit code 2: never a traceback, never a half-written output. ``test_bad_input`` is one table
(``CASES``) of such runs; the tests after it are the non-error halves of the same rules: bad files among good
ones are skipped and listed, every pixel format is read, a progress bar is drawn on terminals only, and
``eval.py --save_images`` writes colour results and comparison images.

Inputs are built once per module (Set5 crops, a small checkpoint, MindRecords, static exports); outputs go to
each test's own ``tmp_path``.
"""
import hashlib
import json
import os
import pty
import re
import shutil
import subprocess
import sys
import threading
from collections import namedtuple
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 120
PY = sys.executable
# launcher environment a developer may have set: the tests choose their own
LAUNCH_VARS = ("TRAIN_ARGS", "DRY_RUN", "WORKER_NUM", "LOCAL_WORKER_NUM", "NODE_RANK", "MASTER_ADDR", "MASTER_PORT",
               "LAUNCHER", "MPIRUN_ARGS", "RANK_TABLE_FILE", "PYTHON", "LOG_DIR")
SMALL_NET = ["--n1=16", "--n2=8", "--batch_size=8", "--train_steps=2", "--log_interval=1"]


def run(args, env=None, stderr=subprocess.PIPE):
    """An entry point as a real process in the repository: ``.py`` with this interpreter, ``.sh`` with bash."""
    args = [str(a) for a in args]
    args = [PY] + args if args[0].endswith(".py") else ["bash"] + args if args[0].endswith(".sh") else args
    env = dict({k: v for k, v in os.environ.items() if k not in LAUNCH_VARS}, **(env or {}))
    return subprocess.run(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True,
                          timeout=TIMEOUT, check=False)


def ok(proc):
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


# ---------------------------------------------------------------------------------------------------------
# inputs, built once

def _save_crop(img, path, box):
    Image.fromarray(img).crop(box).save(path)


def _write_bad_files(folder, good_png):
    """The four kinds of unreadable file: empty, truncated, text, random bytes."""
    (folder / "zero.png").write_bytes(b"")
    (folder / "truncated.png").write_bytes(good_png[:len(good_png) // 3])
    (folder / "text.jpg").write_text("hello, not an image\n")
    (folder / "noise.bmp").write_bytes(np.random.default_rng(0).integers(0, 256, 700, np.uint8).tobytes())
    return ["noise.bmp", "text.jpg", "truncated.png", "zero.png"]


def _pixel_formats(rgb, folder):
    """One file per pixel format from the same 8-bit RGB crop: {file name: what read_image should return}."""
    folder.mkdir()
    gray = rgb[..., 1].copy()
    files = {}
    Image.fromarray(rgb).save(folder / "rgb8.png")
    files["rgb8.png"] = rgb
    cv2.imwrite(str(folder / "rgb16.png"), rgb[..., ::-1].astype(np.uint16) * 257)  # 16-bit colour (BGR)
    files["rgb16.png"] = rgb
    Image.fromarray(gray).save(folder / "gray8.png")
    files["gray8.png"] = gray
    Image.fromarray(gray.astype(np.uint16) * 257).save(folder / "gray16.png")  # mode I;16
    files["gray16.png"] = gray
    palette = Image.fromarray(rgb).quantize(colors=64)
    palette.save(folder / "palette.png")
    files["palette.png"] = np.asarray(palette.convert("RGB"))
    rgba = np.dstack([rgb, np.full(gray.shape, 200, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(folder / "rgba.png")
    files["rgba.png"] = rgb
    Image.fromarray(rgb).convert("CMYK").save(folder / "cmyk.tif")  # lossless CMYK, K = 0
    files["cmyk.tif"] = rgb
    return files


BUILD_CHECKPOINTS = r"""
import sys
from pathlib import Path

import numpy as np

import src  # noqa: F401
from src.model_utils.device import init_context

init_context("CPU")
import mindspore as ms
from mindspore.mindrecord import FileWriter

from src.model.checkpoint import save_checkpoint
from src.model.network import build_network

from tests.conftest import save_near_identity_checkpoint

work = Path(sys.argv[1])
save_near_identity_checkpoint(work / "srcnn.ckpt")
save_checkpoint(build_network("9-5-5", 8, 4, "replicate", training=False), str(work / "srcnn955.ckpt"), {"scale": 2})
save_checkpoint([{"name": "fc.weight", "data": ms.Tensor(np.ones((4, 3), np.float32))}], str(work / "other_net.ckpt"))
data = (work / "srcnn.ckpt").read_bytes()
(work / "truncated.ckpt").write_bytes(data[:len(data) // 2])

(work / "mr_columns").mkdir()
writer = FileWriter(str(work / "mr_columns" / "other.mindrecord"), shard_num=1)
writer.add_schema({"data": {"type": "float32", "shape": [1, 8, 8]}, "label": {"type": "int32"}}, "other")
writer.write_raw_data([{"data": np.zeros((1, 8, 8), np.float32), "label": i} for i in range(20)])
writer.commit()
"""


def _parallel(*commands):
    procs = [subprocess.Popen([str(a) for a in c], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for c in commands]
    for command, proc in zip(commands, procs):
        out, err = proc.communicate(timeout=TIMEOUT)
        assert proc.returncode == 0, f"{command}: {out[-1000:]}\n{err[-2000:]}"


@pytest.fixture(scope="module")
def inputs(datasets_dir, tmp_path_factory):
    """Every input of the table, by name (the ``{name}`` placeholders of CASES)."""
    work = tmp_path_factory.mktemp("bad_inputs")
    set5 = datasets_dir / "Set5"
    baby, bird, head = (np.asarray(Image.open(set5 / f"{n}.png").convert("RGB")) for n in ("baby", "bird", "head"))

    crops = work / "crops"  # three 96x96 ground truths
    crops.mkdir()
    for name, img in (("baby", baby), ("bird", bird), ("head", head)):
        _save_crop(img, crops / f"{name}.png", (40, 40, 136, 136))
    good_png = (crops / "baby.png").read_bytes()

    empty = work / "empty"  # a folder without images
    empty.mkdir()
    (empty / "readme.txt").write_text("no images here\n")
    corrupt = work / "corrupt"
    corrupt.mkdir()
    _write_bad_files(corrupt, good_png)

    too_small = work / "too_small"  # under the x2 protocol's 15 pixels (2 x 2 shaved + 11 SSIM window)
    too_small.mkdir()
    _save_crop(baby, too_small / "a.png", (0, 0, 12, 12))
    _save_crop(bird, too_small / "b.png", (0, 0, 40, 14))
    field = work / "field16"  # enough for the protocol (15), not for 9-5-5's receptive field (17)
    field.mkdir()
    _save_crop(baby, field / "a.png", (100, 100, 116, 116))
    _save_crop(head, field / "b.png", (100, 100, 116, 116))
    small_patches = work / "small_for_patch"  # smaller than a 33x33 patch
    small_patches.mkdir()
    _save_crop(baby, small_patches / "a.png", (0, 0, 30, 30))
    _save_crop(bird, small_patches / "b.png", (0, 0, 64, 20))

    formats = _pixel_formats(baby[200:264, 200:264], work / "formats")

    file = work / "a_file.txt"  # a regular file where a folder is expected
    file.write_text("a regular file\n")
    fake_onnx = work / "fake.onnx"
    fake_onnx.write_text("this is not an ONNX model\n")
    fake_mindir = work / "fake.mindir"
    fake_mindir.write_bytes(b"\x00\x01 not a MINDIR model")
    config_unknown = work / "unknown_key.yaml"
    config_unknown.write_text("batch_size: 8\nlearning_rate: 0.01\n")
    config_type = work / "wrong_type.yaml"
    config_type.write_text("batch_size: sixteen\n")

    create = ["src/create_dataset.py", f"--src_folder={crops}", "--scale=2", "--stride=10", "--num_workers=1"]
    _parallel([PY, "-c", BUILD_CHECKPOINTS, work],
              [PY, *create, f"--output_folder={work / 'mr21'}", "--patch_size=21"],
              [PY, *create, f"--output_folder={work / 'mr11'}", "--patch_size=11"])
    nodb = work / "mr_no_db"  # the data file without its .db index
    nodb.mkdir()
    shutil.copy(work / "mr21" / "srcnn_x2_p21_s10.mindrecord", nodb)
    ckpt = work / "srcnn.ckpt"
    export = ["export.py", f"--checkpoint_path={ckpt}", "--image_height=64", "--image_width=64"]
    _parallel([PY, *export, "--file_format=ONNX", f"--file_name={work / 'static64'}"],
              [PY, *export, "--file_format=MINDIR", f"--file_name={work / 'static64'}"])

    return {"work": work, "crops": crops, "empty": empty, "corrupt": corrupt, "too_small": too_small,
            "field16": field, "small_for_patch": small_patches, "formats": work / "formats",
            "format_pixels": formats, "file": file, "missing": work / "missing", "ckpt": ckpt,
            "ckpt955": work / "srcnn955.ckpt", "ckpt_other": work / "other_net.ckpt",
            "ckpt_truncated": work / "truncated.ckpt", "mr": work / "mr21", "mr11": work / "mr11",
            "mr_columns": work / "mr_columns", "mr_no_db": nodb, "onnx64": work / "static64.onnx",
            "mindir64": work / "static64.mindir", "fake_onnx": fake_onnx, "fake_mindir": fake_mindir,
            "config_unknown": config_unknown, "config_type": config_type, "good_png": good_png}


# ---------------------------------------------------------------------------------------------------------
# the table

# id; command (entry point + arguments with {placeholders}: the inputs above, {out} = a fresh folder of the
# test, {prev} = a previous complete output in it); expected exit code; regex the last stderr line must match
# (after "error: "); paths that must not exist afterwards; paths that must be unchanged; regexes of warning
# lines that must precede the error.
Case = namedtuple("Case", "id cmd code regex absent keep warnings env", defaults=((), (), (), {}))
CD = "src/create_dataset.py"
EVAL = ["eval.py", "--checkpoint_path={ckpt}", "--output_json={out}/r.json"]
TRAIN = ["train.py", "--data_path={mr}", "--output_path={out}/run", *SMALL_NET]
SKIPPED = r"has no usable images: all {} were skipped \(unreadable or too small, see the warnings above\)"

CASES = [
    # ---- create_dataset.py
    Case("create_dataset: missing folder", [CD, "--src_folder={missing}", "--output_folder={out}/d"], 2,
         r"src_folder \S+/missing does not exist$", ["{out}/d"]),
    Case("create_dataset: empty folder", [CD, "--src_folder={empty}", "--output_folder={out}/d"], 2,
         r"src_folder \S+/empty has no images \(\.png, \.jpg", ["{out}/d"]),
    Case("create_dataset: only corrupt/truncated/empty/non-image files",
         [CD, "--src_folder={corrupt}", "--output_folder={out}/d"], 2,
         r"no usable images in \S+/corrupt \(4 skipped\)$", ["{out}/d"],
         warnings=[r"warning: skipped \S+/zero\.png: empty file", r"warning: skipped \S+/truncated\.png: ",
                   r"warning: skipped \S+/text\.jpg: ", r"warning: skipped \S+/noise\.bmp: "]),
    Case("create_dataset: images smaller than a patch",
         [CD, "--src_folder={small_for_patch}", "--output_folder={out}/d", "--patch_size=33"], 2,
         r"no usable images in \S+/small_for_patch \(2 skipped\)$", ["{out}/d"],
         warnings=[r"warning: skipped \S+/a\.png: too small: 30x30 .*33x33", r"warning: skipped \S+/b\.png: "]),
    Case("create_dataset: a failed run keeps the previous output",
         [CD, "--src_folder={corrupt}", "--output_folder={prev}", "--patch_size=21", "--stride=10"], 2,
         r"no usable images in \S+/corrupt \(4 skipped\)$", keep=["{prev}"]),
    Case("create_dataset: scale 5", [CD, "--src_folder={crops}", "--output_folder={out}/d", "--scale=5"], 2,
         r"config key 'scale' must be one of 2, 3, 4, got 5 \(from --scale=5\)$", ["{out}/d"]),
    Case("create_dataset: output folder under a regular file",
         [CD, "--src_folder={crops}", "--output_folder={file}/d"], 2,
         r"output_folder \S+/a_file\.txt/d cannot be created: \S+/a_file\.txt is a file, not a folder$",
         keep=["{file}"]),
    # ---- eval.py
    Case("eval: missing folder", [*EVAL, "--data_path={missing}"], 2, r"data_path \S+/missing does not exist$",
         ["{out}/r.json"]),
    Case("eval: empty folder", [*EVAL, "--data_path={empty}"], 2, r"data_path \S+/empty has no images \(",
         ["{out}/r.json"]),
    Case("eval: only corrupt/truncated/empty/non-image files", [*EVAL, "--data_path={corrupt}"], 2,
         r"data_path \S+/corrupt " + SKIPPED.format(4), ["{out}/r.json"],
         warnings=[r"warning: skipped \S+/zero\.png: not a readable image \(empty file\)",
                   r"warning: skipped \S+/truncated\.png: not a readable image \(",
                   r"warning: skipped \S+/text\.jpg: not a readable image \(unrecognised image format\)"]),
    Case("eval: images under the protocol's minimum", [*EVAL, "--data_path={too_small}"], 2,
         r"data_path \S+/too_small " + SKIPPED.format(2), ["{out}/r.json"],
         warnings=[r"skipped \S+/a\.png: 12x12 is too small for x2 \(needs at least 15 pixels per side\)",
                   r"skipped \S+/b\.png: 40x14 is too small for x2 \(needs at least 15 pixels per side\)"]),
    Case("eval: images under the network's receptive field",
         ["eval.py", "--checkpoint_path={ckpt955}", "--output_json={out}/r.json", "--data_path={field16}"], 2,
         r"data_path \S+/field16 " + SKIPPED.format(2), ["{out}/r.json"],
         warnings=[r"skipped \S+/a\.png: 16x16 is too small for x2 \(needs at least 17 pixels per side: "
                   r"the receptive field of the 9-5-5 network\)"]),
    Case("eval: scale 5", [*EVAL, "--data_path={crops}", "--scale=5"], 2,
         r"config key 'scale' must be one of 2, 3, 4, got 5", ["{out}/r.json"]),
    Case("eval: unknown config key", [*EVAL, "--data_path={crops}", "--tile=64"], 2,
         r"unknown config key 'tile' \(from --tile=64\); did you mean 'tile_size'\?$", ["{out}/r.json"]),
    Case("eval: wrong value type", [*EVAL, "--data_path={crops}", "--tile_size=big"], 2,
         r"config key 'tile_size' expects an int, got 'big' \(from --tile_size=big\)$", ["{out}/r.json"]),
    Case("eval: missing checkpoint",
         ["eval.py", "--data_path={crops}", "--checkpoint_path={missing}.ckpt", "--output_json={out}/r.json"], 2,
         r"checkpoint_path \S+/missing\.ckpt does not exist$", ["{out}/r.json"]),
    Case("eval: truncated checkpoint",
         ["eval.py", "--data_path={crops}", "--checkpoint_path={ckpt_truncated}", "--output_json={out}/r.json"],
         2, r"checkpoint \S+/truncated\.ckpt is not a readable MindSpore checkpoint \(", ["{out}/r.json"]),
    Case("eval: checkpoint of another network",
         ["eval.py", "--data_path={crops}", "--checkpoint_path={ckpt_other}", "--output_json={out}/r.json"], 2,
         r"\S+/other_net\.ckpt is not an SRCNN checkpoint: missing conv1\.weight", ["{out}/r.json"]),
    Case("eval: output_json under a regular file", [*EVAL[:2], "--data_path={crops}", "--output_json={file}/r.json"],
         2, r"output_json \S+/a_file\.txt/r\.json cannot be created: \S+/a_file\.txt is a file, not a folder$",
         keep=["{file}"]),
    Case("eval: output_json is a folder", [*EVAL[:2], "--data_path={crops}", "--output_json={crops}"], 2,
         r"output_json \S+/crops is a folder, expected a file name$", keep=["{crops}"]),
    Case("eval: save_images under a regular file", [*EVAL, "--data_path={crops}", "--save_images={file}/img"], 2,
         r"save_images \S+/a_file\.txt/img cannot be created: \S+/a_file\.txt is a file, not a folder$",
         ["{out}/r.json"], keep=["{file}"]),
    # ---- train.py
    Case("train: valid padding on patches smaller than the network's border",
         ["train.py", "--data_path={mr11}", "--output_path={out}/run", "--padding=valid", *SMALL_NET], 2,
         r"patch_size 11 of \S+/srcnn_x2_p11_s10\.mindrecord is too small for padding=valid with arch 9-1-5: "
         r"it must exceed 12$", ["{out}/run"]),
    Case("train: lr 0", [*TRAIN, "--lr=0"], 2, r"config key 'lr' must be > 0, got 0\.0 \(from --lr=0\)$",
         ["{out}/run"]),
    Case("train: negative lr", [*TRAIN, "--lr=-0.001"], 2, r"config key 'lr' must be > 0, got -0\.001",
         ["{out}/run"]),
    Case("train: batch_size 0", [*TRAIN, "--batch_size=0"], 2, r"config key 'batch_size' must be > 0, got 0",
         ["{out}/run"]),
    Case("train: negative batch_size", [*TRAIN, "--batch_size=-8"], 2,
         r"config key 'batch_size' must be > 0, got -8", ["{out}/run"]),
    Case("train: negative train_steps", [*TRAIN, "--train_steps=-1"], 2,
         r"config key 'train_steps' must be >= 0, got -1", ["{out}/run"]),
    Case("train: epoch_size 0", [*TRAIN, "--epoch_size=0"], 2, r"config key 'epoch_size' must be > 0, got 0",
         ["{out}/run"]),
    Case("train: batch larger than the data", [*TRAIN, "--batch_size=100000"], 2,
         r"\S+/srcnn_x2_p21_s10\.mindrecord has 192 patches, fewer than one global batch "
         r"\(batch_size=100000 x 1 device\(s\)\)$", ["{out}/run"]),
    Case("train: unknown key in a config file", [*TRAIN, "--config_path={config_unknown}"], 2,
         r"unknown config key 'learning_rate' \(from \S+/unknown_key\.yaml\)", ["{out}/run"]),
    Case("train: wrong type in a config file", [*TRAIN, "--config_path={config_type}"], 2,
         r"config key 'batch_size' expects an int, got 'sixteen' \(from \S+/wrong_type\.yaml\)$", ["{out}/run"]),
    Case("train: pre-trained checkpoint of other widths", [*TRAIN, "--pre_trained_path={ckpt}", "--n1=32"], 2,
         r"\S+/srcnn\.ckpt: conv1\.weight has shape \(16, 1, 9, 9\), the network \(arch=9-1-5, n1=32, n2=8\) "
         r"expects \(32, 1, 9, 9\)$", ["{out}/run"]),
    Case("train: truncated pre-trained checkpoint", [*TRAIN, "--pre_trained_path={ckpt_truncated}"], 2,
         r"checkpoint \S+/truncated\.ckpt is not a readable MindSpore checkpoint", ["{out}/run"]),
    Case("train: missing pre-trained checkpoint", [*TRAIN, "--pre_trained_path={missing}.ckpt"], 2,
         r"pre_trained_path \S+/missing\.ckpt does not exist", ["{out}/run"]),
    Case("train: missing MindRecord", [*TRAIN, "--data_path={missing}.mindrecord"], 2,
         r"MindRecord \S+/missing\.mindrecord does not exist$", ["{out}/run"]),
    Case("train: MindRecord with other columns", [*TRAIN, "--data_path={mr_columns}"], 2,
         r"\S+/other\.mindrecord: MindRecord columns are \[data float32 \[1, 8, 8\], label int32 \[\]\], "
         r"expected lr and hr float32 \[1, P, P\]", ["{out}/run"]),
    Case("train: MindRecord without its .db index", [*TRAIN, "--data_path={mr_no_db}"], 2,
         r"\S+/srcnn_x2_p21_s10\.mindrecord: its index file srcnn_x2_p21_s10\.mindrecord\.db is missing",
         ["{out}/run"]),
    Case("train: output_path under a regular file",
         ["train.py", "--data_path={mr}", "--output_path={file}/run", *SMALL_NET], 2,
         r"output_path \S+/a_file\.txt/run cannot be created: \S+/a_file\.txt is a file, not a folder$",
         keep=["{file}"]),
    Case("train: missing validation folder", [*TRAIN, "--validation_path={missing}"], 2,
         r"validation_path \S+/missing does not exist$", ["{out}/run"]),
    Case("train: validation folder of unreadable files", [*TRAIN, "--validation_path={corrupt}"], 2,
         r"validation_path \S+/corrupt " + SKIPPED.format(4), ["{out}/run"]),
    # ---- deployment: export.py, eval_onnx.py, the MINDIR reference runner, test.py, preprocess/postprocess
    Case("export: model file under a regular file",
         ["export.py", "--checkpoint_path={ckpt}", "--file_format=ONNX", "--file_name={file}/m"], 2,
         r"file_name \S+/a_file\.txt/m\.onnx cannot be created: \S+/a_file\.txt is a file, not a folder$",
         keep=["{file}"]),
    Case("eval_onnx: a file that is not a model",
         ["eval_onnx.py", "--data_path={crops}", "--onnx_path={fake_onnx}", "--output_json={out}/r.json"], 2,
         r"\S+/fake\.onnx is not an ONNX model onnxruntime can run \(.*INVALID_PROTOBUF", ["{out}/r.json"]),
    Case("eval_onnx: static 64x64 model on 96x96 images",
         ["eval_onnx.py", "--data_path={crops}", "--onnx_path={onnx64}", "--output_json={out}/r.json"], 2,
         r"image baby of \S+/crops: the ONNX model \S+/static64\.onnx has a fixed input size of 64x64 \(HxW\) "
         r"but the image is 96x96; export a dynamic model", ["{out}/r.json"]),
    Case("eval_onnx: missing model",
         ["eval_onnx.py", "--data_path={crops}", "--onnx_path={missing}.onnx", "--output_json={out}/r.json"], 2,
         r"ONNX model \S+/missing\.onnx does not exist$", ["{out}/r.json"]),
    Case("run_infer_reference: static 64x64 MINDIR on 96x96 images",
         ["scripts/run_infer_reference.py", "--mindir_path={mindir64}", "--data_path={crops}",
          "--output_json={out}/r.json"], 2,
         r"image baby of \S+/crops: the MINDIR model \S+/static64\.mindir has a fixed input size of 64x64 "
         r"\(HxW\) but the image is 96x96", ["{out}/r.json"]),
    Case("run_infer_reference: a file that is not a MINDIR",
         ["scripts/run_infer_reference.py", "--mindir_path={fake_mindir}", "--input_path={crops}",
          "--result_path={out}/res"], 2, r"cannot load model \S+/fake\.mindir: not a MINDIR model", ["{out}/res"]),
    Case("test.py: only unreadable files",
         ["test.py", "--input_path={corrupt}", "--output_path={out}/sr", "--checkpoint_path={ckpt}"], 2,
         r"no image of \S+/corrupt could be processed \(4 skipped\)$", ["{out}/sr"]),
    Case("test.py: output_json under a regular file (no image written first)",
         ["test.py", "--input_path={crops}", "--output_path={out}/sr", "--checkpoint_path={ckpt}",
          "--mode=degrade", "--output_json={file}/r.json"], 2,
         r"output_json \S+/a_file\.txt/r\.json cannot be created: \S+/a_file\.txt is a file", ["{out}/sr"]),
    Case("preprocess: output_path under a regular file",
         ["preprocess.py", "--data_path={crops}", "--output_path={file}/pre", "--image_height=96",
          "--image_width=96"], 2, r"output_path \S+/a_file\.txt/pre cannot be created", keep=["{file}"]),
    Case("postprocess: missing preprocess folder",
         ["postprocess.py", "--data_path={crops}", "--result_path={crops}", "--preprocess_path={missing}",
          "--output_json={out}/r.json"], 2,
         r"preprocess_path \S+/missing does not exist: give --preprocess_path=", ["{out}/r.json"]),
    # ---- launchers
    Case("launcher: run_distribute_train_cpu.sh with 0 workers",
         ["scripts/run_distribute_train_cpu.sh", "0", "{mr}", "{out}/run"], 2,
         r"WORKER_NUM must be >= 1, got 0 \(usage: run_distribute_train_cpu\.sh WORKER_NUM ", ["{out}/run"]),
    Case("launcher: run_eval_gpu.sh on device 9",
         ["scripts/run_eval_gpu.sh", "9", "{crops}", "{ckpt}"], 2,
         r"DEVICE_ID must be an integer from 0 to 7, got '9' \(usage: bash run_eval_gpu\.sh ", ["{out}/logs"],
         env={"LOG_DIR": "{out}/logs"}),
    Case("launcher: run_single_train_cpu.sh on a missing MindRecord",
         ["scripts/run_single_train_cpu.sh", "{missing}", "{out}/run"], 2,
         r"DATA_PATH '\S+/missing' does not exist \(usage: run_single_train_cpu\.sh ", ["{out}/run"]),
]


def _fill(text, values):
    return re.sub(r"\{(\w+)\}", lambda m: str(values[m.group(1)]), text)


def _snapshot(path):
    """Digests of a file, or of every file under a folder (None if it does not exist)."""
    path = Path(path)
    if path.is_file():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    if not path.exists():
        return None
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(path.rglob("*"))}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case, inputs, tmp_path):
    values = dict(inputs, out=tmp_path / "out", prev=tmp_path / "prev")
    if any("{prev}" in arg for arg in case.cmd):  # a previous complete output to keep
        shutil.copytree(inputs["mr"], values["prev"])
    kept = {path: _snapshot(_fill(path, values)) for path in case.keep}
    proc = run([_fill(arg, values) for arg in case.cmd], env={k: _fill(v, values) for k, v in case.env.items()})

    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == case.code, f"exit {proc.returncode}\n{proc.stdout[-1500:]}\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr, proc.stderr
    assert lines and lines[-1].startswith("error: "), proc.stderr
    assert sum(line.startswith("error:") for line in lines) == 1, proc.stderr
    assert re.search(case.regex, lines[-1][len("error: "):]), f"{lines[-1]!r} does not match {case.regex!r}"
    for pattern in case.warnings:
        assert any(re.search(pattern, line) for line in lines[:-1]), f"no warning {pattern!r} in\n{proc.stderr}"
    for path in case.absent:
        assert not Path(_fill(path, values)).exists(), f"{_fill(path, values)} was (partly) written"
    for path, before in kept.items():
        assert _snapshot(_fill(path, values)) == before, f"{_fill(path, values)} was changed"
    leftovers = [p for p in tmp_path.rglob("*") if p.name.startswith((".tmp", ".export_")) or ".tmp" in p.name]
    assert not leftovers, leftovers


@pytest.mark.parametrize("args", [
    ["eval.py", "--data_path={missing}", "--checkpoint_path={ckpt}"],
    ["eval.py", "--data_path={crops}", "--checkpoint_path={ckpt}", "--output_json={crops}"],
    ["eval.py", "--data_path={crops}", "--checkpoint_path={ckpt}", "--output_json={ckpt}"],
    ["test.py", "--input_path={missing}", "--output_path={out}", "--checkpoint_path={ckpt}"],
], ids=["eval data_path", "eval output_json folder", "eval output_json is the checkpoint", "test.py input_path"])
def test_a_refused_path_costs_no_mindspore_start_up(args, inputs, tmp_path):
    """Paths and outputs are checked before MindSpore loads (-X importtime lists every module imported)."""
    values = dict(inputs, out=tmp_path / "out")
    proc = subprocess.run([PY, "-X", "importtime", *[_fill(arg, values) for arg in args]], cwd=REPO,
                          capture_output=True, text=True, timeout=TIMEOUT)
    imported = [line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")]
    assert proc.returncode == 2 and proc.stderr.splitlines()[-1].startswith("error: "), proc.stderr[-2000:]
    assert "src.protocol.scoring" in imported  # the listing works
    assert not [name for name in imported if name.split(".")[0] == "mindspore"]


# ---------------------------------------------------------------------------------------------------------
# bad files among good ones: skipped, listed, and the rest is used

def _mixed_folder(inputs, folder, tiny_box):
    """The three crops plus the four unreadable files and one image too small; returns the bad names."""
    shutil.copytree(inputs["crops"], folder)
    bad = _write_bad_files(folder, inputs["good_png"])
    Image.fromarray(np.zeros((14, 14, 3), np.uint8)).crop(tiny_box).save(folder / "tiny.png")
    return sorted(bad + ["tiny.png"])


def test_create_dataset_skips_bad_files_lists_them_and_succeeds(inputs, tmp_path):
    src_dir = tmp_path / "src"
    bad = _mixed_folder(inputs, src_dir, (0, 0, 14, 14))
    out = tmp_path / "out"
    proc = ok(run([CD, f"--src_folder={src_dir}", f"--output_folder={out}", "--scale=2", "--patch_size=21",
                   "--stride=10", "--num_workers=1"]))
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning: skipped ")]
    assert [line.split(":")[1].strip().split()[-1] for line in warnings] == [str(src_dir / n) for n in bad]
    assert "too small: 14x14" in warnings[bad.index("tiny.png")]
    meta = json.loads((out / "srcnn_x2_p21_s10.mindrecord.json").read_text())
    assert [entry["path"] for entry in meta["skipped"]] == [str(src_dir / n) for n in bad]
    assert all(entry["reason"] for entry in meta["skipped"])
    assert meta["images"] == 3 and meta["count"] == 192  # the same patches as the crops alone
    assert proc.stdout.startswith("wrote 192 patches from 3 images (5 skipped)")


def test_eval_reports_bad_files_and_scores_the_rest(inputs, tmp_path):
    data = tmp_path / "mixed"
    bad = _mixed_folder(inputs, data, (0, 0, 12, 12))
    out = tmp_path / "r.json"
    proc = ok(run(["eval.py", f"--data_path={data}", f"--checkpoint_path={inputs['ckpt']}",
                   f"--output_json={out}"]))
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning: skipped ")]
    assert len(warnings) == 5, proc.stderr
    assert any("tiny.png: 12x12 is too small for x2" in line for line in warnings)
    result = json.loads(out.read_text())
    assert [image["name"] for image in result["images"]] == ["baby", "bird", "head"]
    assert result["skipped"] == [str(data / n) for n in bad]
    assert "skipped 5 unreadable or too small image(s)" in proc.stdout
    assert proc.stdout.strip().splitlines()[-1].startswith("result {'PSNR': ")


# ---------------------------------------------------------------------------------------------------------
# every pixel format is read, and --save_images

@pytest.fixture(scope="module")
def formats_run(inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("formats_run")
    proc = ok(run(["eval.py", f"--data_path={inputs['formats']}", f"--checkpoint_path={inputs['ckpt']}",
                   f"--output_json={out / 'r.json'}", f"--save_images={out / 'images'}"]))
    return proc, json.loads((out / "r.json").read_text()), out / "images"


def test_eval_reads_16bit_palette_rgba_cmyk_and_gray_images(inputs, formats_run):
    proc, result, _ = formats_run
    assert "warning" not in proc.stderr, proc.stderr
    assert result["skipped"] == []
    scores = {image["name"]: image for image in result["images"]}
    assert sorted(scores) == sorted(Path(name).stem for name in inputs["format_pixels"])
    # read correctly: lossless variants of the same pixels score exactly like the 8-bit originals
    for name in ("rgb16", "rgba", "cmyk"):
        assert scores[name]["bicubic_psnr"] == scores["rgb8"]["bicubic_psnr"], name
        assert scores[name]["psnr"] == scores["rgb8"]["psnr"], name
    assert scores["gray16"]["psnr"] == scores["gray8"]["psnr"]
    assert scores["gray8"]["bicubic_psnr"] != scores["rgb8"]["bicubic_psnr"]  # gray is its own Y, not RGB's
    assert abs(scores["palette"]["bicubic_psnr"] - scores["rgb8"]["bicubic_psnr"]) < 3  # 64 colours


def test_eval_save_images_writes_colour_results_and_comparisons(inputs, formats_run):
    from src.protocol.comparison import LABEL_HEIGHT, PAD, comparison_size
    from src.protocol.degradation import modcrop, prepare_pair
    from src.protocol.image_io import read_image
    from src.protocol.matlab_functions import rgb2ycbcr
    from src.protocol.metrics import psnr

    _, result, folder = formats_run
    names = [image["name"] for image in result["images"]]
    scores = {image["name"]: image for image in result["images"]}
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [f"{n}_srcnn_x2.png" for n in names] + [f"{n}_compare_x2.png" for n in names])
    for name, pixels in inputs["format_pixels"].items():
        stem = Path(name).stem
        sr = read_image(folder / f"{stem}_srcnn_x2.png")
        gt = modcrop(pixels, 2)
        assert sr.shape == gt.shape, name  # colour stays colour (SR Y + bicubic Cb/Cr), gray stays gray
        if gt.ndim == 3:
            # the colour comes from the ground truth's (degraded) Cb/Cr: close to it, unlike a gray image
            chroma = np.abs(rgb2ycbcr(sr)[..., 1:].astype(int) - rgb2ycbcr(gt)[..., 1:].astype(int))
            assert chroma.mean() < 4, name
        else:  # a gray result is exactly the scored Y
            assert psnr(sr, prepare_pair(gt, 2)[0], shave_border=2) == pytest.approx(scores[stem]["psnr"])
        compare = read_image(folder / f"{stem}_compare_x2.png")
        width, height = comparison_size(gt.shape[1], gt.shape[0], 3)  # bicubic | SRCNN | ground truth
        assert compare.shape == (height, width, 3), name
        # the middle panel is the saved result
        column = (width - 4 * PAD) // 3
        panel = compare[PAD + LABEL_HEIGHT:, 2 * PAD + column:][:gt.shape[0], :gt.shape[1]]
        assert np.array_equal(panel, sr if sr.ndim == 3 else np.repeat(sr[..., None], 3, axis=2)), name


# ---------------------------------------------------------------------------------------------------------
# progress bar: on a terminal only

def _run_with_tty_stderr(args):
    """Run with stderr on a pseudo-terminal; returns (exit code, stdout, everything written to the terminal)."""
    master, slave = pty.openpty()
    chunks = []

    def drain():
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: the last writer closed the terminal
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_VARS}
    try:
        proc = subprocess.run([PY, *map(str, args)], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=slave,
                              text=True, timeout=TIMEOUT, check=False)
    finally:
        os.close(slave)
    reader.join(timeout=10)
    os.close(master)
    return proc.returncode, proc.stdout, b"".join(chunks).decode(errors="replace")


def test_eval_progress_bar_on_a_terminal_only(inputs):
    args = ["eval.py", f"--data_path={inputs['crops']}", f"--checkpoint_path={inputs['ckpt']}"]
    code, stdout, terminal = _run_with_tty_stderr(args)
    assert code == 0, stdout + terminal
    assert re.search(r"crops x2: +0%\|[^|]*\| 0/3 \S+ ETA ", terminal), terminal  # tqdm's bar, redrawn
    assert re.search(r"crops x2: 100%\|█+\| 3/3 [\d.]+it/s ETA ", terminal), terminal
    assert "\r" in terminal and "Traceback" not in terminal
    assert "it/s" not in stdout  # the table stays clean

    piped = ok(run(args))
    assert "it/s" not in piped.stderr and "ETA" not in piped.stderr and "\r" not in piped.stderr
    assert piped.stdout == stdout
