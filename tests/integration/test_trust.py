"""Issue 12: no ordinary slip loses a file, mixes two runs, or prints a wrong number as if it were right.

Every check is a real entry point in a real process on real files: two train.py processes on one folder, outputs
pointed at inputs (directly and through symlinks), checkpoints holding NaN or contradicting a flag, resumes on other
data, flags of another script, a full tmpfs, Ctrl-C and SIGTERM at random moments, SIGKILL of create_dataset.py.
Inputs are built once per module (Set5 crops, MindRecords, small checkpoints); outputs go to each test's tmp_path.
"""
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import save_set5_crops

REPO = Path(__file__).resolve().parents[2]
PY = sys.executable
TIMEOUT = 240
TINY = ["--n1=8", "--n2=4", "--batch_size=8", "--log_interval=1"]


def run(args, env=None, timeout=TIMEOUT):
    args = [str(a) for a in args]
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([PY, *args], cwd=REPO, env=full_env, capture_output=True, text=True, timeout=timeout,
                          check=False)


def error_line(proc, code=2):
    """The one ``error:`` line of a failed run (asserting the exit code, no traceback, a single error line)."""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == code, f"exit {proc.returncode}\n{proc.stdout[-1500:]}\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr and "Fatal Python error" not in proc.stderr, proc.stderr
    assert lines and lines[-1].startswith("error: "), proc.stderr
    assert sum(line.startswith("error:") for line in lines) == 1, proc.stderr
    return lines[-1][len("error: "):]


def ok(proc):
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr
    return proc


def digest(path):
    path = Path(path)
    if path.is_dir():
        return {str(p.relative_to(path)): digest(p) for p in sorted(path.rglob("*")) if p.is_file()}
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


BUILD = r"""
import sys
from pathlib import Path

import numpy as np

import src  # noqa: F401
from src.model_utils.device import init_context

init_context("CPU")
import mindspore as ms

from src.model.checkpoint import PARAM_NAMES, save_checkpoint
from src.model.network import build_network
from tests.conftest import save_near_identity_checkpoint

work = Path(sys.argv[1])
save_near_identity_checkpoint(work / "ok.ckpt")
weights = {k: v.asnumpy() for k, v in ms.load_checkpoint(str(work / "ok.ckpt")).items() if k in PARAM_NAMES}


def write(name, meta, change=None):
    values = dict(weights)
    if change:
        values = change(values)
    entries = [{"name": k, "data": ms.Tensor(values[k].astype(np.float32))} for k in PARAM_NAMES]
    save_checkpoint(entries, str(work / name), meta)


record = {"arch": "9-1-5", "n1": 16, "n2": 8, "padding": "replicate"}
write("x3.ckpt", dict(record, scale=3))
write("zeros.ckpt", dict(record, scale=2, padding="zeros"))
write("badmeta.ckpt", dict(record, scale="x3"))
write("liar.ckpt", dict(record, scale=2, arch="9-5-5"))


def nan(values):
    w = values["conv2.weight"].copy()
    w.flat[3] = np.nan
    return dict(values, **{"conv2.weight": w})


def huge(values):  # finite weights whose outputs overflow float32
    return {k: (np.sign(v) + (v == 0)) * np.float32(1e30) for k, v in values.items()}


write("nan.ckpt", dict(record, scale=2), nan)
write("huge.ckpt", dict(record, scale=2), huge)
"""


@pytest.fixture(scope="module")
def inputs(datasets_dir, tmp_path_factory):
    work = tmp_path_factory.mktemp("trust")
    crops = save_set5_crops(datasets_dir, work / "crops", ("baby", "bird", "head"), (40, 40, 136, 136))
    create = ["src/create_dataset.py", f"--src_folder={crops}", "--scale=2", "--patch_size=21", "--num_workers=1"]
    procs = [subprocess.Popen([PY, "-c", BUILD, work], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True),
             subprocess.Popen([PY, *create, f"--output_folder={work / 'mr'}", "--stride=10"], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True),
             subprocess.Popen([PY, *create, f"--output_folder={work / 'mr_other'}", "--stride=9"], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)]
    for proc in procs:
        out, err = proc.communicate(timeout=TIMEOUT)
        assert proc.returncode == 0, out[-1000:] + err[-2000:]
    return {"work": work, "crops": crops, "mr": work / "mr", "mr_other": work / "mr_other",
            **{name: work / f"{name}.ckpt" for name in ("ok", "x3", "zeros", "badmeta", "liar", "nan", "huge")}}


# ---------------------------------------------------------------------------------------------------------
# 2. one run per output folder

def _wait_for(predicate, proc, what, limit=TIMEOUT):
    deadline = time.monotonic() + limit
    while not predicate():
        assert proc.poll() is None, f"the first run ended before {what}: {proc.communicate()}"
        assert time.monotonic() < deadline, f"no {what}"
        time.sleep(0.05)


