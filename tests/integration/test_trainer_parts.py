"""The trainer's parts on their own, in this process: one step (against Adam on a float64 numpy gradient),
checkpoints (keep, skip the unreadable, restore), validation (against a float64 numpy forward) and the loop's
TensorBoard events (read back from the files, against train_log.jsonl, across a resume). Real MindRecord
files of a few tiny images, real steps at n1=16, n2=8."""
import glob
import io
import json
import struct

import numpy as np
import pytest
from PIL import Image

from src.model.checkpoint import PARAM_NAMES
from src.model_utils.config import get_config
from src.utils.errors import UserError
from tests.conftest import srcnn_backward_float64, srcnn_float64

SMALL = ["--n1=16", "--n2=8", "--batch_size=8", "--lr=0.001", "--seed=5"]


def _smooth_image(rng, height, width):
    """An RGB picture with structure at several scales (noise summed over block sizes), uint8."""
    img = np.zeros((height, width, 3))
    for block in (2, 4, 8, 16):
        coarse = rng.random((height // block + 1, width // block + 1, 3))
        img += np.kron(coarse, np.ones((block, block, 1)))[:height, :width]
    return (img / img.max() * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A MindRecord of 21x21 x2 patches from three 48x48 images (48 patches), and a folder of two 40x36
    validation images."""
    from src.data.mindrecord import build_dataset

    work = tmp_path_factory.mktemp("trainer_parts")
    rng = np.random.default_rng(11)
    for folder, names, size in (("train", ("p", "q", "r"), (48, 48)), ("val", ("a", "b"), (40, 36))):
        (work / folder).mkdir()
        for name in names:
            Image.fromarray(_smooth_image(rng, *size)).save(work / folder / f"{name}.png")
    build_dataset(str(work / "train"), str(work / "mr"), scale=2, patch_size=21, stride=9, num_workers=1,
                  show_progress=False)
    return {"mr": str(work / "mr"), "val": str(work / "val"), "work": work}


def _cfg(inputs, *flags):
    return get_config([f"--data_path={inputs['mr']}", *SMALL, *flags], script="train.py")


def _weights(net):
    return {p.name: p.asnumpy().copy() for p in net.trainable_params()}


def test_one_step_is_adam_on_the_mse_gradient(inputs):
    from src.data.batches import PatchBatches
    from src.train.step import build_model, make_train_step

    cfg = _cfg(inputs)
    net, optimizer, lrs = build_model(cfg, total_steps=3)
    assert lrs == [0.001] * 3
    step = make_train_step(net, optimizer, cfg.arch, cfg.padding)
    _, lr, hr = next(PatchBatches(cfg.data_path, cfg.batch_size).batches(0))
    before = _weights(net)
    loss = step(lr, hr)

    out, layer_inputs, pre = srcnn_float64(before, lr, "replicate")
    assert loss == pytest.approx(float(np.mean((out - hr) ** 2)), rel=1e-5)
    grads = srcnn_backward_float64(before, layer_inputs, [(p > 0).astype(np.float64) for p in pre],
                                   2 * (out - hr) / out.size, "replicate")
    # Adam's first step (beta2 = 0.999, eps = 1e-8): lr * g / (|g| + eps / sqrt(1 - beta2)), about lr * sign(g)
    # (0 where a unit's ReLU is off for the whole batch)
    after = _weights(net)
    moved = []
    for name, grad in zip(PARAM_NAMES, grads):
        update = after[name] - before[name]
        np.testing.assert_allclose(update, -0.001 * grad / (np.abs(grad) + 1e-8 / np.sqrt(0.001)), rtol=0,
                                   atol=1e-6, err_msg=name)
        moved.append(np.abs(update).ravel() > 5e-4)
    assert np.concatenate(moved).mean() > 0.3
    assert step(lr, hr) < loss  # the same batch again: the update went downhill


def test_checkpoints_keep_the_newest_and_resume_skips_an_unreadable_one(inputs, tmp_path):
    from src.train import checkpoints
    from src.train.step import build_model

    cfg = _cfg(inputs)
    net, optimizer, _ = build_model(cfg, total_steps=10)
    ckpt_dir = str(tmp_path / "ckpt_0")
    entries = checkpoints.state_entries(net, optimizer)
    assert [e["name"] for e in entries][:6] == list(PARAM_NAMES) and len({e["name"] for e in entries}) == len(entries)
    saved = {}
    for step in (2, 4, 6):
        for param in net.trainable_params():
            param.set_data(param + 0.5)
        saved[step] = _weights(net)
        checkpoints.save(ckpt_dir, entries, checkpoints.checkpoint_meta(cfg, step, 10), keep=2)
    checkpoints.save(ckpt_dir, entries, checkpoints.checkpoint_meta(cfg, 6, 10), "srcnn-best.ckpt", keep=2)
    assert [(s, p.rsplit("/", 1)[-1]) for s, p in checkpoints.list_checkpoints(ckpt_dir)] == [
        (4, "srcnn-4.ckpt"), (6, "srcnn-6.ckpt")]
    assert (tmp_path / "ckpt_0" / "srcnn-best.ckpt").is_file()
    (tmp_path / "ckpt_0" / ".tmp_srcnn-8.ckpt").write_bytes(b"partial")
    checkpoints.remove_temporaries(ckpt_dir)
    assert not list((tmp_path / "ckpt_0").glob(".tmp_*"))

    (tmp_path / "ckpt_0" / "srcnn-6.ckpt").write_bytes(b"not a checkpoint")  # damaged newest
    params = list(net.get_parameters()) + list(optimizer.get_parameters())
    lines = []
    assert checkpoints.load_latest(ckpt_dir, params, 10, lines.append) == (4, f"{ckpt_dir}/srcnn-4.ckpt")
    assert len(lines) == 1 and lines[0].startswith(f"warning: skipping unreadable checkpoint {ckpt_dir}/srcnn-6.ckpt")
    restored = _weights(net)
    for name in PARAM_NAMES:
        np.testing.assert_array_equal(restored[name], saved[4][name])
    with pytest.raises(UserError, match="belongs to a run of 10 steps, this run has 20"):
        checkpoints.load_latest(ckpt_dir, params, 20, lines.append)
    assert checkpoints.load_latest(str(tmp_path / "none"), params, 10) is None


def _reference_y(weights, lr_up):
    from src.protocol.degradation import to_uint8

    out, _, _ = srcnn_float64(weights, lr_up[None, None], "replicate")
    return to_uint8(out[0, 0])


def test_validation_scores_the_current_weights_as_the_protocol_does(inputs):
    from src.protocol.degradation import prepare_pair, to_uint8
    from src.protocol.image_io import read_image
    from src.protocol.metrics import psnr, ssim
    from src.train.step import build_model
    from src.train.validation import build_validator
    import mindspore as ms

    cfg = _cfg(inputs, f"--validation_path={inputs['val']}")
    net, _, _ = build_model(cfg, total_steps=1)
    validate = build_validator(cfg, net)
    for param in net.trainable_params():  # changed after the validator is built: it scores the current ones
        param.set_data(param * 0.9)
    result = validate()
    weights = _weights(net)
    expected = {"psnr": [], "ssim": [], "bicubic": []}
    for name in ("a", "b"):
        hr_y, lr_up = prepare_pair(read_image(f"{inputs['val']}/{name}.png"), 2)
        sr_y = _reference_y(weights, lr_up)
        expected["psnr"].append(psnr(sr_y, hr_y, shave_border=2))
        expected["ssim"].append(ssim(sr_y, hr_y, shave_border=2))
        expected["bicubic"].append(psnr(to_uint8(lr_up), hr_y, shave_border=2))
        if name == "a":
            first = (hr_y, sr_y)
    assert result.psnr == pytest.approx(np.mean(expected["psnr"]), abs=0.02)
    assert result.ssim == pytest.approx(np.mean(expected["ssim"]), abs=1e-3)
    assert result.bicubic_psnr == pytest.approx(np.mean(expected["bicubic"]), abs=1e-9)
    name, sr_y, hr_y = result.image
    assert name == "a" and sr_y.dtype == np.uint8
    np.testing.assert_array_equal(hr_y, first[0])
    assert np.abs(sr_y.astype(int) - first[1]).max() <= 1

    for param in net.trainable_params():  # a second validation (its degraded pairs cached) scores new weights:
        if param.name.startswith("conv3"):  # a constant 0.5 output
            param.set_data(ms.Tensor(np.full(param.shape, 0.5 if "bias" in param.name else 0.0, np.float32)))
    again = validate()
    hr_y, lr_up = prepare_pair(read_image(f"{inputs['val']}/a.png"), 2)
    assert again.image[0] == "a" and np.array_equal(again.image[2], hr_y)
    assert np.all(again.image[1] == 128)  # uint8(0.5 * 255)
    assert again.psnr == pytest.approx(np.mean([psnr(np.full_like(hr_y, 128), hr_y, shave_border=2) for hr_y in
                                                [prepare_pair(read_image(f"{inputs['val']}/{n}.png"), 2)[0]
                                                 for n in ("a", "b")]]), abs=1e-9)
    assert again.bicubic_psnr == result.bicubic_psnr

    held = build_validator(_cfg(inputs, f"--validation_path={inputs['val']}", "--holdout_images=b"), net)()
    assert held.image[0] == "b"
    with pytest.raises(UserError, match="holdout_images: no usable image named c in validation_path"):
        build_validator(_cfg(inputs, f"--validation_path={inputs['val']}", "--holdout_images=c"), net)


def read_events(folder):
    """[(file name, [Event])] of the TensorBoard event files in ``folder``, in TensorBoard's (name) order,
    parsed from the TFRecord framing (length, its CRC, data, its CRC)."""
    from tensorboardX.proto.event_pb2 import Event

    files = []
    for path in sorted(glob.glob(f"{folder}/events.out.tfevents.*")):
        data, offset, events = open(path, "rb").read(), 0, []
        while offset < len(data):
            (length,) = struct.unpack("<Q", data[offset:offset + 8])
            event = Event()
            event.ParseFromString(data[offset + 12:offset + 12 + length])
            events.append(event)
            offset += 12 + length + 4
        assert offset == len(data), path  # no partial record
        files.append((path.rsplit("/", 1)[-1], events))
    return files


def visible_scalars(files):
    """{tag: [(step, value)]} as TensorBoard shows them: a SessionLog START at step s hides what earlier
    files logged from step s on."""
    from tensorboardX.proto.event_pb2 import SessionLog

    shown = {}
    for _, events in files:
        for event in events:
            if event.HasField("session_log") and event.session_log.status == SessionLog.START:
                shown = {tag: [(s, v) for s, v in points if s < event.step] for tag, points in shown.items()}
            for value in event.summary.value:
                if value.HasField("simple_value"):
                    shown.setdefault(value.tag, []).append((event.step, value.simple_value))
    return shown


def _logged(out, key):
    records = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    return [(r["step"], float(np.float32(r[key]))) for r in records if key in r]


def test_the_loop_writes_events_equal_to_the_log_and_a_resume_hides_the_steps_it_redoes(inputs, tmp_path):
    from src.protocol.degradation import prepare_pair
    from src.protocol.image_io import read_image
    from src.train.trainer import Trainer

    out = tmp_path / "run"
    flags = [f"--output_path={out}", "--train_steps=12", "--log_interval=4", "--val_interval=6",
             "--save_checkpoint_steps=6", f"--validation_path={inputs['val']}"]
    trainer = Trainer(_cfg(inputs, *flags))
    trainer.run()
    trainer.release()
    files = read_events(out / "tensorboard")
    assert len(files) == 1 and files[0][1][0].file_version == "brain.Event:2"
    shown = visible_scalars(files)
    assert shown["train/loss"] == _logged(out, "loss") and [s for s, _ in shown["train/loss"]] == [4, 8, 12]
    assert shown["train/learning_rate"] == _logged(out, "lr")
    assert shown["validation/psnr"] == _logged(out, "val_psnr") and [s for s, _ in _logged(out, "val_psnr")] == [6, 12]
    assert shown["validation/bicubic_psnr"] == _logged(out, "val_bicubic_psnr")
    assert [s for s, _ in shown["validation/ssim"]] == [6, 12] and all(0 < v <= 1 for _, v in shown["validation/ssim"])

    # the image of the last validation: the first image's Y, the final weights' output beside the truth
    images = [(e.step, v) for e in files[0][1] for v in e.summary.value if v.HasField("image")]
    assert [(step, v.tag) for step, v in images] == [(6, "validation/sr_vs_truth"), (12, "validation/sr_vs_truth")]
    with Image.open(io.BytesIO(images[-1][1].image.encoded_image_string)) as shown_image:
        pixels = np.asarray(shown_image.convert("L"))
    hr_y, lr_up = prepare_pair(read_image(f"{inputs['val']}/a.png"), 2)
    height, width = hr_y.shape
    assert pixels.shape == (height, 2 * width + 4)
    np.testing.assert_array_equal(pixels[:, width + 4:], hr_y)
    import mindspore as ms

    final = {k: v.asnumpy() for k, v in ms.load_checkpoint(str(out / "ckpt_0" / "srcnn-final.ckpt")).items()
             if k in PARAM_NAMES}
    assert np.abs(pixels[:, :width].astype(int) - _reference_y(final, lr_up)).max() <= 1

    # a run stopped after step 6's checkpoint, resumed: its new event file hides the first file's steps 7-12
    for name in ("srcnn-12.ckpt", "srcnn-final.ckpt"):
        (out / "ckpt_0" / name).unlink()
    trainer = Trainer(_cfg(inputs, *flags, "--resume=true"))
    trainer.run()
    trainer.release()
    files = read_events(out / "tensorboard")
    assert len(files) == 2
    first_event = files[1][1][1]
    assert first_event.step == 7 and first_event.HasField("session_log")
    shown = visible_scalars(files)
    for key, tag in (("loss", "train/loss"), ("lr", "train/learning_rate"), ("val_psnr", "validation/psnr")):
        assert shown[tag] == _logged(out, key), tag
    # without the purge, step 8 would show twice: the resumed run's loss averages 2 steps, the first run's 4
    raw = [(e.step, v.simple_value) for _, events in files for e in events for v in e.summary.value
           if v.tag == "train/loss"]
    assert [s for s, _ in raw] == [4, 8, 12, 8, 12] and raw[1][1] != raw[3][1]

    # tensorboard=false: no event folder
    quiet = tmp_path / "quiet"
    trainer = Trainer(_cfg(inputs, f"--output_path={quiet}", "--train_steps=2", "--tensorboard=false"))
    trainer.run()
    trainer.release()
    assert (quiet / "train_log.jsonl").is_file() and not (quiet / "tensorboard").exists()
