"""train.py for real: short runs with reduced widths on a MindRecord made from Set5 crops."""
import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from tests.conftest import save_set5_crops

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMALL = ["--n1=8", "--n2=4", "--batch_size=8", "--log_interval=5", "--lr=0.001", "--seed=3"]


@pytest.fixture(scope="module")
def patches(tmp_path_factory, datasets_dir):
    """A small patch MindRecord (x2, 21x21 patches) from three Set5 crops."""
    folder = save_set5_crops(datasets_dir, tmp_path_factory.mktemp("patch_src"), ("baby", "bird", "head"),
                             (40, 40, 136, 136))
    out = tmp_path_factory.mktemp("mindrecord")
    from src.data.mindrecord import build_dataset

    build_dataset(str(folder), str(out), scale=2, patch_size=21, stride=10, num_workers=1, show_progress=False)
    return str(out)


def train(args, **kw):
    return subprocess.run([sys.executable, "train.py", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300, **kw)


def final_weights(path):
    import mindspore as ms

    entries = ms.load_checkpoint(str(path))
    return {k: v.asnumpy() for k, v in entries.items() if k.startswith("conv")}


def test_train_writes_checkpoints_log_and_curves_then_eval_reads_them(patches, tmp_path, datasets_dir):
    out = tmp_path / "run"
    proc = train([f"--data_path={patches}", f"--output_path={out}", "--train_steps=30",
                  "--save_checkpoint_steps=10", "--keep_checkpoint_max=2", "--val_interval=15",
                  f"--validation_path={datasets_dir / 'Set5'}", *SMALL])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "global batch 8" in proc.stdout and "validation PSNR" in proc.stdout
    ckpts = sorted(p.name for p in (out / "ckpt_0").iterdir())
    assert ckpts == ["srcnn-20.ckpt", "srcnn-30.ckpt", "srcnn-best.ckpt", "srcnn-final.ckpt"]
    records = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [5, 10, 15, 20, 25, 30]
    assert all(np.isfinite(r["loss"]) and r["samples_per_s"] > 0 for r in records if "loss" in r)
    assert [r["step"] for r in records if "val_psnr" in r] == [15, 30]
    with Image.open(out / "curves.png") as curves:
        assert curves.size == (900, 660)
    result = tmp_path / "eval.json"
    proc = subprocess.run([sys.executable, "eval.py", f"--data_path={datasets_dir / 'Set5'}", "--scale=2",
                           f"--checkpoint_path={out / 'ckpt_0' / 'srcnn-final.ckpt'}",
                           f"--output_json={result}"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(result.read_text())
    assert data["dataset"] == "Set5" and data["scale"] == 2 and len(data["images"]) == 5
    assert abs(data["bicubic_psnr"] - 33.66) < 0.01
    assert proc.stdout.strip().splitlines()[-1] == "result " + repr(
        {"PSNR": round(data["psnr"], 2), "SSIM": round(data["ssim"], 4)})


def test_killed_run_resumes_to_the_same_weights(patches, tmp_path):
    steps = ["--train_steps=40", "--save_checkpoint_steps=4", "--keep_checkpoint_max=3", "--augment=true",
             "--lr_schedule=cosine", *SMALL]
    reference = tmp_path / "reference"
    proc = train([f"--data_path={patches}", f"--output_path={reference}", *steps])
    assert proc.returncode == 0, proc.stderr[-2000:]

    out = tmp_path / "killed"
    ckpt_dir = out / "ckpt_0"
    child = subprocess.Popen([sys.executable, "train.py", f"--data_path={patches}", f"--output_path={out}",
                              *steps], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while not (ckpt_dir.is_dir() and any(p.name.startswith("srcnn-") for p in ckpt_dir.iterdir())):
        assert child.poll() is None and time.time() < deadline, "training ended before its first checkpoint"
        time.sleep(0.05)
    time.sleep(random.uniform(0.0, 0.4))  # somewhere in the middle, possibly while a checkpoint is written
    child.send_signal(signal.SIGKILL)
    child.wait()
    proc = train([f"--data_path={patches}", f"--output_path={out}", "--resume=true", *steps])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "resumed from" in proc.stdout or "no checkpoint" in proc.stdout
    assert not [p for p in ckpt_dir.iterdir() if p.name.startswith(".tmp")]
    expected = final_weights(reference / "ckpt_0" / "srcnn-final.ckpt")
    resumed = final_weights(ckpt_dir / "srcnn-final.ckpt")
    for name, value in expected.items():
        np.testing.assert_array_equal(resumed[name], value, err_msg=name)
    records = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    steps_logged = [r["step"] for r in records if "loss" in r]
    assert steps_logged == sorted(set(steps_logged)) == list(range(5, 41, 5))  # each once after the resume
    assert [r["step"] for r in records if r.get("event") == "start"][0] == 0
    assert all("cores" in r["host"] for r in records if r.get("event") == "start")

    # the run's settings are saved; a resume that changes the recipe is refused before anything changes
    run_config = out / "run_config.yaml"
    saved = run_config.read_text()
    assert "\nlr: 0.001\n" in saved and "\npatch_size: 21\n" in saved and "\nresume:" not in saved
    proc = train([f"--data_path={patches}", f"--output_path={out}", "--resume=true", *steps, "--lr=0.01"])
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: {run_config}: this run started with lr=0.001, not 0.01 (from --lr=0.01); resume with the "
        f"run's settings: --config_path={run_config} --resume=true")
    proc = train([f"--config_path={run_config}", "--resume=true"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "nothing to do: already at step 40 of 40" in proc.stdout


def test_valid_padding_and_mixed_precision_train(patches, tmp_path):
    proc = train([f"--data_path={patches}", f"--output_path={tmp_path / 'valid'}", "--train_steps=6",
                  "--padding=valid", "--amp_level=O2", *SMALL])
    assert proc.returncode == 0, proc.stderr[-2000:]
    losses = [float(line.split("loss ")[1].split()[0]) for line in proc.stdout.splitlines() if " loss " in line]
    assert losses and all(np.isfinite(losses))


def test_non_finite_loss_stops_naming_the_step(patches, tmp_path):
    proc = train([f"--data_path={patches}", f"--output_path={tmp_path / 'nan'}", "--train_steps=200",
                  "--save_checkpoint_steps=2", *[a for a in SMALL if not a.startswith("--lr")], "--lr=1e30"])
    assert proc.returncode == 2
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("error: loss became") and "at step" in line and "Traceback" not in proc.stderr
