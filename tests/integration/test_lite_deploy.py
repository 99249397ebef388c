"""The C++ harness runs real models on this CPU through MindSpore Lite 2.0.0.

export.py's ONNX model -> scripts/convert_for_lite.py (the Lite converter, in the Python 3.7 venv that
scripts/fetch_mindspore_lite.sh makes) -> ascend310_infer/out/main -> postprocess.py, all driven by
scripts/run_infer_310.sh as a user runs it: the Set5 PSNR equals eval.py's for the shipped x2/x3/x4
checkpoints and for a 9-5-5 network converted from a MAT-file written here, with dynamic and static
models, and the log shows the C++ harness ran. Then the harness's own checks, calling the binary directly.
The wheel, the converter venv and the pip downloads are cached in ~/.cache/srcnn between runs. On a
machine with no Python 3.7 (the converter's) the tests needing the converter skip, with the fetch script's
error line as the reason.
"""
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import one_line_error, read_json, run_entry
from tests.integration.test_convert_official_weights import write_mat

REPO = Path(__file__).resolve().parents[2]
HARNESS = REPO / "ascend310_infer" / "out" / "main"
HARNESS_LINE = "ascend310_infer/out/main: MindSpore Lite C++ harness, model "
AGREE_DB = 0.01
TIMEOUT = 900
NO_PYTHON37 = 3  # fetch_mindspore_lite.sh --converter's exit status when no Python 3.7 is found


def run(args, env=None, check=True, cwd=REPO, timeout=TIMEOUT):
    return run_entry(args, env, check, cwd, timeout)


def fetch_env():
    return dict(os.environ, PYTHON=sys.executable)  # the pip that downloads the wheel: this interpreter's


