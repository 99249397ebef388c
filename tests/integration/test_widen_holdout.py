"""pre_trained_widen (a 9-1-5 checkpoint as the same function in a 9-5-5 network) and holdout_images (images
left out of the training patches and used alone for validation)."""
import json
import subprocess
import sys

import numpy as np
import pytest

from src.model.checkpoint import widen_middle_filter
from src.protocol.image_io import holdout_names, split_holdout
from src.utils.errors import UserError

REPO = __import__("pathlib").Path(__file__).resolve().parents[2]


def _weights(arch, n1=4, n2=3, seed=0):
    k1, k2, k3 = (int(k) for k in arch.split("-"))
    rng = np.random.default_rng(seed)
    return {"conv1.weight": rng.normal(size=(n1, 1, k1, k1)).astype(np.float32),
            "conv1.bias": rng.normal(size=(n1,)).astype(np.float32),
            "conv2.weight": rng.normal(size=(n2, n1, k2, k2)).astype(np.float32),
            "conv2.bias": rng.normal(size=(n2,)).astype(np.float32),
            "conv3.weight": rng.normal(size=(1, n2, k3, k3)).astype(np.float32),
            "conv3.bias": rng.normal(size=(1,)).astype(np.float32)}


def _forward(weights, img):
    """SRCNN with replicate padding in float64 numpy, independent of the repository's networks."""
    x = img[None].astype(np.float64)
    for i in (1, 2, 3):
        w, b = weights[f"conv{i}.weight"].astype(np.float64), weights[f"conv{i}.bias"].astype(np.float64)
        k = w.shape[-1]
        p = np.pad(x, ((0, 0), (k // 2, k // 2), (k // 2, k // 2)), mode="edge")
        h, wd = x.shape[1:]
        out = np.zeros((w.shape[0], h, wd))
        for dy in range(k):
            for dx in range(k):
                out += np.einsum("oi,ihw->ohw", w[:, :, dy, dx], p[:, dy:dy + h, dx:dx + wd])
        x = out + b[:, None, None]
        if i < 3:
            x = np.maximum(x, 0)
    return x[0]


def test_widened_9_1_5_is_the_same_function_as_9_5_5():
    narrow = _weights("9-1-5")
    wide = widen_middle_filter(narrow, "9-5-5")
    assert wide["conv2.weight"].shape == (3, 4, 5, 5)
    assert np.count_nonzero(wide["conv2.weight"][:, :, 2, 2]) == 12
    assert np.count_nonzero(wide["conv2.weight"]) == 12
    img = np.random.default_rng(1).random((13, 11))
    np.testing.assert_allclose(_forward(wide, img), _forward(narrow, img), rtol=1e-12, atol=1e-12)
    mid = widen_middle_filter(narrow, "9-3-5")
    np.testing.assert_allclose(_forward(mid, img), _forward(narrow, img), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("have, want", [("9-5-5", "9-1-5"), ("9-1-5", "9-1-5x"), ("9-3-5", "9-1-5")])
def test_widen_refuses_what_cannot_grow(have, want):
    with pytest.raises(UserError, match="cannot be widened"):
        widen_middle_filter(_weights(have), want if "x" not in want else "7-5-5")


def test_split_holdout_names_and_typos(tmp_path):
    paths = [tmp_path / f"{name}.png" for name in ("a", "b", "c")]
    assert holdout_names(" b, c ,,") == {"b", "c"}
    kept, held = split_holdout(paths, {"b"}, tmp_path)
    assert kept == [paths[0], paths[2]] and held == [paths[1]]
    with pytest.raises(UserError, match="no image named zz under"):
        split_holdout(paths, {"b", "zz"}, tmp_path)


def test_create_dataset_leaves_holdout_images_out(tmp_path):
    from PIL import Image

    src = tmp_path / "src"
    src.mkdir()
    rng = np.random.default_rng(0)
    for name in ("one", "two", "three"):
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(src / f"{name}.png")
    out = tmp_path / "out"
    cmd = [sys.executable, "src/create_dataset.py", f"--src_folder={src}", f"--output_folder={out}",
           "--patch_size=20", "--stride=20", "--num_workers=1"]
    full = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert full.returncode == 0, full.stderr
    meta = json.loads((out / "srcnn_x2_p20_s20.mindrecord.json").read_text())
    assert meta["images"] == 3 and meta["count"] == 12
    held = subprocess.run(cmd + ["--holdout_images=two"], cwd=REPO, capture_output=True, text=True)
    assert held.returncode == 0, held.stderr
    meta = json.loads((out / "srcnn_x2_p20_s20.mindrecord.json").read_text())
    assert meta["images"] == 2 and meta["count"] == 8 and meta["holdout_images"] == ["two"]
    typo = subprocess.run(cmd + ["--holdout_images=tow"], cwd=REPO, capture_output=True, text=True)
    assert typo.returncode == 2 and typo.stderr.strip().splitlines()[-1].startswith("error: holdout_images: no image named tow")