def test_second_train_on_the_same_folder_stops_and_the_first_continues(inputs, tmp_path):
    out = tmp_path / "run"
    first = subprocess.Popen([PY, "train.py", f"--data_path={inputs['mr']}", f"--output_path={out}", *TINY,
                              "--train_steps=100000", "--save_checkpoint_steps=20", "--log_interval=20"],
                             cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ckpt_dir = out / "ckpt_0"
        _wait_for(lambda: ckpt_dir.is_dir() and any(ckpt_dir.glob("srcnn-*.ckpt")), first, "first checkpoint")
        settings = (out / "run_config.yaml").read_text()
        stale = ckpt_dir / ".tmp_stale.ckpt"  # what a killed run leaves; only the lock holder may remove it
        stale.write_bytes(b"partial")
        second = run(["train.py", f"--data_path={inputs['mr_other']}", f"--output_path={out}", *TINY,
                      "--train_steps=10", "--lr=0.01"])
        assert error_line(second) == (f"output_path {out} is in use by another train.py run (pid {first.pid}): "
                                      "wait for it to finish or give another --output_path")
        assert first.poll() is None, "the first run stopped"
        assert (out / "run_config.yaml").read_text() == settings and stale.exists()
        _wait_for(lambda: max(int(p.stem.split("-")[1]) for p in ckpt_dir.glob("srcnn-[0-9]*.ckpt")) > 40, first,
                  "more checkpoints")  # the first run goes on
    finally:
        first.kill()  # SIGKILL: the kernel releases the lock of a killed process
        first.communicate()
    # the killed run's lock is free: the next run gets it and cleans the stale temporary file under it, then
    # refuses to start a fresh run over the killed run's checkpoints (that would mix two runs)
    third = run(["train.py", f"--data_path={inputs['mr']}", f"--output_path={out}", *TINY, "--train_steps=10"])
    assert re.fullmatch(rf"output_path {out} holds checkpoints of an earlier run \(up to srcnn-\d+\.ckpt\): "
                        rf"continue it with --resume=true, or give another --output_path \(or delete "
                        rf"{out / 'ckpt_0'} to start over here\)", error_line(third))
    assert not stale.exists()


def test_a_failed_train_start_leaves_no_folder_behind(inputs, tmp_path):
    out = tmp_path / "never"
    proc = run(["train.py", f"--data_path={inputs['mr']}", f"--output_path={out}", *TINY, "--batch_size=100000"])
    assert "fewer than one global batch" in error_line(proc)
    assert not out.exists()


# ---------------------------------------------------------------------------------------------------------
# 1. outputs never overwrite inputs; 11. only the keys a script uses; 6. config limits and ranges

Case = namedtuple("Case", "id cmd regex keep setup", defaults=((), None))


def _same_folder(values):
    """A data folder holding baby.png and an input that is named like eval's saved result of baby."""
    folder = values["tmp"] / "named"
    folder.mkdir()
    shutil.copy(values["crops"] / "baby.png", folder / "baby.png")
    shutil.copy(values["crops"] / "bird.png", folder / "baby_srcnn_x2.png")


def _symlink_to_ckpt(values):
    os.symlink(values["ok"], values["tmp"] / "link.json")


def _ckpt_in_run(values):
    (values["tmp"] / "run" / "ckpt_0").mkdir(parents=True)
    shutil.copy(values["ok"], values["tmp"] / "run" / "ckpt_0" / "init.ckpt")


def _onnx_named_ckpt(values):
    shutil.copy(values["ok"], values["tmp"] / "m.onnx")


def _data_in_preprocess(values):
    shutil.copytree(values["crops"], values["tmp"] / "pre" / "00_data")


def _results(values):
    (values["tmp"] / "res").mkdir()
    np.zeros((1, 1, 96, 96), np.float32).tofile(values["tmp"] / "res" / "baby_0.bin")
    (values["tmp"] / "meta.json").write_text(json.dumps({"scale": 2, "height": 96, "width": 96, "images": []}))


def _yaml(name, text):
    def setup(values):
        (values["tmp"] / name).write_text(text)
    return setup


def _recipe(values):
    (values["tmp"] / "recipe.yaml").write_text("lr: 0.001\nbatch_size: 8\n")


def _bomb(values):
    lines = ["a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    lines += [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]" for i in range(8)]
    (values["tmp"] / "bomb.yaml").write_text("\n".join(lines) + "\n")


EVAL = ["eval.py", "--data_path={crops}", "--checkpoint_path={ok}"]
CASES = [
    # ---- 1. outputs against inputs
    Case("eval: output_json is the checkpoint", [*EVAL, "--output_json={ok}"],
         r"output_json \S+/ok\.ckpt is the input checkpoint_path \S+/ok\.ckpt: writing it would replace the input; "
         r"choose another output_json$", ["{ok}"]),
    Case("eval: output_json is a symlink to the checkpoint", [*EVAL, "--output_json={tmp}/link.json"],
         r"output_json \S+/link\.json is the input checkpoint_path \S+/ok\.ckpt \(the same file: \S+/ok\.ckpt\)",
         ["{ok}"], _symlink_to_ckpt),
    Case("eval: output_json is an input image", [*EVAL, "--output_json={crops}/baby.png"],
         r"output_json \S+/crops/baby\.png is the input data_path \S+/crops/baby\.png", ["{crops}"]),
    Case("eval: output_json is the config file", [*EVAL, "--config_path={tmp}/c.yaml", "--output_json={tmp}/c.yaml"],
         r"output_json \S+/c\.yaml is the input config_path \S+/c\.yaml", ["{tmp}/c.yaml"],
         _yaml("c.yaml", "tile_size: 0\n")),
    Case("eval: save_images would replace an input image",
         ["eval.py", "--data_path={tmp}/named", "--checkpoint_path={ok}", "--save_images={tmp}/named"],
         r"save_images \S+/named/baby_srcnn_x2\.png is the input data_path \S+/named/baby_srcnn_x2\.png",
         ["{tmp}/named"], _same_folder),
    Case("test.py: output_json is the checkpoint",
         ["test.py", "--input_path={crops}", "--output_path={tmp}/sr", "--checkpoint_path={ok}", "--mode=degrade",
          "--output_json={ok}"], r"output_json \S+/ok\.ckpt is the input checkpoint_path", ["{ok}"]),
    Case("export: the model file is the checkpoint",
         ["export.py", "--checkpoint_path={tmp}/m.onnx", "--file_format=ONNX", "--file_name={tmp}/m"],
         r"file_name \S+/m\.onnx is the input checkpoint_path \S+/m\.onnx", ["{tmp}/m.onnx"], _onnx_named_ckpt),
    Case("train: pre_trained_path inside the run's checkpoint folder",
         ["train.py", "--data_path={mr}", "--output_path={tmp}/run", "--pre_trained_path={tmp}/run/ckpt_0/init.ckpt",
          *TINY], r"output_path \S+/run/ckpt_0 holds the input pre_trained_path \S+/init\.ckpt, and this command "
                  r"replaces or deletes what is in it: choose another output_path$", ["{tmp}/run"], _ckpt_in_run),
    Case("preprocess: the data is in the folder preprocess replaces",
         ["preprocess.py", "--data_path={tmp}/pre/00_data", "--output_path={tmp}/pre", "--image_height=96",
          "--image_width=96"], r"output_path \S+/pre/00_data holds the input data_path \S+/00_data/baby\.png",
         ["{tmp}/pre"], _data_in_preprocess),
    Case("postprocess: output_json is a model output",
         ["postprocess.py", "--data_path={crops}", "--result_path={tmp}/res", "--preprocess_path={tmp}/meta.json",
          "--output_json={tmp}/res/baby_0.bin"], r"output_json \S+/res/baby_0\.bin is the input result_path",
         ["{tmp}/res"], _results),
    Case("eval_onnx: output_json is the model",
         ["eval_onnx.py", "--data_path={crops}", "--onnx_path={tmp}/m.onnx", "--output_json={tmp}/m.onnx"],
         r"output_json \S+/m\.onnx is the input onnx_path \S+/m\.onnx", ["{tmp}/m.onnx"], _onnx_named_ckpt),
    Case("create_dataset: the config file is where the sidecar goes",
         ["src/create_dataset.py", "--src_folder={crops}", "--output_folder={tmp}",
          "--config_path={tmp}/srcnn_x2_p33_s14.mindrecord.json"],
         r"output_folder \S+/srcnn_x2_p33_s14\.mindrecord\.json is the input config_path", ["{tmp}"],
         _yaml("srcnn_x2_p33_s14.mindrecord.json", '{"num_workers": 1}\n')),
    # ---- 11. each script its own keys; YAML files may hold the others'
    Case("eval: a training flag", [*EVAL, "--lr=0.01"],
         r"config key 'lr' is not used by eval\.py \(it is a key of train\.py; from --lr=0\.01\)$"),
    Case("train: an ONNX flag", ["train.py", "--data_path={mr}", "--onnx_path=m.onnx"],
         r"config key 'onnx_path' is not used by train\.py \(it is a key of eval_onnx\.py; from --onnx_path=m\.onnx\)"),
    Case("preprocess: a checkpoint flag", ["preprocess.py", "--data_path={crops}", "--checkpoint_path={ok}"],
         r"config key 'checkpoint_path' is not used by preprocess\.py \(it is a key of eval\.py, test\.py, export\.py"),
    Case("create_dataset: a training flag", ["src/create_dataset.py", "--src_folder={crops}", "--seed=3"],
         r"config key 'seed' is not used by create_dataset\.py \(it is a key of train\.py"),
    Case("eval: a training recipe is accepted, then a bad data folder is the error",
         ["eval.py", "--config_path={tmp}/recipe.yaml", "--data_path={tmp}/missing", "--checkpoint_path={ok}"],
         r"data_path \S+/missing does not exist$", (), _recipe),
    Case("train: a key given twice in a YAML file", ["train.py", "--config_path={tmp}/twice.yaml"],
         r"config file '\S+/twice\.yaml' is not valid YAML at line 3, column 1: duplicate key 'lr' \(first given at "
         r"line 1\)", (), _yaml("twice.yaml", "lr: 0.001\nbatch_size: 8\nlr: 0.1\n")),
    # ---- 6. an alias bomb and numbers out of range
    Case("eval: a YAML alias bomb", [*EVAL, "--config_path={tmp}/bomb.yaml"],
         r"config file '\S+/bomb\.yaml' is not valid YAML at line 2, column \d+: aliases \(\*a\) are not allowed in a "
         r"config file: write the value out", (), _bomb),
    Case("train: negative seed", ["train.py", "--data_path={mr}", "--seed=-1"],
         r"config key 'seed' must be >= 0, got -1 \(from --seed=-1\)$"),
    Case("train: seed beyond 32 bits", ["train.py", "--data_path={mr}", "--seed=4294967296"],
         r"config key 'seed' must be at most 4294967295, got 4294967296"),
    Case("train: train_steps beyond int32", ["train.py", "--data_path={mr}", "--train_steps=9999999999"],
         r"config key 'train_steps' must be at most 2147483647, got 9999999999"),
    Case("train: loss_scale beyond 2^24", ["train.py", "--data_path={mr}", "--loss_scale=1e9"],
         r"config key 'loss_scale' must be at most 1\.67772e\+07, got 1000000000\.0"),
    Case("eval: tile_size beyond int32", [*EVAL, "--tile_size=99999999999"],
         r"config key 'tile_size' must be at most 2147483647"),
]


def _fill(text, values):
    return re.sub(r"\{(\w+)\}", lambda m: str(values[m.group(1)]), text)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_refused_before_anything_is_written(case, inputs, tmp_path):
    values = dict(inputs, tmp=tmp_path)
    if case.setup:
        case.setup(values)
    kept = {path: digest(_fill(path, values)) for path in case.keep}
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    proc = run([_fill(arg, values) for arg in case.cmd])
    message = error_line(proc)
    assert re.search(case.regex, message), f"{message!r} does not match {case.regex!r}"
    for path, value in kept.items():
        assert digest(_fill(path, values)) == value, f"{path} changed"
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before  # nothing written, nothing left


def test_help_lists_only_the_scripts_own_keys():
    evaluating = ok(run(["eval.py", "--help"])).stdout
    training = ok(run(["train.py", "--help"])).stdout
    flags = {text: set(re.findall(r"^  --(\w+)=", text, re.M)) for text in (evaluating, training)}
    assert {"data_path", "checkpoint_path", "output_json", "scale", "override_checkpoint"} <= flags[evaluating]
    assert not {"lr", "batch_size", "onnx_path", "src_folder", "resume"} & flags[evaluating]
    assert {"lr", "batch_size", "resume", "pre_trained_widen", "holdout_images"} <= flags[training]
    assert not {"onnx_path", "output_json", "save_images", "file_format", "override_checkpoint"} & flags[training]


# ---------------------------------------------------------------------------------------------------------
# 4. the checkpoint is the truth about itself; 5. non-finite numbers are never scored

def test_checkpoint_record_is_used_and_contradictions_refused(inputs, tmp_path):
    result = tmp_path / "x3.json"
    proc = ok(run(["eval.py", f"--data_path={inputs['crops']}", f"--checkpoint_path={inputs['x3']}",
                   f"--output_json={result}"]))
    assert json.loads(result.read_text())["scale"] == 3 and "warning" not in proc.stderr  # not the default 2

    refused = run(["eval.py", f"--data_path={inputs['crops']}", f"--checkpoint_path={inputs['x3']}", "--scale=2",
                   f"--output_json={tmp_path / 'no.json'}"])
    assert error_line(refused) == (f"scale=2 (from --scale=2) contradicts {inputs['x3']}, trained with scale=3: "
                                   "leave scale out to use the checkpoint's, or give --override_checkpoint=true to "
                                   "use 2 anyway")
    assert not (tmp_path / "no.json").exists()

    forced = ok(run(["eval.py", f"--data_path={inputs['crops']}", f"--checkpoint_path={inputs['x3']}", "--scale=2",
                     "--override_checkpoint=true", f"--output_json={tmp_path / 'x2.json'}"]))
    assert (f"warning: scale=2 used although {inputs['x3']} was trained with scale=3 (override_checkpoint=true)"
            in forced.stderr.splitlines())
    assert json.loads((tmp_path / "x2.json").read_text())["scale"] == 2

    arch = run(["test.py", f"--input_path={inputs['crops']}", f"--output_path={tmp_path / 'sr'}",
                f"--checkpoint_path={inputs['ok']}", "--arch=9-5-5", "--override_checkpoint=true"])
    assert error_line(arch) == (f"arch='9-5-5' (from --arch=9-5-5) contradicts {inputs['ok']}, whose weights are "
                                "arch='9-1-5': leave arch out (the checkpoint's is used)")
    assert not (tmp_path / "sr").exists()


@pytest.mark.parametrize("script,extra", [("eval.py", []), ("export.py", ["--file_name={tmp}/m"])])
def test_checkpoint_with_wrong_or_inconsistent_record(inputs, tmp_path, script, extra):
    data = [f"--data_path={inputs['crops']}"] if script == "eval.py" else []
    for name, expected in (("badmeta", "its recorded scale is 'x3' (str), expected an int (2, 3, 4): not a "
                                       "checkpoint this repository wrote"),
                           ("liar", "it records arch='9-5-5' but its weights are arch='9-1-5': the checkpoint is "
                                    "inconsistent")):
        proc = run([script, *data, f"--checkpoint_path={inputs[name]}",
                    *[_fill(a, {"tmp": tmp_path}) for a in extra]])
        assert error_line(proc) == f"{inputs[name]}: {expected}"
    assert list(tmp_path.iterdir()) == []


def test_export_takes_the_padding_from_the_checkpoint(inputs, tmp_path):
    proc = ok(run(["export.py", f"--checkpoint_path={inputs['zeros']}", "--file_format=ONNX",
                   f"--file_name={tmp_path / 'z'}"]))
    assert "padding zeros" in proc.stdout
    import onnx

    model = onnx.load(str(tmp_path / "z.onnx"))
    assert {p.key: p.value for p in model.metadata_props}["padding"] == "zeros"
    modes = [a.s for node in model.graph.node if node.op_type == "Pad" for a in node.attribute if a.name == "mode"]
    assert b"edge" not in modes  # zeros padding, not the default replicate


@pytest.mark.parametrize("cmd", [
    ["eval.py", "--data_path={crops}", "--output_json={tmp}/r.json"],
    ["test.py", "--input_path={crops}", "--output_path={tmp}/sr"],
    ["export.py", "--file_format=MINDIR", "--file_name={tmp}/m"],
    ["train.py", "--data_path={mr}", "--output_path={tmp}/run", *TINY, "--n1=16", "--n2=8", "--train_steps=2"],
], ids=["eval", "test", "export", "train pre_trained_path"])
def test_nan_weights_are_refused_at_load_naming_the_parameter(inputs, tmp_path, cmd):
    key = "--pre_trained_path" if cmd[0] == "train.py" else "--checkpoint_path"
    proc = run([_fill(a, dict(inputs, tmp=tmp_path)) for a in cmd] + [f"{key}={inputs['nan']}"])
    assert error_line(proc) == (f"{inputs['nan']}: parameter conv2.weight holds 1 NaN/Inf value(s) of 128: the "
                                "weights are damaged (or their training diverged); use an earlier checkpoint")
    assert list(tmp_path.iterdir()) == []


def test_non_finite_model_outputs_are_an_error_not_a_psnr(inputs, tmp_path):
    proc = run(["eval.py", f"--data_path={inputs['crops']}", f"--checkpoint_path={inputs['huge']}",
                f"--output_json={tmp_path / 'r.json'}"])
    assert re.fullmatch(rf"image baby of {inputs['crops']}: the model output holds \d+ NaN/Inf value\(s\) of 9216: "
                        r"not scored \(the model is damaged, or overflows on this input\)", error_line(proc))
    assert "result {" not in proc.stdout and not (tmp_path / "r.json").exists()

    upscaled = run(["test.py", f"--input_path={inputs['crops']}", f"--output_path={tmp_path / 'sr'}",
                    f"--checkpoint_path={inputs['huge']}"])
    assert "image baby.png of" in error_line(upscaled) and not list((tmp_path / "sr").rglob("*.png"))

    # an offline (Ascend 310) output with a NaN: postprocess.py refuses that image
    pre = tmp_path / "pre"
    ok(run(["preprocess.py", f"--data_path={inputs['crops']}", f"--output_path={pre}", "--image_height=96",
            "--image_width=96"]))
    res = tmp_path / "res"
    res.mkdir()
    for name in ("baby", "bird", "head"):
        output = np.fromfile(pre / "00_data" / f"{name}.bin", np.float32)
        if name == "bird":
            output[100] = np.inf
        output.tofile(res / f"{name}_0.bin")
    post = run(["postprocess.py", f"--data_path={inputs['crops']}", f"--result_path={res}",
                f"--preprocess_path={pre}", f"--output_json={tmp_path / 'post.json'}"])
    assert error_line(post).startswith(f"image bird ({res / 'bird_0.bin'}) of {inputs['crops']}: the model output "
                                       "holds 1 NaN/Inf value(s) of 9216: not scored")
    assert not (tmp_path / "post.json").exists()


def test_non_finite_training_loss_names_the_likely_cause(inputs, tmp_path):
    proc = run(["train.py", f"--data_path={inputs['mr']}", f"--output_path={tmp_path / 'run'}", *TINY,
                "--train_steps=200", "--lr=1e30"])
    assert re.fullmatch(r"loss became (nan|inf) at step \d+; stopped\. The last good checkpoint is \S+; likely cause: "
                        r"lr=1e\+30 \(from --lr=1e30\) is too high for this network: lower it, e.g\. --lr=1e\+29",
                        error_line(proc))


# ---------------------------------------------------------------------------------------------------------
# 3. a resume continues the same run, or refuses

def _run_files(out):
    """Digests of a run folder's files, but its lock file (each run writes its pid there)."""
    return {name: value for name, value in digest(out).items() if name != ".train.lock"}


def test_resume_refuses_other_data_other_shape_and_missing_settings(inputs, tmp_path):
    out = tmp_path / "run"
    base = [f"--output_path={out}", *TINY, "--train_steps=4", "--save_checkpoint_steps=2"]
    ok(run(["train.py", f"--data_path={inputs['mr']}", *base]))
    fingerprint = re.search(r"^# data_fingerprint: (sidecar \w+)$", (out / "run_config.yaml").read_text(), re.M)
    assert fingerprint, (out / "run_config.yaml").read_text()
    before = _run_files(out)

    other = run(["train.py", f"--data_path={inputs['mr_other']}", *base, "--resume=true"])
    assert re.fullmatch(rf"{out / 'run_config.yaml'}: this run was trained on other data \({fingerprint.group(1)}\) "
                        rf"than data_path {inputs['mr_other']} \(sidecar \w+\); resume with the run's data, or start "
                        r"fresh with --resume=false and another --output_path", error_line(other))
    shape = run(["train.py", f"--data_path={inputs['mr']}", *base, "--resume=true", "--n1=16"])
    assert "this run started with n1=8, not 16 (from --n1=16)" in error_line(shape)
    assert _run_files(out) == before

    # the same data moved elsewhere is the same data: the fingerprint is of its content's description
    moved = tmp_path / "moved"
    shutil.copytree(inputs["mr"], moved)
    assert "nothing to do: already at step 4 of 4" in ok(run(["train.py", f"--data_path={moved}", *base,
                                                              "--resume=true"])).stdout

    (out / "run_config.yaml").write_text("lr: [unclosed\n")
    broken = run(["train.py", f"--data_path={inputs['mr']}", *base, "--resume=true"])
    assert error_line(broken).startswith(f"resume=true but {out / 'run_config.yaml'} is unreadable (")
    (out / "run_config.yaml").unlink()
    missing = run(["train.py", f"--data_path={inputs['mr']}", *base, "--resume=true"])
    assert error_line(missing) == (f"resume=true but {out / 'run_config.yaml'} is missing: the run's settings are "
                                   "unknown, so its checkpoints cannot be continued safely; start fresh with "
                                   "--resume=false and another --output_path")


# ---------------------------------------------------------------------------------------------------------
# 6. a full disk (a real small file system)

@pytest.fixture
def small_disk(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (the full-disk test fills a real 8 MB file system)")
    mount = tmp_path / "disk"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip()})")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill_disk(mount, leave):
    """Fill the file system at ``mount`` up to ``leave`` bytes free."""
    free = shutil.disk_usage(mount).free
    with open(mount / "filler", "ab") as handle:
        handle.write(b"\0" * max(0, free - leave))
    return shutil.disk_usage(mount).free