@pytest.fixture(scope="module")
def converter_python():
    proc = run(["scripts/fetch_mindspore_lite.sh", "--converter"], env=fetch_env(), check=False)
    if proc.returncode == NO_PYTHON37:
        pytest.skip(proc.stderr.strip().splitlines()[-1])
    assert proc.returncode == 0, proc.stderr[-3000:]
    return Path(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def harness():
    if "MS_LITE_HOME" in os.environ:
        home = os.environ["MS_LITE_HOME"]
    else:
        home = run(["scripts/fetch_mindspore_lite.sh"], env=fetch_env()).stdout.strip().splitlines()[-1]
    run(["ascend310_infer/build.sh"], env=dict(os.environ, MS_LITE_HOME=home))
    return HARNESS


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("lite")


@pytest.fixture(scope="module")
def set5(datasets_dir):
    return datasets_dir / "Set5"


def export_onnx(checkpoint, name, size=None):
    args = ["export.py", f"--checkpoint_path={checkpoint}", "--file_format=ONNX", f"--file_name={name}"]
    if size:
        args += [f"--image_height={size[0]}", f"--image_width={size[1]}"]
    path = Path(run(args).stdout.strip().splitlines()[-1])
    assert path.is_file()
    return path


@pytest.fixture(scope="module")
def checkpoint_955(work):
    """A 9-5-5 network (n1=64, n2=32) written as the authors' MAT-file and converted: centre taps of filter
    0 pass the image through, plus small random filters, so its PSNR is in the realistic range."""
    rng = np.random.default_rng(955)
    k1, k2, k3 = (rng.normal(0, 0.001, shape) for shape in ((64, 9, 9), (32, 64, 5, 5), (32, 5, 5)))
    k1[0, 4, 4] += 1.0
    k2[0, 0, 2, 2] += 1.0
    k3[0, 2, 2] += 1.0
    b1, b2 = rng.normal(0, 0.001, 64), rng.normal(0, 0.001, 32)
    mat, ckpt = work / "x2.mat", work / "srcnn_955_x2.ckpt"
    write_mat(mat, k1, b1, k2, b2, k3, 0.0)
    run(["src/convert_official_weights.py", f"--mat_path={mat}", f"--output={ckpt}", "--scale=2"])
    return ckpt


@pytest.fixture(scope="module")
def eval_result(set5, work):
    """eval.py's Set5 result for (checkpoint, scale), run once for each."""
    results = {}

    def result(checkpoint, scale):
        key = (str(checkpoint), scale)
        if key not in results:
            path = work / f"eval_{len(results)}.json"
            run(["eval.py", f"--data_path={set5}", f"--checkpoint_path={checkpoint}", f"--scale={scale}",
                 f"--output_json={path}"])
            results[key] = read_json(path)
        return results[key]

    return result


# Every shipped scale, dynamic and static input sizes, 9-1-5 and 9-5-5: (id, checkpoint, scale, static size or
# None). The shipped x2 runs static only (a dynamic x2 would repeat the path of x3, x4 and 955_x2).
CASES = [
    ("x3", "pretrained/srcnn_x3.ckpt", 3, None),
    ("x4", "pretrained/srcnn_x4.ckpt", 4, None),
    ("x2_static", "pretrained/srcnn_x2.ckpt", 2, (512, 512)),
    ("955_x2", "9-5-5", 2, None),
]


@pytest.mark.parametrize("case, checkpoint, scale, size", CASES, ids=[c[0] for c in CASES])
def test_harness_on_set5_equals_eval(case, checkpoint, scale, size, harness, converter_python, set5, work,
                                     eval_result, request):
    if checkpoint == "9-5-5":
        checkpoint = request.getfixturevalue("checkpoint_955")
    model = export_onnx(checkpoint, work / f"{case}", size)
    out = work / f"infer_{case}"
    env = dict(os.environ, DEVICE_TYPE="CPU", SCALE=str(scale), PYTHON=sys.executable)
    env.pop("INFER_RUNNER", None)  # the default: the C++ harness
    chain = run(["scripts/run_infer_310.sh", model, set5, out], env=env)
    infer_log = (out / "infer.log").read_text()
    assert infer_log.startswith(HARNESS_LINE), infer_log  # the C++ program ran, not the Python stand-in
    side = 512 // scale * scale  # Set5's largest image after modcrop; a dynamic model is resized to it
    running = f"[1,1,{side},{side}]"
    assert f"running {running} on CPU, 5 input files" in infer_log.splitlines()[0]
    assert "5 images, average latency" in chain.stdout and "converted " in chain.stdout
    assert (out / "lite_model" / f"{case}.mindir").is_file()
    harness_result = read_json(out / "result.json")

    reference = eval_result(checkpoint, scale)
    print(f"\nSet5 x{scale} {case}: eval.py {reference['psnr']:.4f} dB, C++ harness {harness_result['psnr']:.4f} dB")
    assert [i["name"] for i in harness_result["images"]] == [i["name"] for i in reference["images"]]
    assert reference["psnr"] > reference["bicubic_psnr"] + (1 if case.startswith("x") else -1)
    assert abs(harness_result["psnr"] - reference["psnr"]) <= AGREE_DB
    assert abs(harness_result["ssim"] - reference["ssim"]) <= 1e-4


def test_reference_runner_refuses_onnx(work, set5):
    model = work / "model.onnx"
    model.write_bytes(b"x")
    proc = run(["scripts/run_infer_310.sh", model, set5, work / "ref"], check=False,
               env=dict(os.environ, INFER_RUNNER="reference"))
    assert proc.returncode == 2
    assert "INFER_RUNNER=reference runs MINDIR models only" in proc.stderr.splitlines()[0]


# --- the harness's own checks ----------------------------------------------------


@pytest.fixture(scope="module")
def lite_models(converter_python, work):
    """A converted dynamic and a static 24x20 SRCNN, and a converted model with a [1,3,8,8] input (a Relu)."""
    import onnx
    from onnx import TensorProto, helper

    from tests.conftest import save_near_identity_checkpoint

    ckpt = save_near_identity_checkpoint(work / "small.ckpt")
    models = {}
    for name, size in (("dynamic", None), ("static", (24, 20))):
        onnx_path = export_onnx(ckpt, work / f"small_{name}", size)
        models[name] = work / f"small_{name}.lite.mindir"
        shape_file = work / f"small_{name}.shape"
        proc = run([converter_python, "scripts/convert_for_lite.py", f"--onnx_path={onnx_path}",
                    f"--output_file={models[name]}", f"--shape_file={shape_file}"])
        expected = "dynamic" if size is None else "24 20"
        assert proc.stdout.strip().splitlines()[-1] == expected and shape_file.read_text() == expected + "\n"
        models[f"{name}_onnx"] = onnx_path
    graph = helper.make_graph([helper.make_node("Relu", ["input"], ["output"])], "rgb",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, 8, 8])])
    rgb = work / "rgb.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)]), rgb)
    run([converter_python, "-c", "import sys, mindspore_lite as l; c = l.Converter(); "
         "c.save_type = l.ModelType.MINDIR; c.convert(l.FmkType.ONNX, sys.argv[1], sys.argv[2])",
         rgb, work / "rgb.lite"])  # the converter adds .mindir
    models["rgb"] = work / "rgb.lite.mindir"
    models["rgb_onnx"] = rgb
    return models


