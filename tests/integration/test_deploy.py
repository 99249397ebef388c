"""Deployment paths agree: eval.py, the ONNX export (eval_onnx.py), the dynamic MINDIR (GraphCell) and the
Ascend 310 chain (preprocess -> reference runner -> postprocess, via scripts/run_infer_310.sh) give the same
Set5 x2 PSNR; static exports reject other sizes; test.py's tiled and whole-image outputs are identical.

Every entry point runs as a real subprocess. One small checkpoint (n1=16, n2=8) is made here: SRCNN's
default init with each layer's filter 0 turned into a pass-through plus small noise, so its output is close
to the bicubic input and the PSNRs are in the realistic 30 dB range, where a numerical difference between
the paths would show.
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import (
    one_line_error,
    read_json,
    run_entry,
    save_near_identity_checkpoint,
)

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 300
AGREE_DB = 0.01


def run(args, env=None, check=True, cwd=REPO):
    return run_entry(args, env, check, cwd, TIMEOUT)


@pytest.fixture(scope="module")
def set5(datasets_dir):
    return datasets_dir / "Set5"


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("deploy")


@pytest.fixture(scope="module")
def checkpoint(work):
    return save_near_identity_checkpoint(work / "srcnn_x2.ckpt")


def export(checkpoint, file_format, name, size=None):
    args = ["export.py", f"--checkpoint_path={checkpoint}", f"--file_format={file_format}", f"--file_name={name}"]
    if size:
        args += [f"--image_height={size[0]}", f"--image_width={size[1]}"]
    proc = run(args)
    path = Path(proc.stdout.strip().splitlines()[-1])
    assert path.is_file(), proc.stdout
    return path


@pytest.fixture(scope="module")
def models(checkpoint, work):
    return {
        "onnx": export(checkpoint, "ONNX", work / "dynamic"),
        "mindir": export(checkpoint, "MINDIR", work / "dynamic"),
        "onnx_static": export(checkpoint, "ONNX", work / "static_32x40", (32, 40)),
        # Set5's largest image is 512x512: one static model for the whole 310 chain
        "mindir_static": export(checkpoint, "MINDIR", work / "static_512", (512, 512)),
    }


# ------------------------------------------------------------------ export

def test_exports_have_the_expected_shapes(models):
    import onnx

    dynamic = onnx.load(str(models["onnx"]))
    dims = lambda value: [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]  # noqa: E731
    assert [i.name for i in dynamic.graph.input] == ["input"]
    assert [o.name for o in dynamic.graph.output] == ["output"]
    assert dims(dynamic.graph.input[0]) == ["batch", 1, "height", "width"]
    assert dims(dynamic.graph.output[0]) == ["batch", 1, "height", "width"]
    # replicate padding as edge slices + concatenations (Lite's converter loses Pad's edge mode), per layer
    ops = [n.op_type for n in dynamic.graph.node]
    assert "Pad" not in ops and ops.count("Conv") == 3
    assert ops[:ops.index("Conv")] == ["Slice", "Slice", "Concat", "Slice", "Slice", "Concat"]
    assert [n.op_type for n in dynamic.graph.node if n.op_type == "Concat"] == ["Concat"] * 4  # conv1, conv3
    static = onnx.load(str(models["onnx_static"]))
    assert dims(static.graph.input[0]) == [1, 1, 32, 40]
    assert dims(static.graph.output[0]) == [1, 1, 32, 40]


def test_dynamic_onnx_runs_at_several_sizes_and_batches(models, capfd):
    import onnxruntime as ort

    ort.set_default_logger_severity(2)  # warnings on: a shape mismatch with the declared output would log one
    session = ort.InferenceSession(str(models["onnx"]), providers=["CPUExecutionProvider"])
    for shape in ((1, 1, 24, 40), (2, 1, 53, 31), (1, 1, 7, 9)):
        x = np.random.default_rng(0).random(shape, dtype=np.float32)
        assert session.run(None, {"input": x})[0].shape == shape
    assert "onnxruntime" not in capfd.readouterr().err


def test_air_needs_ascend(checkpoint, work):
    proc = run(["export.py", f"--checkpoint_path={checkpoint}", "--file_format=AIR", f"--file_name={work / 'x'}"],
               check=False)
    one_line_error(proc, "file_format=AIR needs device_target=Ascend (")
    assert not list(work.glob("x*"))


# ------------------------------------------------------------------ the paths agree

def test_deployment_paths_agree_on_set5(checkpoint, models, set5, work):
    outputs = {}
    run(["eval.py", f"--data_path={set5}", f"--checkpoint_path={checkpoint}", "--scale=2",
         f"--output_json={work / 'eval.json'}"])
    outputs["eval.py"] = read_json(work / "eval.json")

    onnx_run = run(["eval_onnx.py", f"--data_path={set5}", f"--onnx_path={models['onnx']}", "--scale=2",
                    f"--output_json={work / 'onnx.json'}"])
    outputs["eval_onnx.py"] = read_json(work / "onnx.json")
    assert onnx_run.stdout.strip().splitlines()[-1].startswith("result {'PSNR': ")

    run(["scripts/run_infer_reference.py", f"--mindir_path={models['mindir']}", f"--data_path={set5}",
         "--scale=2", f"--output_json={work / 'mindir.json'}"])
    outputs["MINDIR GraphCell"] = read_json(work / "mindir.json")

    env = dict(os.environ, INFER_RUNNER="reference", PYTHON=sys.executable, SCALE="2")
    chain = run(["scripts/run_infer_310.sh", models["mindir_static"], set5, work / "infer_310"], env=env)
    assert "5 images, average latency" in chain.stdout
    outputs["310 chain"] = read_json(work / "infer_310" / "result.json")

    reference = outputs["eval.py"]
    figures = ", ".join(f"{name} {out['psnr']:.4f} dB / {out['ssim']:.5f}" for name, out in outputs.items())
    print(f"\nSet5 x2 PSNR/SSIM: {figures}")
    assert 25 < reference["psnr"] < 40  # the near-identity network is close to bicubic
    for name, out in outputs.items():
        assert [i["name"] for i in out["images"]] == [i["name"] for i in reference["images"]], name
        assert abs(out["psnr"] - reference["psnr"]) <= AGREE_DB, (name, figures)
        assert abs(out["ssim"] - reference["ssim"]) <= 1e-4, (name, figures)
        assert out["bicubic_psnr"] == pytest.approx(reference["bicubic_psnr"], abs=1e-9), name


# ------------------------------------------------------------------ static models and bad files

def test_static_onnx_rejects_other_sizes(models, set5):
    proc = run(["eval_onnx.py", f"--data_path={set5}", f"--onnx_path={models['onnx_static']}"], check=False)
    one_line_error(proc, "baby", "32x40", "512x512", str(models["onnx_static"]))


@pytest.mark.parametrize("args, needles", [
    (["--input_path=x"], ["--mindir_path=FILE is required"]),
    (["--mindir_path=m.mindir"], ["give exactly one of --input_path=DIR (.bin files) and --data_path=DIR"]),
    (["--mindir_path=m.mindir", "--input_path=x", "--device_type=GPU"],
     ["config key 'device_type' must be one of Ascend, CPU, got 'GPU' (from --device_type=GPU)"]),
    (["--mindir_path=m.mindir", "--input_path=x", "--device_id=-1"], ["config key 'device_id' must be >= 0"]),
    (["--mindir_path=m.mindir", "--input_path=x", "--scale=5"], ["config key 'scale' must be one of 2, 3, 4"]),
    (["--mindir_path=m.mindir", "--input_path=x", "--bogus=1"], ["unknown config key 'bogus'"]),
    (["--mindir_path=m.mindir", "--input_path=x", "--lr=0.1"],
     ["config key 'lr' is not used by run_infer_reference.py (it is a key of train.py"]),
    (["--mindir_path=m.mindir", "--print_input_shape", "--input_path"], ["option --input_path needs a value"]),
])
def test_reference_runner_flags_are_checked_by_the_config_parser(args, needles):
    proc = run(["scripts/run_infer_reference.py", *args], check=False)
    one_line_error(proc, *needles)
    assert proc.returncode == 2 and proc.stdout == ""


def test_static_mindir_rejects_other_sizes(models, work):
    inputs = work / "wrong_size"
    inputs.mkdir()
    np.zeros((1, 1, 64, 64), np.float32).tofile(inputs / "img.bin")
    proc = run(["scripts/run_infer_reference.py", f"--mindir_path={models['mindir_static']}",
                f"--input_path={inputs}", f"--result_path={work / 'wrong_out'}"], check=False)
    line = one_line_error(proc, "img.bin", "16384 bytes", "1048576 bytes", "[1,1,512,512]")
    assert not list((work / "wrong_out").glob("*_0.bin")), line


def test_eval_onnx_rejects_a_file_that_is_not_a_model(checkpoint, set5):
    proc = run(["eval_onnx.py", f"--data_path={set5}", f"--onnx_path={checkpoint}"], check=False)
    one_line_error(proc, str(checkpoint), "not an ONNX model")


def test_eval_onnx_imports_no_mindspore(models, set5, work):
    code = ("import runpy, sys\n"
            f"sys.argv = ['eval_onnx.py', '--data_path={set5}', '--onnx_path={models['onnx']}']\n"
            "try:\n    runpy.run_path('eval_onnx.py', run_name='__main__')\n"
            "except SystemExit as stop:\n    assert not stop.code, stop.code\n"
            "print('MINDSPORE', sorted(m for m in sys.modules if m.split('.')[0] == 'mindspore'))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    assert "result {'PSNR'" in proc.stdout
    assert proc.stdout.strip().splitlines()[-1] == "MINDSPORE []"


def test_onnx_gpu_script_falls_back_to_cpu(models, set5, work):
    env = dict(os.environ, PYTHON=sys.executable, LOG_DIR=str(work / "onnx_gpu_logs"))
    proc = run(["scripts/run_onnx_eval_gpu.sh", set5, "0", models["onnx"]], env=env)
    assert proc.stdout.splitlines()[1].startswith("result {'PSNR': ")
    result = read_json(work / "onnx_gpu_logs" / "onnx_eval_gpu.json")
    if "CUDAExecutionProvider" not in result["providers"]:
        assert proc.stderr.count("warning: CUDAExecutionProvider is not available, running on CPU") == 1


# ------------------------------------------------------------------ test.py

def _crop(src, dest, box, mode=None):
    img = Image.open(src).crop(box)
    (img.convert(mode) if mode else img).save(dest)


@pytest.fixture(scope="module")
def lr_inputs(set5, work):
    folder = work / "lr"
    (folder / "nested" / "sub").mkdir(parents=True)
    _crop(set5 / "butterfly.png", folder / "a.b.c.png", (10, 20, 110, 90))  # 100x70 RGB
    _crop(set5 / "bird.png", folder / "nested" / "sub" / "g.png", (30, 40, 107, 101), "L")  # 77x61 gray
    return folder


def _pngs(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*.png"))}


def test_upscale_names_sizes_and_tiling(checkpoint, lr_inputs, work):
    outs = {}
    for tile in (0, 48):
        out = work / f"up_{tile}"
        run(["test.py", f"--checkpoint_path={checkpoint}", f"--input_path={lr_inputs}", f"--output_path={out}",
             "--scale=2", "--compare=true", f"--tile_size={tile}"])
        outs[tile] = _pngs(out)
    assert sorted(outs[0]) == ["a.b.c_compare_x2.png", "a.b.c_srcnn_x2.png",
                               "nested/sub/g_compare_x2.png", "nested/sub/g_srcnn_x2.png"]
    assert outs[0] == outs[48], "tiled and whole-image outputs differ"
    colour = Image.open(work / "up_0" / "a.b.c_srcnn_x2.png")
    gray = Image.open(work / "up_0" / "nested" / "sub" / "g_srcnn_x2.png")
    assert (colour.mode, colour.size) == ("RGB", (200, 140))
    assert (gray.mode, gray.size) == ("L", (154, 122))
    # 2 panels (bicubic | SRCNN) of 200 px + 3 gaps of 8; height: label 22 + image + x3 zoom of 64 + gaps
    assert Image.open(work / "up_0" / "a.b.c_compare_x2.png").size == (2 * 200 + 3 * 8, 8 + 22 + 140 + 8 + 192 + 8)


def test_upscale_single_file(checkpoint, lr_inputs, work):
    out = work / "single"
    run(["test.py", f"--checkpoint_path={checkpoint}", f"--input_path={lr_inputs / 'a.b.c.png'}",
         f"--output_path={out}", "--scale=3", "--override_checkpoint=true"])  # an x2 model asked for x3: explicit
    assert sorted(_pngs(out)) == ["a.b.c_srcnn_x3.png"]
    assert Image.open(out / "a.b.c_srcnn_x3.png").size == (300, 210)


def test_degrade_matches_eval_and_tiling(checkpoint, set5, work):
    run(["eval.py", f"--data_path={set5}", f"--checkpoint_path={checkpoint}", "--scale=2",
         f"--output_json={work / 'eval_degrade.json'}"])
    results, outs = {}, {}
    for tile in (0, 48):
        out = work / f"degrade_{tile}"
        proc = run(["test.py", f"--checkpoint_path={checkpoint}", f"--input_path={set5}", f"--output_path={out}",
                    "--scale=2", "--mode=degrade", "--compare=true", f"--tile_size={tile}",
                    f"--output_json={out / 'result.json'}"])
        assert "result {'PSNR': " in proc.stdout
        results[tile] = read_json(out / "result.json")
        outs[tile] = _pngs(out)
    assert outs[0] == outs[48], "tiled and whole-image outputs differ"
    expected = {i["name"]: i["psnr"] for i in read_json(work / "eval_degrade.json")["images"]}
    got = {i["name"]: i["psnr"] for i in results[0]["images"]}
    assert got == pytest.approx(expected, abs=1e-9)
    assert Image.open(work / "degrade_0" / "baby_srcnn_x2.png").size == (512, 512)
    # bicubic | SRCNN | ground truth, 512 px each, 4 gaps of 8
    assert Image.open(work / "degrade_0" / "baby_compare_x2.png").size == (3 * 512 + 4 * 8,
                                                                           8 + 22 + 512 + 8 + 192 + 8)


# ------------------------------------------------------------------ preprocess / postprocess

def test_preprocess_flattens_names_and_postprocess_needs_every_output(lr_inputs, work):
    too_small = run(["preprocess.py", f"--data_path={lr_inputs}", f"--output_path={work / 'pre_small'}",
                     "--scale=2", "--image_height=80", "--image_width=80"], check=False)
    one_line_error(too_small, "a.b.c.png", "70x100", "80x80")
    assert not (work / "pre_small" / "00_data").exists()

    pre = work / "pre"
    run(["preprocess.py", f"--data_path={lr_inputs}", f"--output_path={pre}", "--scale=2",
         "--image_height=72", "--image_width=128"])
    bins = sorted(p.name for p in (pre / "00_data").iterdir())
    assert bins == ["a.b.c.bin", "nested__sub__g.bin"]
    assert all((pre / "00_data" / b).stat().st_size == 72 * 128 * 4 for b in bins)
    meta = read_json(pre / "meta.json")
    assert (meta["scale"], meta["height"], meta["width"]) == (2, 72, 128)
    assert [(i["name"], i["height"], i["width"]) for i in meta["images"]] == [("a.b.c", 70, 100),
                                                                             ("nested/sub/g", 60, 76)]
    # the padded input keeps the protocol's LR in its top-left corner, edge-replicated beyond it
    x = np.fromfile(pre / "00_data" / "a.b.c.bin", np.float32).reshape(72, 128)
    assert np.array_equal(x[70:, :100], np.repeat(x[69:70, :100], 2, axis=0))

    results = work / "post_results"
    results.mkdir()
    np.fromfile(pre / "00_data" / "a.b.c.bin", np.float32).tofile(results / "a.b.c_0.bin")  # bicubic "model"
    missing = run(["postprocess.py", f"--data_path={lr_inputs}", f"--result_path={results}",
                   f"--preprocess_path={pre}"], check=False)
    one_line_error(missing, "nested/sub/g", "nested__sub__g_0.bin")
    np.fromfile(pre / "00_data" / "nested__sub__g.bin", np.float32).tofile(results / "nested__sub__g_0.bin")
    done = run(["postprocess.py", f"--data_path={lr_inputs}", f"--result_path={results}",
                f"--preprocess_path={pre}", f"--output_json={work / 'post.json'}"])
    result = read_json(work / "post.json")
    assert result["psnr"] == pytest.approx(result["bicubic_psnr"], abs=1e-9)  # the identity scores as bicubic
    assert done.stdout.strip().splitlines()[-1].startswith("result {'PSNR': ")


def test_test_py_rejects_two_inputs_with_one_output_name(lr_inputs, checkpoint, tmp_path):
    (tmp_path / "a.png").write_bytes((lr_inputs / "a.b.c.png").read_bytes())
    Image.open(lr_inputs / "a.b.c.png").save(tmp_path / "a.jpg")
    proc = run(["test.py", f"--checkpoint_path={checkpoint}", f"--input_path={tmp_path}",
                f"--output_path={tmp_path / 'out'}"], check=False)
    one_line_error(proc, "a.jpg", "a.png", "a_srcnn_x2.png")
    assert not (tmp_path / "out").exists()
