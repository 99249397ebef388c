"""src/create_dataset.py on real image files and real MindRecord output (small crops, small patches)."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

import src  # noqa: F401
from src.data.mindrecord import (
    MINDRECORD_COLUMNS,
    build_dataset,
    dataset_file_name,
    inspect_mindrecord,
    patch_positions,
)
from src.protocol.degradation import prepare_pair, to_uint8
from src.protocol.image_io import read_image
from src.protocol.matlab_functions import imresize
from src.utils.errors import UserError

SCALE, PATCH, STRIDE = 3, 11, 7
SCRIPT_TIMEOUT = 120


def _crops(datasets_dir, folder):
    """Three small ground-truth images (two RGB crops, one gray) as PNG files in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    baby = read_image(datasets_dir / "Set5" / "baby.png")
    bird = read_image(datasets_dir / "Set5" / "bird.png")
    Image.fromarray(baby[100:152, 200:263]).save(folder / "a.png")  # 52x63 RGB, not a multiple of the scale
    Image.fromarray(bird[40:80, 60:107]).save(folder / "b.png")
    Image.fromarray(baby[300:345, 120:160, 1]).save(folder / "c.png")  # gray
    return folder


def _read_all(file):
    import mindspore.dataset as ds

    data = ds.MindDataset(str(file), columns_list=list(MINDRECORD_COLUMNS), shuffle=False)
    rows = list(data.create_tuple_iterator(output_numpy=True, num_epochs=1))
    return np.stack([r[0] for r in rows]), np.stack([r[1] for r in rows])


def _expected_count(folder, scale, patch, stride, factors=(1.0,)):
    total = 0
    for name in sorted(os.listdir(folder)):
        img = read_image(folder / name)
        for f in factors:
            hr = img if f >= 1 else to_uint8(imresize(img / 255.0, f))
            h, w = hr.shape[0] - hr.shape[0] % scale, hr.shape[1] - hr.shape[1] % scale
            total += len(patch_positions(h, w, patch, stride))
    return total


def _run_script(*args, **kwargs):
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return subprocess.run([sys.executable, os.path.join(repo, "src", "create_dataset.py"), *map(str, args)],
                          cwd=repo, capture_output=True, text=True, timeout=SCRIPT_TIMEOUT, **kwargs)


def _leftovers(folder):
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


@pytest.fixture(scope="module")
def images(datasets_dir, tmp_path_factory):
    return _crops(datasets_dir, tmp_path_factory.mktemp("images"))


@pytest.fixture(scope="module")
def built(images, tmp_path_factory):
    """The same data built with 1 and 2 workers."""
    out = {}
    for workers in (1, 2):
        folder = tmp_path_factory.mktemp(f"out{workers}")
        result = build_dataset(images, folder, scale=SCALE, patch_size=PATCH, stride=STRIDE,
                               num_workers=workers, show_progress=False)
        out[workers] = (folder, result)
    return out


def test_patches_equal_the_protocol(images, built):
    folder, result = built[1]
    file = folder / dataset_file_name(SCALE, PATCH, STRIDE)
    assert result["file"] == str(file)
    assert _leftovers(folder) == sorted([file.name, file.name + ".db", file.name + ".json"])  # no .tmp-*
    lr, hr = _read_all(file)
    assert lr.dtype == hr.dtype == np.float32 and lr.shape == hr.shape == (result["count"], 1, PATCH, PATCH)
    assert result["count"] == _expected_count(images, SCALE, PATCH, STRIDE)

    hr_y, lr_up = prepare_pair(read_image(images / "a.png"), SCALE)  # first image in sorted order
    positions = patch_positions(*hr_y.shape, PATCH, STRIDE)
    assert hr_y.shape == (51, 63) and len(positions) == 6 * 8
    for index in (0, 11, len(positions) - 1):
        y, x = positions[index]
        np.testing.assert_array_equal(lr[index, 0], lr_up[y:y + PATCH, x:x + PATCH])
        np.testing.assert_array_equal(hr[index, 0], (hr_y[y:y + PATCH, x:x + PATCH] / 255.0).astype(np.float32))
    # the second image's patches follow the first's
    _, lr_up_b = prepare_pair(read_image(images / "b.png"), SCALE)
    np.testing.assert_array_equal(lr[len(positions), 0], lr_up_b[:PATCH, :PATCH])

    meta = json.loads((folder / (file.name + ".json")).read_text())
    assert meta == {"scale": SCALE, "patch_size": PATCH, "stride": STRIDE, "downscale_factors": [1.0],
                    "holdout_images": [], "count": result["count"], "images": 3, "skipped": [], "src_folder": str(images.resolve()),
                    "columns": ["lr", "hr"]}
    info = inspect_mindrecord(folder)
    assert info == {"file": str(file), "patch_size": PATCH, "count": result["count"], "meta": meta}
    assert inspect_mindrecord(file) == info


