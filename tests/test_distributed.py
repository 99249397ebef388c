"""Data-parallel training for real: scripts/run_distribute_train_cpu.sh starts 2 CPU workers with msrun (mccl
collectives) on a tiny MindRecord, and the result must equal one process training on the doubled batch.

Checked: both ranks end with the same weights; only rank 0 writes checkpoints and the training log; the final
weights equal the single-process run's (gradients are averaged over the ranks, not summed); a failing rank
makes the launcher exit non-zero naming the rank and its log; enable_modelarts without moxing stops at once.
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import save_set5_crops

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "scripts"
PATCH, STRIDE = 17, 8
TRAIN_ARGS = ("--n1=8 --n2=4 --train_steps=12 --batch_size=4 --augment=false --save_checkpoint_steps=6 "
              "--log_interval=3 --lr=0.001 --padding=valid --seed=7")
LAUNCH_VARS = ("TRAIN_ARGS", "DRY_RUN", "WORKER_NUM", "LOCAL_WORKER_NUM", "NODE_RANK", "MASTER_ADDR", "MASTER_PORT",
               "PYTHON", "MS_NODE_TIMEOUT", "GLOG_v")

# Loaded into every Python process of a launch (through PYTHONPATH): records, per process and with its msrun
# role and RANK_ID, each checkpoint file it creates or renames into place. Observes only; changes nothing.
AUDIT_SITECUSTOMIZE = '''
import os, sys
_dir = os.environ.get("SRCNN_AUDIT_DIR")
if _dir:
    _name = f"{os.environ.get('MS_ROLE') or 'plain'}_rank{os.environ.get('RANK_ID', '-')}_{os.getpid()}.txt"
    _fd = os.open(os.path.join(_dir, _name), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.write(_fd, b"started\\n")

    def _audit(event, args):
        if event == "os.rename":
            target = args[1]
        elif event == "tempfile.mkstemp":
            target = args[0]
        elif event == "open" and isinstance(args[1], str) and any(c in args[1] for c in "wax+"):
            target = args[0]
        else:
            return
        if isinstance(target, (str, os.PathLike)) and os.fspath(target).endswith(".ckpt"):
            os.write(_fd, f"{event} {os.fspath(target)}\\n".encode())

    sys.addaudithook(_audit)
'''


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(script, *args, timeout=600, **env):
    full_env = {k: v for k, v in os.environ.items() if k not in LAUNCH_VARS}
    full_env.update({k: str(v) for k, v in env.items()})
    start = time.monotonic()
    result = subprocess.run(["bash", str(SCRIPTS / script), *map(str, args)], capture_output=True, text=True,
                            env=full_env, timeout=timeout, cwd=REPO)
    result.seconds = time.monotonic() - start
    return result


def read_ckpt(path):
    import mindspore as ms

    return {k: v.asnumpy() for k, v in ms.load_checkpoint(str(path)).items() if not isinstance(v, str)}


@pytest.fixture(scope="module")
def patches(datasets_dir, tmp_path_factory):
    """108 patch pairs 17x17 cut (stride 8) from three 64x64 crops of Set5, by src/create_dataset.py."""
    root = tmp_path_factory.mktemp("patches")
    crops = save_set5_crops(datasets_dir, root / "crops", ("baby", "bird", "butterfly"), (64, 64, 128, 128))
    out = root / "data"
    result = subprocess.run([sys.executable, "src/create_dataset.py", f"--src_folder={crops}",
                             f"--output_folder={out}", "--scale=2", f"--patch_size={PATCH}", f"--stride={STRIDE}",
                             "--num_workers=1"], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr
    data = out / f"srcnn_x2_p{PATCH}_s{STRIDE}.mindrecord"
    assert json.loads(Path(f"{data}.json").read_text())["count"] == 108
    return data


@pytest.fixture(scope="module")
def two_workers(patches, tmp_path_factory):
    """A 2-worker msrun launch (batch 4 per worker) with checkpoint writes audited per process."""
    root = tmp_path_factory.mktemp("dist")
    audit_dir, site_dir = root / "audit", root / "site"
    audit_dir.mkdir()
    site_dir.mkdir()
    (site_dir / "sitecustomize.py").write_text(AUDIT_SITECUSTOMIZE)
    out = root / "out"
    pythonpath = os.pathsep.join(filter(None, [str(site_dir), os.environ.get("PYTHONPATH", "")]))
    result = launch("run_distribute_train_cpu.sh", 2, patches.parent, out, TRAIN_ARGS=TRAIN_ARGS,
                    MASTER_PORT=free_port(), PYTHONPATH=pythonpath, SRCNN_AUDIT_DIR=audit_dir)
    print(f"2-worker launch: {result.seconds:.1f} s")
    return result, out, audit_dir


@pytest.fixture(scope="module")
def one_process(patches, tmp_path_factory):
    """The same training in one process on the doubled batch (8), through run_single_train_cpu.sh."""
    out = tmp_path_factory.mktemp("single") / "out"
    result = launch("run_single_train_cpu.sh", patches, out,
                    TRAIN_ARGS=TRAIN_ARGS.replace("--batch_size=4", "--batch_size=8"))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    print(f"single-process launch: {result.seconds:.1f} s")
    return result, out


def _digest(log_text):
    found = re.findall(r"final weights sha256 ([0-9a-f]{64})", log_text)
    assert len(found) == 1, log_text[-2000:]
    return found[0]


def test_two_workers_finish_with_identical_weights(two_workers):
    result, out, _ = two_workers
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    logs = [(out / "log" / f"worker_{rank}.log").read_text() for rank in (0, 1)]
    for rank, text in enumerate(logs):
        assert f"[rank {rank}] training 9-1-5 (n1=8, n2=4, padding=valid)" in text
        assert "batch 4 per device x 2 device(s) = global batch 8, 12 steps" in text
    assert _digest(logs[0]) == _digest(logs[1])
    assert f"all 2 local rank(s) finished with identical weights (sha256 {_digest(logs[0])})" in result.stdout
    assert (out / "msrun.log").is_file() and (out / "log" / "scheduler.log").is_file()


def test_only_rank_0_writes_checkpoints_and_log(two_workers):
    result, out, audit_dir = two_workers
    assert result.returncode == 0, result.stderr[-4000:]
    ckpt_dir = out / "ckpt_0"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.ckpt")) == [
        "ckpt_0/srcnn-12.ckpt", "ckpt_0/srcnn-6.ckpt", "ckpt_0/srcnn-final.ckpt"]
    # per process: what it wrote (tempfile + rename into place)
    audits = {p.name.rsplit("_", 1)[0]: p.read_text().split("\n") for p in audit_dir.iterdir()}
    assert {"MS_WORKER_rank0", "MS_WORKER_rank1"} <= set(audits), sorted(audits)
    renamed = {role: sorted(name for line in lines if line.startswith("os.rename ")
                            for name in [Path(line.split(" ", 1)[1]).name] if name.startswith("srcnn-"))
               for role, lines in audits.items()}
    assert renamed["MS_WORKER_rank0"] == ["srcnn-12.ckpt", "srcnn-6.ckpt", "srcnn-final.ckpt"]
    wrote_ckpt = {role for role, lines in audits.items() if any(".ckpt" in line for line in lines)}
    assert wrote_ckpt == {"MS_WORKER_rank0"}, f"checkpoint writes by {sorted(wrote_ckpt)}"
    assert all(Path(line.split(" ", 1)[1]).parent == ckpt_dir
               for line in audits["MS_WORKER_rank0"] if ".ckpt" in line)
    # the training log is written once, by rank 0: one record per log_interval, no duplicates
    records = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [3, 6, 9, 12]
    assert [r["step"] for r in records if r.get("event") == "start"] == [0]  # one start record, rank 0's
    rank1 = (out / "log" / "worker_1.log").read_text()
    assert "checkpoint" not in rank1 and "[rank 1] done" not in rank1
    assert f"final checkpoint {ckpt_dir}/srcnn-final.ckpt" in (out / "log" / "worker_0.log").read_text()


def test_equals_one_process_on_the_doubled_batch(two_workers, one_process):
    """Rank r trains on the r-th half of each global batch of 8 and the gradients are averaged, so 2 x 4 must
    reproduce 1 x 8 with the same seed. Adam's update hardly changes if gradients were summed instead (it is
    scale-invariant), but its first and second moments would be 2x and 4x: they are compared too."""
    result, out, _ = two_workers
    assert result.returncode == 0, result.stderr[-4000:]
    single_result, single_out = one_process
    assert "batch 8 per device x 1 device(s) = global batch 8" in (single_out / "train.log").read_text()
    dist = read_ckpt(out / "ckpt_0" / "srcnn-final.ckpt")
    single = read_ckpt(single_out / "ckpt_0" / "srcnn-final.ckpt")
    weights = [k for k in single if k.startswith("conv")]
    assert len(weights) == 6 and set(weights) <= set(dist)
    worst = max(float(np.abs(dist[k].astype(np.float64) - single[k]).max()) for k in weights)
    print(f"max |distributed - single| over the weights: {worst:.3g}")
    assert worst <= 1e-5
    for moment, summed in (("moment1", 2.0), ("moment2", 4.0)):
        keys = [k for k in single if k.startswith(moment + ".")]
        assert keys
        ratio = (np.sqrt(sum(float(np.sum(dist[k].astype(np.float64) ** 2)) for k in keys))
                 / np.sqrt(sum(float(np.sum(single[k].astype(np.float64) ** 2)) for k in keys)))
        assert abs(ratio - 1) < 1e-3, f"{moment}: distributed/single = {ratio:.4f} (summed gradients give {summed})"
    assert dist["global_step"].item() == single["global_step"].item() == 12


def test_failing_ranks_are_named_with_their_logs(patches, tmp_path):
    """train.py rejects its settings on every rank (TRAIN_ARGS=--lr=-1): the launcher exits 1 and names each
    rank, its one-line error and its log."""
    out = tmp_path / "out"
    result = launch("run_distribute_train_cpu.sh", 2, patches, out, TRAIN_ARGS=f"{TRAIN_ARGS} --lr=-1",
                    MASTER_PORT=free_port(), MS_NODE_TIMEOUT=6, timeout=300)
    print(f"failing launch: {result.seconds:.1f} s")
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert "error: distributed training failed (msrun exit code 1)" in result.stderr
    for rank in (0, 1):
        log = out / "log" / f"worker_{rank}.log"
        assert f"error: rank {rank} failed: error: config key 'lr' must be > 0, got -1.0" in result.stderr
        assert f"log: {log}" in result.stderr
        assert "error: config key 'lr' must be > 0" in log.read_text()
    assert not list(out.rglob("*.ckpt"))


def test_a_killed_rank_is_named(patches, tmp_path):
    """Only rank 1 dies (SIGKILL, as by the OOM killer) in the middle of training: msrun stops rank 0, and the
    launcher names rank 1 as the failed one and rank 0 as stopped."""
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_VARS}
    env.update(TRAIN_ARGS="--n1=8 --n2=4 --train_steps=1000000 --batch_size=4 --log_interval=50 --padding=valid",
               MASTER_PORT=str(free_port()), MS_NODE_TIMEOUT="6")
    proc = subprocess.Popen(["bash", str(SCRIPTS / "run_distribute_train_cpu.sh"), "2", str(patches), str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    try:
        log = out / "log" / "worker_1.log"
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not (log.is_file() and "[rank 1] step 50/" in log.read_text()):
            time.sleep(0.5)
        text = log.read_text()
        assert "[rank 1] step 50/" in text, text[-2000:]
        pid = int(re.search(r"^\[(?:WARNING|INFO|ERROR)\] [A-Z_]+\((\d+),", text, re.M).group(1))
        assert "train.py" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        os.kill(pid, signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, stdout[-3000:] + stderr[-3000:]
    assert f"error: rank 1 failed (process {pid} exited abnormally, see the end of its log)" in stderr
    assert f"log: {log}" in stderr
    assert "note: rank(s) 0 did not finish: stopped after the failure above" in stderr


def test_modelarts_without_moxing_stops_before_training(patches, tmp_path):
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "train.py", "--enable_modelarts=true", "--data_url=obs://bucket/data",
                             "--train_url=obs://bucket/out", f"--data_path={patches}", f"--output_path={out}"],
                            capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "moxing" in lines[0], result.stderr
    assert not out.exists()