def call(*args):
    env = {k: v for k, v in os.environ.items() if k != "GLOG_v"}  # the harness's default: Lite's log off
    return run([HARNESS, *args, "--device_type=CPU"], env=env, check=False, timeout=120)


@pytest.fixture()
def inputs(tmp_path):
    """Two 24x20 inputs, with what MindSpore's network gives for them."""
    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(5)
    for name in ("b_img", "a_img"):
        rng.random((1, 1, 24, 20), dtype=np.float32).tofile(folder / f"{name}.bin")
    return folder


def onnxruntime_outputs(onnx_path, folder, shape):
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    return {p.stem: session.run(None, {"input": np.fromfile(p, np.float32).reshape(shape)})[0]
            for p in folder.glob("*.bin")}


def test_static_model_smaller_than_the_images_is_refused(harness, lite_models, set5, work):
    """... and a second run reuses the conversion, and reads the same input size from it."""
    env = dict(os.environ, DEVICE_TYPE="CPU", PYTHON=sys.executable)
    out = work / "infer_small"
    lite = out / "lite_model" / "small_static.mindir"
    for attempt in ("first", "again"):
        proc = run(["scripts/run_infer_310.sh", lite_models["static_onnx"], set5, out], env=env, check=False)
        assert proc.returncode == 1
        assert "model input size 24x20" in proc.stdout
        assert "larger than the model input 24x20" in proc.stderr, proc.stderr
        assert not (out / "result.json").exists()
        if attempt == "first":
            assert "converted " in proc.stdout
            stamp = lite.stat().st_mtime_ns
        else:
            assert "is already converted from" in proc.stdout and lite.stat().st_mtime_ns == stamp


def test_onnx_file_the_converter_cannot_read(converter_python, set5, tmp_path):
    model = tmp_path / "garbage.onnx"
    model.write_bytes(b"not an ONNX model\n")
    env = {k: v for k, v in os.environ.items() if k != "GLOG_v"}
    env.update(DEVICE_TYPE="CPU", PYTHON=sys.executable)
    proc = run(["scripts/run_infer_310.sh", model, set5, tmp_path / "out"], env=env, check=False)
    assert proc.returncode == 2
    one_line_error(proc, f"the MindSpore Lite converter cannot convert {model} (")
    assert not list((tmp_path / "out").rglob("*.mindir")) and not (tmp_path / "out" / "preprocess").exists()


@pytest.mark.parametrize("kind", ["static", "dynamic"])
def test_harness_output_matches_onnxruntime(kind, harness, lite_models, inputs, tmp_path):
    result = tmp_path / "nested" / "result"
    shape_flag = ["--input_shape=24,20"] if kind == "dynamic" else []
    proc = call(f"--mindir_path={lite_models[kind]}", f"--input_path={inputs}", f"--result_path={result}",
                *shape_flag)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(HARNESS_LINE) and "2 images, average latency" in proc.stdout
    assert proc.stderr == ""  # Lite's own log is off unless GLOG_v is set
    expected = onnxruntime_outputs(lite_models[f"{kind}_onnx"], inputs, (1, 1, 24, 20))
    assert sorted(p.name for p in result.iterdir()) == ["a_img_0.bin", "b_img_0.bin"]
    for stem, want in expected.items():
        got = np.fromfile(result / f"{stem}_0.bin", np.float32).reshape(want.shape)
        np.testing.assert_allclose(got, want, rtol=0, atol=2e-5)  # border pixels included


