"""Smoke tests of the benchmark scripts: each runs a few tiny steps and prints the documented JSON fields.
Not timing tests: the figures are not checked, only that the scripts work and report what they promise."""
import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import randomize, rel_err, requires_compiler

REQUIRED_TRAIN = {"framework", "arch", "batch_size", "patch_size", "padding", "variant", "ms_per_step", "ms_p10",
                  "ms_p90", "mpix_per_s", "gflops_per_s"}
HAS_TORCH = importlib.util.find_spec("torch") is not None


def run(repo_root, script, *args, timeout=600):
    proc = subprocess.run([sys.executable, str(repo_root / "benchmarks" / script), *args], cwd=repo_root,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def json_lines(stdout):
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def check_train_record(record, framework, padding, patch_size):
    assert REQUIRED_TRAIN <= set(record)
    assert record["framework"] == framework and record["padding"] == padding
    assert record["patch_size"] == patch_size
    assert 0 < record["ms_p10"] <= record["ms_per_step"] <= record["ms_p90"]
    assert record["mpix_per_s"] > 0 and record["gflops_per_s"] > 0


@pytest.mark.parametrize("variant,padding,expected", [("auto", "valid", "FusedSRCNNTrain"),
                                                      ("gemm", "zeros", "GemmSRCNNTrain"),
                                                      ("plain", "replicate", "SRCNN")])
def test_bench_train_step_mindspore(repo_root, variant, padding, expected):
    out = run(repo_root, "bench_train_step.py", "--framework=mindspore", "--arch=9-1-5", "--batch_size=2",
              "--patch_size=21", f"--padding={padding}", "--steps=3", "--warmup=1", f"--variant={variant}")
    (record,) = json_lines(out)
    check_train_record(record, "mindspore", padding, 21)
    assert record["variant"] == expected


@pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")
def test_bench_train_step_torch(repo_root):
    out = run(repo_root, "bench_train_step.py", "--framework=torch", "--arch=9-5-5", "--batch_size=2",
              "--patch_size=21", "--padding=zeros", "--steps=3", "--warmup=1", "--runs=2")
    records = json_lines(out)
    assert len(records) == 2
    for record in records:
        check_train_record(record, "torch", "zeros", 21)


def test_flop_count_is_exact_for_the_convolutions(repo_root):
    spec = importlib.util.spec_from_file_location("bench_train_step",
                                                  str(repo_root / "benchmarks" / "bench_train_step.py"))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    # 9-1-5 valid on 33x33: outputs 25x25, 25x25, 21x21
    macs = [16 * 25 * 25 * 81 * 64, 16 * 25 * 25 * 64 * 32, 16 * 21 * 21 * 32 * 25]
    assert bench.conv_flops("9-1-5", 16, 33, "valid") == 2 * (3 * sum(macs) - macs[0])
    # padded: every layer keeps the patch size
    macs = [4 * 48 * 48 * 81 * 64, 4 * 48 * 48 * 64 * 32 * 25, 4 * 48 * 48 * 32 * 25]
    assert bench.conv_flops("9-5-5", 4, 48, "replicate") == 2 * (3 * sum(macs) - macs[0])


@pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")
def test_bench_compare_alternates_and_prints_a_markdown_table(repo_root, tmp_path):
    summary = tmp_path / "compare.json"
    out = run(repo_root, "bench_compare.py", "--rounds=1", "--steps=2", "--warmup=1", "--configs=915",
              "--algos=direct,winograd", "--markdown", f"--json={summary}", timeout=900)
    rows = [line for line in out.splitlines() if line.startswith("| 9-1-5")]
    assert len(rows) == 1 and "<= 0.8" in rows[0]
    data = json.loads(summary.read_text())
    runs = data["runs"]["915"]
    assert len(runs["mindspore:direct"]) == len(runs["mindspore:winograd"]) == len(runs["torch"]) == 1
    assert [r["algo"] for r in runs["mindspore:direct"] + runs["mindspore:winograd"]] == ["direct", "winograd"]
    assert data["summary"]["915"]["mindspore:winograd"]["median"] > 0


def test_bench_infer_reports_every_framework_and_agreement(repo_root):
    out = run(repo_root, "bench_infer.py", "--size=40", "--repeats=2", "--warmup=1", timeout=900)
    records = {r["framework"]: r for r in json_lines(out)}
    expected = {"mindspore", "mindspore_per_shape", "onnxruntime"} | ({"torch"} if HAS_TORCH else set())
    assert set(records) == expected
    for framework, record in records.items():
        assert record["size"] == 40 and record["ms_median"] > 0 and record["gflops_per_s"] > 0
        if framework != "mindspore":
            assert record["max_abs_diff"] <= 1e-4, framework


def test_bench_matmul_peak(repo_root):
    for library in ("numpy", "mindspore"):
        (record,) = json_lines(run(repo_root, "bench_matmul_peak.py", f"--library={library}", "--n=64",
                                   "--repeats=2"))
        assert record["library"] == library and record["gflops_per_s"] > 0


@requires_compiler
def test_bench_kernel_ops_times_both_algorithms(repo_root):
    records = json_lines(run(repo_root, "bench_kernel_ops.py", "--cases=b2x21zeros,infer40", "--repeats=1"))
    assert [(r["case"], r["algo"]) for r in records] == [("b2x21zeros", "direct"), ("b2x21zeros", "winograd"),
                                                         ("infer40", "direct"), ("infer40", "winograd")]
    for record in records:
        assert record["gflops_per_s"] > 0 and (record.get("train_ms", 0) > 0 or record.get("infer_ms", 0) > 0)


@pytest.mark.parametrize("arch,padding", [("9-1-5", "replicate"), ("9-5-5", "replicate"), ("9-3-5", "zeros")])
def test_per_shape_gemm_inference_matches_conv2d_and_shares_parameters(arch, padding):
    ms = pytest.importorskip("mindspore")
    from benchmarks.gemm_per_shape import SRCNNGemmPerShape
    from src.model.checkpoint import PARAM_NAMES
    from src.model.srcnn import SRCNN
    from src.model_utils.device import init_context

    init_context("CPU")
    plain = SRCNN(arch, n1=16, n2=8, padding=padding)
    randomize(plain, 12)
    fast = SRCNNGemmPerShape(plain)
    assert [p.name for p in fast.trainable_params()] == list(PARAM_NAMES)
    rng = np.random.default_rng(13)
    for size in ((23, 30), (1, 2)):
        x = ms.Tensor(rng.random((1, 1) + size).astype(np.float32))
        assert rel_err(plain(x).asnumpy(), fast(x).asnumpy()) <= 1e-5, size
    randomize(plain, 14)  # updates of the plain network's Parameters are seen
    x = ms.Tensor(rng.random((1, 1, 23, 30)).astype(np.float32))
    assert rel_err(plain(x).asnumpy(), fast(x).asnumpy()) <= 1e-5