def test_full_disk_is_one_line_and_keeps_earlier_checkpoints(inputs, small_disk):
    out = small_disk / "run"
    proc = subprocess.Popen([PY, "train.py", f"--data_path={inputs['mr']}", f"--output_path={out}", *TINY,
                             "--train_steps=100000", "--save_checkpoint_steps=100", "--keep_checkpoint_max=1000",
                             "--log_interval=100000"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        _wait_for(lambda: len(list(out.glob("ckpt_0/srcnn-*.ckpt"))) >= 2, proc, "two checkpoints")
        _fill_disk(small_disk, 0)  # the disk fills up while the run goes on
        stdout, stderr = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    proc = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    assert re.fullmatch(rf"cannot write checkpoint {out / 'ckpt_0'}/srcnn-\d+\.ckpt: no space left on its file "
                        r"system \(\d+ bytes free, about \d+ bytes needed\); free some space and run again",
                        error_line(proc))
    kept = sorted(out.glob("ckpt_0/*"))
    assert len(kept) >= 2 and all(p.name.startswith("srcnn-") for p in kept)  # no partial or temporary file
    check = "import sys, mindspore as ms\nfor p in sys.argv[1:]:\n    assert 'conv1.weight' in ms.load_checkpoint(p)\n"
    ok(run(["-c", check, *kept]))  # every earlier checkpoint is complete

    # results JSON and an export on the full disk: one line naming the file, nothing left
    _fill_disk(small_disk, 0)
    result = run(["eval.py", f"--data_path={inputs['crops']}", f"--checkpoint_path={inputs['ok']}",
                  f"--output_json={small_disk / 'r.json'}"])
    assert re.fullmatch(rf"cannot write results file {small_disk / 'r.json'}: no space left on its file system "
                        r"\(\d+ bytes free(, at least \d+ bytes needed)?\); free some space and run again",
                        error_line(result))
    export = run(["export.py", f"--checkpoint_path={inputs['ok']}", f"--file_name={small_disk / 'm'}"])
    assert re.fullmatch(rf"cannot write model {small_disk / 'm.mindir'}: no space left on its file system \(\d+ "
                        r"bytes free, about \d+ bytes needed\); free some space and run again", error_line(export))
    mindrecord = run(["src/create_dataset.py", f"--src_folder={inputs['crops']}", f"--output_folder={small_disk}",
                      "--patch_size=21", "--stride=10", "--num_workers=1"])
    assert re.fullmatch(rf"cannot write MindRecord {small_disk}/srcnn_x2_p21_s10\.mindrecord: no space left on its "
                        r"file system \(\d+ bytes free(, more than \d+ bytes needed)?\); free some space and run again",
                        error_line(mindrecord))
    left = sorted(p.name for p in small_disk.iterdir())
    assert left == ["filler", "run"], left


# ---------------------------------------------------------------------------------------------------------
# 7. signals, at any moment; 8. a killed create_dataset never leaves a mixed set

@pytest.mark.parametrize("signum,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_interrupt_at_any_moment(inputs, tmp_path, signum, code):
    rng = random.Random(signum)
    # from 0.3 s on the script's own code runs (before it, the interpreter itself is starting)
    for attempt, delay in enumerate([0.3, rng.uniform(0.5, 2.5), rng.uniform(2.5, 7)]):
        out = tmp_path / f"run{attempt}"
        proc = subprocess.Popen([PY, "train.py", f"--data_path={inputs['mr']}", f"--output_path={out}", *TINY,
                                 "--train_steps=100000", "--save_checkpoint_steps=50", "--log_interval=1000"],
                                cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(delay)  # during start-up, `import mindspore`, graph compilation or training
        proc.send_signal(signum)
        _, stderr = proc.communicate(timeout=TIMEOUT)
        lines = [line for line in stderr.splitlines() if line.strip() and "[WARNING]" not in line]
        assert proc.returncode == code and lines[-1:] == ["error: interrupted"], (delay, proc.returncode, stderr)
        assert "Traceback" not in stderr and "Fatal Python error" not in stderr
        leftovers = [p for p in out.rglob("*") if ".tmp" in p.name]
        assert not leftovers, leftovers
        for ckpt in out.glob("ckpt_0/*.ckpt"):
            ok(run(["-c", "import sys, mindspore as ms; ms.load_checkpoint(sys.argv[1])", ckpt]))


UNBLOCKED_AND_SWALLOWED = """
import sys, time
sys.path.insert(0, sys.argv[1])
from src.utils.errors import stop_on_signals
stop_on_signals()
from multiprocessing import resource_tracker
resource_tracker.ensure_running()  # the standard library unblocks SIGINT/SIGTERM in this thread again
print("ready", flush=True)
while True:
    try:
        time.sleep(0.01)
    except BaseException:  # library code that swallows KeyboardInterrupt
        pass
"""


@pytest.mark.parametrize("signum,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_a_signal_that_reaches_the_main_thread_still_stops_the_process(signum, code):
    """Code that unblocks the signals in the main thread again (multiprocessing's resource tracker, when it
    starts) must not turn Ctrl-C into a KeyboardInterrupt that library code can swallow: the process still
    stops with the one line and 128 + signal."""
    proc = subprocess.Popen([PY, "-c", UNBLOCKED_AND_SWALLOWED, str(REPO)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(signum)
        _, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == code and stderr.strip().splitlines()[-1:] == ["error: interrupted"], stderr


def test_killed_create_dataset_leaves_old_or_new_set_and_the_next_run_cleans_up(inputs, tmp_path):
    out = tmp_path / "mr"
    shutil.copytree(inputs["mr"], out)
    name = "srcnn_x2_p21_s10.mindrecord"
    old = digest(out)
    cmd = [PY, "src/create_dataset.py", f"--src_folder={inputs['crops']}", f"--output_folder={out}", "--scale=2",
           "--patch_size=21", "--stride=10", "--num_workers=1", "--downscale_factors=1.0,0.9"]
    rng = random.Random(8)
    for delay in (rng.uniform(0.5, 2), rng.uniform(2, 5)):
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(delay)
        proc.kill()
        proc.communicate()
        files = {p.name for p in out.iterdir() if not p.name.startswith(".create_dataset.tmp-")}
        if f".{name}.switch" in files:  # killed between the renames: readers refuse, the next build finishes
            proc = run(["train.py", f"--data_path={out}", f"--output_path={tmp_path / 'run'}"])
            assert "a create_dataset run was killed while replacing it" in error_line(proc)
        else:  # either the old set or a complete new one, never a mix
            assert files == {name, f"{name}.db", f"{name}.json"}
            meta = json.loads((out / f"{name}.json").read_text())
            assert digest(out / name) == old[name] or meta["downscale_factors"] == [1.0, 0.9]
    done = ok(subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT))
    assert sorted(p.name for p in out.iterdir()) == [name, f"{name}.db", f"{name}.json"]  # stale folders gone
    assert "wrote" in done.stdout and json.loads((out / f"{name}.json").read_text())["downscale_factors"] == [1.0, 0.9]


# ---------------------------------------------------------------------------------------------------------
# 9. images as people take them

def test_exif_orientation_32_bit_images_and_non_utf8_names(inputs, tmp_path):
    from PIL import Image

    baby = np.asarray(Image.open(inputs["crops"] / "baby.png").convert("RGB"))
    photo = tmp_path / "photo"
    photo.mkdir()
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: displayed rotated 90 degrees clockwise
    Image.fromarray(baby[:, :64]).save(photo / "phone.jpg", quality=95, exif=exif.tobytes())  # 64 wide, 96 high
    proc = ok(run(["test.py", f"--input_path={photo}", f"--output_path={tmp_path / 'sr'}",
                   f"--checkpoint_path={inputs['ok']}"]))
    with Image.open(tmp_path / "sr" / "phone_srcnn_x2.png") as result:
        assert result.size == (192, 128), proc.stderr  # as displayed: 96 wide, 64 high, x2

    deep = tmp_path / "deep"
    deep.mkdir()
    gray = baby[..., 1]
    Image.fromarray(gray).save(deep / "gray8.png")
    Image.fromarray(gray.astype(np.float32) / 255.0, "F").save(deep / "float01.tif")  # converted faithfully
    Image.fromarray((gray.astype(np.int32) * 1000), "I").save(deep / "int32.tif")  # beyond 16 bits: refused
    (deep / os.fsdecode(b"caf\xe9.png")).write_bytes((deep / "gray8.png").read_bytes())  # Latin-1 name
    for env in ({"LC_ALL": "C.UTF-8"}, {"LC_ALL": "C", "PYTHONIOENCODING": "ascii"}):
        proc = ok(run(["eval.py", f"--data_path={deep}", f"--checkpoint_path={inputs['ok']}",
                       f"--output_json={tmp_path / 'r.json'}"], env=env))
        assert (f"warning: skipped {deep / 'int32.tif'}: not a readable image (32-bit integer pixels from "
                f"{gray.min() * 1000} to {gray.max() * 1000}, beyond 16 bits: no faithful 8-bit conversion; "
                "convert it to 8 or 16 bits)") in proc.stderr, proc.stderr
        scores = {image["name"]: image for image in json.loads((tmp_path / "r.json").read_text())["images"]}
        assert scores["float01"]["psnr"] == scores["gray8"]["psnr"]
        assert len(scores) == 3 and "caf" in proc.stdout  # the Latin-1 name is printed, escaped


# ---------------------------------------------------------------------------------------------------------
# 10. what the project loads

FAKE_CXX = """#!/bin/sh
# stands in for the C++ compiler: writes the -o file (the library is not loaded by this test)
if [ "$1" = --version ]; then echo "fake-c++ 1.0"; exit 0; fi
while [ $# -gt 0 ]; do [ "$1" = -o ] && { echo built > "$2"; exit 0; }; shift; done
exit 1
"""


def test_kernel_library_of_another_user_or_writable_by_others_is_not_loaded(tmp_path):
    cxx = tmp_path / "fake-c++"
    cxx.write_text(FAKE_CXX)
    cxx.chmod(0o755)
    cache = tmp_path / "cache"
    env = {"CXX": str(cxx), "SRCNN_KERNEL_CACHE": str(cache), "SRCNN_FUSED_CPU": "1"}
    probe = ("import os, stat\nfrom src.model.cpu.kernel_build import build_library\npath = build_library()\n"
             "print(path, oct(stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode)))\n")
    first = ok(run(["-c", probe], env=env))
    cached = Path(first.stdout.split()[0])
    assert cached.parent.parent == cache and "note:" not in first.stderr
    assert ok(run(["-c", probe], env=env)).stdout.split()[0] == str(cached)  # trusted: reused

    cached.parent.chmod(0o777)  # anyone could have replaced the library
    second = ok(run(["-c", probe], env=env))
    private, mode = second.stdout.split()
    assert Path(private).parent != cached.parent and mode == "0o700"
    twice = ok(run(["-c", probe.replace("path = build_library()", "build_library()\npath = build_library()")],
                   env=env))
    assert twice.stderr.count("building a private copy") == 1  # one private build per process, reused
    assert (f"note: fused CPU kernel cache not trusted ({cached.parent} is writable by other users (mode 777)); "
            f"building a private copy in {Path(private).parent}") in second.stderr
    assert not Path(private).parent.exists()  # the private copy goes with its process
    cached.parent.chmod(0o755)
    if os.geteuid() == 0:
        os.chown(cached, 12345, 12345)
        third = ok(run(["-c", probe], env=env))
        assert f"{cached} belongs to uid 12345, not to this user" in third.stderr


def test_modelarts_refuses_a_moxing_that_is_not_the_sdk(inputs, tmp_path):
    fake = tmp_path / "site" / "moxing"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("# an unrelated package of the same name\n")
    proc = run(["train.py", "--enable_modelarts=true", f"--data_path={inputs['mr']}",
                f"--output_path={tmp_path / 'run'}"], env={"PYTHONPATH": str(tmp_path / "site")})
    assert error_line(proc) == (f"enable_modelarts=True: the installed 'moxing' ({fake / '__init__.py'}) is not the "
                                "ModelArts SDK (it has no moxing.file.copy_parallel); remove it and use a ModelArts "
                                "image")
    assert not (tmp_path / "run").exists()


def test_an_image_too_large_for_memory_is_refused_before_work(inputs, tmp_path):
    from PIL import Image

    from src.protocol.image_io import SCORING_BYTES_PER_PIXEL, available_memory

    side = 12000  # 144 Mpixels of black: a 150 kB PNG that would need about 70 GiB to score
    if available_memory() is None or available_memory() > side * side * SCORING_BYTES_PER_PIXEL:
        pytest.skip("this machine has memory for the large image (or does not say how much it has)")
    folder = tmp_path / "big"
    shutil.copytree(inputs["crops"], folder)
    Image.new("L", (side, side)).save(folder / "huge.png")
    proc = run(["eval.py", f"--data_path={folder}", f"--checkpoint_path={inputs['ok']}",
                f"--output_json={tmp_path / 'r.json'}"])
    assert re.fullmatch(rf"data_path: image {folder / 'huge.png'} is 12000x12000 \(144 Mpixels\): scoring it needs "
                        r"about 68\.7 GiB, more than the [\d.]+ GiB of memory available; crop or downscale it first",
                        error_line(proc))
    assert "result {" not in proc.stdout and not (tmp_path / "r.json").exists()


def test_only_a_killed_runs_temporary_folders_are_removed(inputs, tmp_path):
    out = tmp_path / "pre"
    stale, live, other = out / ".00_data.killed", out / ".00_data.running", out / ".keep.mine"
    for folder in (stale, live, other):
        folder.mkdir(parents=True)
        (folder / ".owner.lock").touch()
    holder = subprocess.Popen([PY, "-c", "import fcntl, sys, time\nf = open(sys.argv[1], 'a')\n"
                               "fcntl.flock(f, fcntl.LOCK_EX)\nprint('locked', flush=True)\ntime.sleep(600)\n",
                               live / ".owner.lock"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "locked\n"  # a preprocess.py still writing there
        ok(run(["preprocess.py", f"--data_path={inputs['crops']}", f"--output_path={out}", "--image_height=96",
                "--image_width=96"]))
        assert not stale.exists() and live.is_dir() and other.is_dir()
        assert sorted(p.name for p in (out / "00_data").iterdir()) == ["baby.bin", "bird.bin", "head.bin"]
    finally:
        holder.kill()
        holder.communicate()