def test_model_input_must_be_one_channel_float32(harness, lite_models, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    np.zeros((1, 3, 8, 8), np.float32).tofile(folder / "x.bin")
    proc = call(f"--mindir_path={lite_models['rgb']}", f"--input_path={folder}", f"--result_path={tmp_path / 'o'}")
    one_line_error(proc, str(lite_models["rgb"]), "[1,3,8,8] float32", "expected float32 [1,1,H,W]")


def test_converter_refuses_a_model_that_is_not_srcnn_shaped(converter_python, lite_models, tmp_path):
    out = tmp_path / "rgb.mindir"
    env = {k: v for k, v in os.environ.items() if k != "GLOG_v"}  # Lite's log off: the one error line only
    proc = run([converter_python, "scripts/convert_for_lite.py", f"--onnx_path={lite_models['rgb_onnx']}",
                f"--output_file={out}", f"--shape_file={tmp_path / 'rgb.shape'}"], env=env, check=False)
    assert proc.returncode == 2
    one_line_error(proc, f"the model converted from {lite_models['rgb_onnx']} has input [1, 3, 8, 8]",
                   "expected float32 [N,1,H,W]")
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no model, no size, no temporary folder


def test_missing_and_truncated_models(harness, lite_models, inputs, tmp_path):
    missing = tmp_path / "none.mindir"
    one_line_error(call(f"--mindir_path={missing}", f"--input_path={inputs}"), str(missing), "does not exist")
    truncated = tmp_path / "truncated.mindir"
    data = lite_models["static"].read_bytes()
    truncated.write_bytes(data[:len(data) // 2])
    proc = call(f"--mindir_path={truncated}", f"--input_path={inputs}", f"--result_path={tmp_path / 'o'}")
    one_line_error(proc, f"cannot build model {truncated} on CPU", "truncated")
    assert not list((tmp_path / "o").glob("*.bin"))


def test_input_of_the_wrong_size(harness, lite_models, inputs, tmp_path):
    np.zeros((1, 1, 24, 21), np.float32).tofile(inputs / "c_wrong.bin")
    proc = call(f"--mindir_path={lite_models['static']}", f"--input_path={inputs}", f"--result_path={tmp_path / 'o'}")
    one_line_error(proc, "c_wrong.bin", str(24 * 21 * 4), str(24 * 20 * 4), "[1,1,24,20]")
    proc = call(f"--mindir_path={lite_models['dynamic']}", f"--input_path={inputs}",
                f"--result_path={tmp_path / 'o'}", "--input_shape=24,21")
    one_line_error(proc, "a_img.bin", str(24 * 21 * 4), str(24 * 20 * 4), "[1,1,24,21]")


@pytest.mark.parametrize("flag, needle", [
    (None, "dynamic input [-1,1,-1,-1] float32: give its size as --input_shape=H,W"),
    ("--input_shape=24,0", "--input_shape must be H,W"),
    ("--input_shape=24", "--input_shape must be H,W"),
])
def test_dynamic_model_needs_a_valid_input_shape(flag, needle, harness, lite_models, inputs, tmp_path):
    args = [f"--mindir_path={lite_models['dynamic']}", f"--input_path={inputs}", f"--result_path={tmp_path}"]
    one_line_error(call(*args, *([flag] if flag else [])), needle)


def test_static_model_with_another_input_shape(harness, lite_models, inputs, tmp_path):
    proc = call(f"--mindir_path={lite_models['static']}", f"--input_path={inputs}", f"--result_path={tmp_path}",
                "--input_shape=32,32")
    one_line_error(proc, "fixed input [1,1,24,20]", "--input_shape is 32,32")


@pytest.mark.parametrize("where", ["a file", "below a file", "read-only"])
def test_result_folder_that_cannot_be_written(where, harness, lite_models, inputs, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = {"a file": blocker, "below a file": blocker / "sub", "read-only": Path("/proc")}[where]
    proc = call(f"--mindir_path={lite_models['static']}", f"--input_path={inputs}", f"--result_path={result}")
    one_line_error(proc, str(result))
    assert proc.stdout == ""  # refused before the model is loaded