def test_identical_for_any_number_of_workers(built):
    (one, r1), (two, r2) = built[1], built[2]
    assert r1["count"] == r2["count"]
    lr1, hr1 = _read_all(r1["file"])
    lr2, hr2 = _read_all(r2["file"])
    np.testing.assert_array_equal(lr1, lr2)
    np.testing.assert_array_equal(hr1, hr2)


def test_downscale_factors_add_patches(images, built, tmp_path):
    factors = [1.0, 0.8]
    result = build_dataset(images, tmp_path, scale=SCALE, patch_size=PATCH, stride=STRIDE,
                           downscale_factors=factors, num_workers=2, show_progress=False)
    assert result["count"] == _expected_count(images, SCALE, PATCH, STRIDE, factors) > built[1][1]["count"]
    assert result["downscale_factors"] == factors
    lr, _ = _read_all(result["file"])
    base = len(patch_positions(51, 63, PATCH, STRIDE))
    small = to_uint8(imresize(read_image(images / "a.png") / 255.0, 0.8))  # a.png at 0.8 follows a.png at 1.0
    _, lr_up = prepare_pair(small, SCALE)
    np.testing.assert_array_equal(lr[base, 0], lr_up[:PATCH, :PATCH])


def test_bad_files_are_skipped_and_listed(images, tmp_path):
    src_dir = tmp_path / "src"
    src_dir.mkdir()
    for name in os.listdir(images):
        (src_dir / name).write_bytes((images / name).read_bytes())
    good = (images / "a.png").read_bytes()
    (src_dir / "sub").mkdir()
    (src_dir / "sub" / "truncated.png").write_bytes(good[:len(good) // 2])
    (src_dir / "zero.bmp").write_bytes(b"")
    (src_dir / "text.png").write_text("not an image\n")
    (src_dir / "noise.jpg").write_bytes(np.random.default_rng(0).integers(0, 256, 500, np.uint8).tobytes())
    Image.fromarray(np.zeros((8, 40), np.uint8)).save(src_dir / "tiny.png")
    out = tmp_path / "out"
    proc = _run_script(f"--src_folder={src_dir}", f"--output_folder={out}", f"--scale={SCALE}",
                       f"--patch_size={PATCH}", f"--stride={STRIDE}", "--num_workers=2")
    assert proc.returncode == 0, proc.stderr
    bad = ["noise.jpg", "sub/truncated.png", "text.png", "tiny.png", "zero.bmp"]
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning: skipped ")]
    assert len(warnings) == len(bad), proc.stderr
    for name, line in zip(bad, warnings):
        assert line.startswith(f"warning: skipped {src_dir / name}: ")
    assert "too small: 39x6" in warnings[3] and "11x11" in warnings[3]
    assert "Traceback" not in proc.stderr

    name = dataset_file_name(SCALE, PATCH, STRIDE)
    assert _leftovers(out) == [name, name + ".db", name + ".json"]
    meta = json.loads((out / (name + ".json")).read_text())
    assert [s["path"] for s in meta["skipped"]] == [str(src_dir / n) for n in bad]
    assert all(s["reason"] for s in meta["skipped"])
    assert meta["images"] == 3 and meta["count"] == _expected_count(images, SCALE, PATCH, STRIDE)
    assert proc.stdout.startswith(f"wrote {meta['count']} patches from 3 images (5 skipped) to {out / name} in ")
    assert inspect_mindrecord(out)["count"] == meta["count"]


@pytest.mark.parametrize("kind", ["empty", "all_bad"])
def test_no_usable_images_is_a_one_line_error(tmp_path, kind):
    src_dir = tmp_path / "src"
    src_dir.mkdir()
    out = tmp_path / "out"
    if kind == "all_bad":
        (src_dir / "zero.png").write_bytes(b"")
        (src_dir / "text.png").write_text("hello")
        out.mkdir()  # an existing output folder is kept, empty
    proc = _run_script(f"--src_folder={src_dir}", f"--output_folder={out}")
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(src_dir) in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr
    if kind == "all_bad":
        assert errors[0] == f"error: no usable images in {src_dir} (2 skipped)"
        assert proc.stderr.count("warning: skipped") == 2
    assert _leftovers(out) == []
    assert not out.exists() or kind == "all_bad"


def test_failure_keeps_an_existing_output_and_leaves_no_temp(images, tmp_path):
    out = tmp_path / "out"
    first = build_dataset(images, out, scale=SCALE, patch_size=PATCH, stride=STRIDE, num_workers=1,
                          show_progress=False)
    before = {name: (out / name).read_bytes() for name in os.listdir(out)}
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.png").write_text("no")
    with pytest.raises(UserError, match="no usable images"):
        build_dataset(bad, out, scale=SCALE, patch_size=PATCH, stride=STRIDE, num_workers=1, show_progress=False)
    assert {name: (out / name).read_bytes() for name in os.listdir(out)} == before
    # a rebuild replaces the output in place
    again = build_dataset(images, out, scale=SCALE, patch_size=PATCH, stride=STRIDE, num_workers=2,
                          show_progress=False)
    assert again["count"] == first["count"] and len(os.listdir(out)) == 3


def _write_mindrecord(file, schema, rows):
    from mindspore.mindrecord import FileWriter

    writer = FileWriter(str(file), shard_num=1)
    writer.add_schema(schema, "test")
    writer.write_raw_data(rows)
    writer.commit()


def test_inspect_rejects_other_columns_and_several_files(tmp_path, built):
    other = tmp_path / "other.mindrecord"
    _write_mindrecord(other, {"image": {"type": "float32", "shape": [1, 5, 5]}, "label": {"type": "int32"}},
                      [{"image": np.zeros((1, 5, 5), np.float32), "label": 1}])
    with pytest.raises(UserError, match=r"MindRecord columns are \[image float32 \[1, 5, 5\], label int32 .*"
                                        r"expected lr and hr float32 \[1, P, P\]"):
        inspect_mindrecord(other)
    wrong_shape = tmp_path / "wrong" / "x.mindrecord"
    wrong_shape.parent.mkdir()
    _write_mindrecord(wrong_shape, {"lr": {"type": "float32", "shape": [1, 5, 5]},
                                    "hr": {"type": "float32", "shape": [1, 7, 7]}},
                      [{"lr": np.zeros((1, 5, 5), np.float32), "hr": np.zeros((1, 7, 7), np.float32)}])
    with pytest.raises(UserError, match="expected lr and hr float32"):
        inspect_mindrecord(wrong_shape.parent)

    with pytest.raises(UserError, match=r"holds 2 \.mindrecord files \(other\.mindrecord, second\.mindrecord\)"):
        _write_mindrecord(tmp_path / "second.mindrecord", {"lr": {"type": "float32", "shape": [1, 3, 3]},
                                                           "hr": {"type": "float32", "shape": [1, 3, 3]}},
                          [{"lr": np.zeros((1, 3, 3), np.float32), "hr": np.zeros((1, 3, 3), np.float32)}])
        inspect_mindrecord(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="no .mindrecord file in"):
        inspect_mindrecord(empty)
    with pytest.raises(UserError, match="does not exist"):
        inspect_mindrecord(tmp_path / "missing.mindrecord")
    # the loader accepts the second file alone, without a sidecar
    assert inspect_mindrecord(tmp_path / "second.mindrecord") == {
        "file": str(tmp_path / "second.mindrecord"), "patch_size": 3, "count": 1, "meta": None}
    os.remove(tmp_path / "second.mindrecord.db")
    with pytest.raises(UserError, match="index file second.mindrecord.db is missing"):
        inspect_mindrecord(tmp_path / "second.mindrecord")


def test_interrupt_leaves_no_output(datasets_dir, tmp_path):
    out = tmp_path / "out"
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.Popen([sys.executable, os.path.join(repo, "src", "create_dataset.py"),
                             f"--src_folder={datasets_dir / 'T91'}", f"--output_folder={out}", "--num_workers=1"],
                            cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # interrupt once patches are being written: the temporary data file exists
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            if any(name.endswith(".mindrecord") for _, _, files in os.walk(out) for name in files):
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the build finished before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == "error: interrupted" and "Traceback" not in stderr
    assert _leftovers(out) == []
