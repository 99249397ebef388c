"""The bash launchers in scripts/ and src/model_utils/launch.py behind them: usage, argument checks, DRY_RUN
command lines, static checks, and how failed ranks are reported (real processes; no accelerator needed)."""
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_in_session

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "scripts"
LAUNCHERS = sorted(SCRIPTS.glob("run_*train*.sh"))
EXPECTED = {"run_single_train_ascend.sh", "run_single_train_gpu.sh", "run_single_train_cpu.sh",
            "run_distribute_train_ascend.sh", "run_distribute_train_ascend_msrun.sh",
            "run_distribute_train_gpu.sh", "run_distribute_train_cpu.sh"}
# launcher environment a developer may have set: the tests choose their own
LAUNCH_VARS = ("TRAIN_ARGS", "DRY_RUN", "WORKER_NUM", "LOCAL_WORKER_NUM", "NODE_RANK", "MASTER_ADDR", "MASTER_PORT",
               "LAUNCHER", "MPIRUN_ARGS", "RANK_TABLE_FILE", "PYTHON", "MS_NODE_TIMEOUT", "VC_WORKER_HOSTS",
               "VC_TASK_INDEX", "MA_NUM_GPUS")


def run(script, *args, timeout=60, **env):
    full_env = {k: v for k, v in os.environ.items() if k not in LAUNCH_VARS}
    full_env.update({k: str(v) for k, v in env.items()})
    return run_in_session(["bash", str(SCRIPTS / script), *map(str, args)], timeout, env=full_env, cwd=REPO)


@pytest.fixture
def data(tmp_path):
    """A path that exists: the launchers only check DATA_PATH exists (train.py checks the MindRecord)."""
    path = tmp_path / "data"
    path.mkdir()
    (path / "srcnn_x2_p17_s8.mindrecord").write_bytes(b"")
    return path


@pytest.fixture
def rank_table(tmp_path):
    """An HCCL rank table of devices 2 and 3 (ranks 0 and 1)."""
    path = tmp_path / "rank_table_2pcs.json"
    path.write_text(json.dumps({
        "version": "1.0", "server_count": "1", "status": "completed",
        "server_list": [{"server_id": "10.0.0.1", "host_nic_ip": "reserve", "device": [
            {"device_id": "2", "device_ip": "192.168.100.101", "rank_id": "0"},
            {"device_id": "3", "device_ip": "192.168.101.101", "rank_id": "1"}]}]}))
    return path


def test_all_launchers_present():
    assert {p.name for p in LAUNCHERS} == EXPECTED
    assert (SCRIPTS / "common.sh").is_file()


# ---------------------------------------------------------------- static checks

@pytest.mark.parametrize("script", sorted(SCRIPTS.glob("*.sh")), ids=lambda p: p.name)
def test_bash_syntax(script):
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_shellcheck_clean():
    scripts = [str(p.relative_to(REPO)) for p in sorted(SCRIPTS.glob("*.sh"))]
    result = subprocess.run(["shellcheck", "-x", *scripts], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------- usage and argument checks

@pytest.mark.parametrize("script", LAUNCHERS, ids=lambda p: p.name)
def test_no_arguments_prints_usage(script):
    result = run(script.name)
    assert result.returncode != 0
    assert f"usage: {script.name} " in result.stderr
    assert "DATA_PATH" in result.stderr and "OUTPUT_PATH" in result.stderr


@pytest.mark.parametrize("script", LAUNCHERS, ids=lambda p: p.name)
def test_help_exits_zero(script):
    result = run(script.name, "--help")
    assert result.returncode == 0 and f"usage: {script.name} " in result.stdout


def _bad_cases(data, out, table):
    missing = data.parent / "no_such_data"
    return [
        ("run_single_train_ascend.sh", (9, data, out), {}, "DEVICE_ID must be between 0 and 7, got 9"),
        ("run_single_train_ascend.sh", ("x", data, out), {}, "DEVICE_ID must be a non-negative integer"),
        ("run_single_train_ascend.sh", (0, missing, out), {}, f"DATA_PATH '{missing}' does not exist"),
        ("run_single_train_gpu.sh", (9, data, out), {}, "DEVICE_ID must be between 0 and 7, got 9"),
        ("run_single_train_gpu.sh", (-1, data, out), {}, "DEVICE_ID must be a non-negative integer, got '-1'"),
        ("run_single_train_gpu.sh", (0, missing, out), {}, "DATA_PATH"),
        ("run_single_train_cpu.sh", (missing, out), {}, f"DATA_PATH '{missing}' does not exist"),
        ("run_single_train_cpu.sh", (data, out, data / "none.ckpt"), {}, "PRE_TRAINED_PATH"),
        ("run_single_train_cpu.sh", (data, out, data), {}, "PRE_TRAINED_PATH"),  # a folder, not a file
        ("run_single_train_cpu.sh", (data, data / "srcnn_x2_p17_s8.mindrecord"), {}, "exists and is not a folder"),
        ("run_single_train_cpu.sh", (data,), {}, "expected 2 to 3 arguments, got 1"),
        ("run_distribute_train_ascend.sh", (data, out, 2, 0, table), {}, "DEVICE_NUM must be between 1 and 8, got 0"),
        ("run_distribute_train_ascend.sh", (data, out, 8, 1, table), {}, "BEGIN_DEVICE must be between 0 and 7"),
        ("run_distribute_train_ascend.sh", (data, out, 6, 3, table), {}, "BEGIN_DEVICE + DEVICE_NUM must be <= 8"),
        ("run_distribute_train_ascend.sh", (data, out, 2, 2, data / "rank_table.json"), {}, "RANK_TABLE_FILE"),
        ("run_distribute_train_ascend.sh", (data, out, 2, 3, table), {}, "lists 2 device(s) but DEVICE_NUM is 3"),
        ("run_distribute_train_ascend.sh", (data, out, 0, 2, table), {}, "has no device 0"),
        ("run_distribute_train_ascend.sh", (data, out, 2, 2, data / "srcnn_x2_p17_s8.mindrecord"), {},
         "is not a rank table"),
        ("run_distribute_train_ascend.sh", (missing, out, 2, 2, table), {}, "DATA_PATH"),
        ("run_distribute_train_ascend_msrun.sh", (data, out, 0), {}, "DEVICE_NUM must be between 1 and 8, got 0"),
        ("run_distribute_train_ascend_msrun.sh", (data, out, 9), {}, "DEVICE_NUM must be between 1 and 8, got 9"),
        ("run_distribute_train_ascend_msrun.sh", (missing, out, 2), {}, "DATA_PATH"),
        ("run_distribute_train_gpu.sh", (0, "0", data, out), {}, "DEVICE_NUM must be between 1 and 8, got 0"),
        ("run_distribute_train_gpu.sh", (2, "0,1,2", data, out), {}, "lists 3 GPU(s) but DEVICE_NUM is 2"),
        ("run_distribute_train_gpu.sh", (2, "0", data, out), {}, "lists 1 GPU(s) but DEVICE_NUM is 2"),
        ("run_distribute_train_gpu.sh", (2, "0,,1", data, out), {}, "VISIBLE_DEVICES must be comma-separated"),
        ("run_distribute_train_gpu.sh", (2, "1,1", data, out), {}, "repeats a GPU id"),
        ("run_distribute_train_gpu.sh", (2, "0,1", missing, out), {}, "DATA_PATH"),
        ("run_distribute_train_gpu.sh", (2, "0,1", data, out), {"LAUNCHER": "horovod"},
         "LAUNCHER must be msrun or mpirun"),
        ("run_distribute_train_cpu.sh", (0, data, out), {}, "WORKER_NUM must be >= 1, got 0"),
        ("run_distribute_train_cpu.sh", (2, missing, out), {}, f"DATA_PATH '{missing}' does not exist"),
        ("run_distribute_train_cpu.sh", (2, data, out), {"MASTER_PORT": 80}, "MASTER_PORT must be between 1024"),
        ("run_distribute_train_cpu.sh", (4, data, out), {"LOCAL_WORKER_NUM": 2}, "set NODE_RANK"),
        ("run_distribute_train_cpu.sh", (4, data, out), {"LOCAL_WORKER_NUM": 2, "NODE_RANK": 2},
         "NODE_RANK must be between 0 and 1, got 2"),
        ("run_distribute_train_cpu.sh", (4, data, out), {"LOCAL_WORKER_NUM": 3, "NODE_RANK": 0},
         "must be a multiple of LOCAL_WORKER_NUM"),
        ("run_distribute_train_cpu.sh", (4, data, out), {"LOCAL_WORKER_NUM": 2, "NODE_RANK": 1},
         "set MASTER_ADDR"),
        ("run_distribute_train_cpu.sh", (2, data, out), {"LOCAL_WORKER_NUM": 3}, "exceeds WORKER_NUM"),
        ("run_distribute_train_cpu.sh", (2, data, out), {"TRAIN_ARGS": "train_steps=3"}, "TRAIN_ARGS holds"),
        # TRAIN_ARGS values: train.py's own one-line error, before anything starts
        ("run_distribute_train_cpu.sh", (2, data, out), {"TRAIN_ARGS": "--train_steps=5 --lr=abc"},
         "error: config key 'lr' expects a float, got 'abc' (from --lr=abc)"),
        ("run_single_train_cpu.sh", (data, out), {"TRAIN_ARGS": "--nosuch=1"}, "unknown config key 'nosuch'"),
        ("run_single_train_gpu.sh", (0, data, out), {"TRAIN_ARGS": "--batch_size=0"},
         "config key 'batch_size' must be > 0, got 0 (from --batch_size=0)"),
        ("run_distribute_train_ascend.sh", (data, out, 2, 2, table), {"TRAIN_ARGS": "--config_path=/no/such.yaml"},
         "/no/such.yaml"),
        # ... and may not override what the launcher checked and set
        ("run_distribute_train_cpu.sh", (2, data, out), {"TRAIN_ARGS": f"--data_path={missing}"},
         f"TRAIN_ARGS holds '--data_path={missing}', but the launcher sets --data_path itself "
         f"(--data_path={data}, from its checked arguments); drop it from TRAIN_ARGS"),
        ("run_distribute_train_gpu.sh", (2, "0,1", data, out), {"TRAIN_ARGS": "--run_distribute=false"},
         "the launcher sets --run_distribute itself (--run_distribute=true"),
        ("run_single_train_cpu.sh", (data, out), {"TRAIN_ARGS": "--output_path=/tmp"}, "sets --output_path itself"),
        ("run_distribute_train_ascend.sh", (data, out, 2, 2, table), {"TRAIN_ARGS": "--device_id=5"},
         "TRAIN_ARGS holds '--device_id=5', but the launcher sets --device_id itself (--device_id=<each device of "
         "the rank table>"),
        ("run_distribute_train_cpu.sh", (2, data, out), {"MS_NODE_TIMEOUT": "soon"},
         "MS_NODE_TIMEOUT must be a non-negative integer, got 'soon'"),
        # ModelArts multi-node variables
        ("run_distribute_train_cpu.sh", (4, data, out), {"VC_WORKER_HOSTS": "w0,w1", "VC_TASK_INDEX": 2},
         "VC_TASK_INDEX must be between 0 and 1, got 2"),
        ("run_distribute_train_cpu.sh", (3, data, out), {"VC_WORKER_HOSTS": "w0,w1", "VC_TASK_INDEX": 0},
         "WORKER_NUM 3 cannot be spread evenly over the 2 hosts of VC_WORKER_HOSTS"),
        ("run_distribute_train_ascend_msrun.sh", (data, out, 8), {"VC_WORKER_HOSTS": "w0,w1"},
         "VC_WORKER_HOSTS is set (a ModelArts multi-node job) but VC_TASK_INDEX"),
        ("run_distribute_train_gpu.sh", (8, "0,1,2,3,4,5,6,7", data, out), {"MA_NUM_GPUS": 4},
         "DEVICE_NUM=8 differs from MA_NUM_GPUS=4, the GPUs ModelArts gave this node"),
    ]


def test_bad_arguments_are_named(data, tmp_path, rank_table):
    out = tmp_path / "out"
    failures = []
    for script, args, env, expected in _bad_cases(data, out, rank_table):
        result = run(script, *args, **env)
        if result.returncode != 2 or expected not in result.stderr or not result.stderr.startswith("error: "):
            failures.append(f"{script} {args} {env}: exit {result.returncode}, stderr {result.stderr!r}")
    assert not failures, "\n".join(failures)
    assert not out.exists(), "a launcher created OUTPUT_PATH before rejecting its arguments"


# ---------------------------------------------------------------- DRY_RUN command lines

def _dry(script, *args, **env):
    result = run(script, *args, DRY_RUN=1, **env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_dry_run_single_launchers(data, tmp_path):
    out = tmp_path / "out"
    train = f"{REPO}/train.py --data_path={data} --output_path={out}"
    cpu = _dry("run_single_train_cpu.sh", data, out, TRAIN_ARGS="--train_steps=5 --batch_size=32")
    assert cpu.endswith(f"{train} --device_target=CPU --train_steps=5 --batch_size=32")
    gpu = _dry("run_single_train_gpu.sh", 3, data, out)
    assert gpu.startswith("CUDA_VISIBLE_DEVICES=3 ") and gpu.endswith(f"{train} --device_target=GPU --device_id=0")
    ascend = _dry("run_single_train_ascend.sh", 5, data, out, data / "srcnn_x2_p17_s8.mindrecord")
    assert ascend.startswith("DEVICE_ID=5 RANK_ID=0 RANK_SIZE=1 ")
    assert ascend.endswith(f"{train} --pre_trained_path={data}/srcnn_x2_p17_s8.mindrecord "
                           f"--device_target=Ascend --device_id=5")
    assert not out.exists(), "DRY_RUN must not create anything"


def test_dry_run_paths_are_absolute(data, tmp_path):
    relative_data = os.path.relpath(data, tmp_path)
    result = subprocess.run(["bash", str(SCRIPTS / "run_single_train_cpu.sh"), relative_data, "out"],
                            capture_output=True, text=True, cwd=tmp_path, env=dict(os.environ, DRY_RUN="1"))
    assert result.returncode == 0, result.stderr
    assert f"--data_path={data} --output_path={tmp_path}/out " in result.stdout


def test_train_args_paths_are_the_callers(data, tmp_path):
    """train.py runs from OUTPUT_PATH: relative paths in TRAIN_ARGS are made absolute against the caller's folder,
    so the launcher's check and the run read the same files (a config only the repository has is refused)."""
    (tmp_path / "run.yaml").write_text("train_steps: 5\n")
    env = dict((k, v) for k, v in os.environ.items() if k not in LAUNCH_VARS)
    ok = subprocess.run(["bash", str(SCRIPTS / "run_single_train_cpu.sh"), "data", "out"], capture_output=True,
                        text=True, cwd=tmp_path, timeout=60,
                        env=dict(env, DRY_RUN="1", TRAIN_ARGS="--config_path=run.yaml --validation_path=../val "
                                 "--data_url=obs://b/d"))
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.rstrip().endswith(f"--config_path={tmp_path}/run.yaml --validation_path={tmp_path.parent}/val "
                                       "--data_url=obs://b/d"), ok.stdout
    refused = subprocess.run(["bash", str(SCRIPTS / "run_single_train_cpu.sh"), "data", "out"], capture_output=True,
                             text=True, cwd=tmp_path, timeout=60,
                             env=dict(env, TRAIN_ARGS="--config_path=configs/srcnn_x2.yaml"))
    assert (REPO / "configs" / "srcnn_x2.yaml").is_file()
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr == (f"error: config file '{tmp_path}/configs/srcnn_x2.yaml' not found "
                              f"(from --config_path={tmp_path}/configs/srcnn_x2.yaml)\n")
    assert not (tmp_path / "out").exists()


def test_dry_run_gpu_distributed(data, tmp_path):
    out = tmp_path / "out"
    msrun = _dry("run_distribute_train_gpu.sh", 4, "4,5,6,7", data, out, TRAIN_ARGS="--batch_size=8")
    assert msrun.startswith("CUDA_VISIBLE_DEVICES=4,5,6,7 ")
    assert "msrun --worker_num=4 --local_worker_num=4 --node_rank=0 --master_addr=127.0.0.1 --master_port=8118 " \
           f"--log_dir={out}/log --join=True" in msrun
    assert msrun.endswith("--device_target=GPU --run_distribute=true --batch_size=8")
    mpirun = _dry("run_distribute_train_gpu.sh", 2, "0,1", data, out, LAUNCHER="mpirun",
                  MPIRUN_ARGS="--hostfile hosts")
    assert mpirun.startswith(f"CUDA_VISIBLE_DEVICES=0,1 SRCNN_LOG_DIR={out}/log mpirun -n 2 --allow-run-as-root ")
    assert "--hostfile hosts bash -c" in mpirun
    assert mpirun.endswith("--device_target=GPU --run_distribute=true")
    assert not out.exists()


def test_dry_run_two_node_msrun(data, tmp_path):
    """The multi-node form: each node runs its LOCAL_WORKER_NUM workers; node 0 hosts the scheduler."""
    out = tmp_path / "out"
    env = dict(WORKER_NUM=4, LOCAL_WORKER_NUM=2, MASTER_ADDR="192.0.2.10", MASTER_PORT=9123)
    for node in (0, 1):
        cmd = _dry("run_distribute_train_cpu.sh", 4, data, out, NODE_RANK=node, **env)
        assert (f"--worker_num=4 --local_worker_num=2 --node_rank={node} --master_addr=192.0.2.10 "
                f"--master_port=9123 --log_dir={out}/log --join=True --tail_worker_log={2 * node} ") in cmd
    ascend = _dry("run_distribute_train_ascend_msrun.sh", data, out, 8, NODE_RANK=1, WORKER_NUM=16,
                  MASTER_ADDR="192.0.2.10")
    assert "--worker_num=16 --local_worker_num=8 --node_rank=1 --master_addr=192.0.2.10" in ascend
    assert ascend.endswith("--device_target=Ascend --run_distribute=true")
    gpu = _dry("run_distribute_train_gpu.sh", 2, "0,1", data, out, NODE_RANK=0, WORKER_NUM=4,
               MASTER_ADDR="192.0.2.10")
    assert "--worker_num=4 --local_worker_num=2 --node_rank=0" in gpu


def test_dry_run_modelarts_multi_node(data, tmp_path):
    """A ModelArts multi-node job: every node gets the job's hosts (VC_WORKER_HOSTS), its index (VC_TASK_INDEX)
    and its device count (MA_NUM_GPUS); the launcher derives node rank, worker counts and master address."""
    out = tmp_path / "out"
    hosts = "job-abc-worker-0.job-abc,job-abc-worker-1.job-abc,job-abc-worker-2.job-abc"
    for node in (0, 1, 2):
        gpu = _dry("run_distribute_train_gpu.sh", 8, "0,1,2,3,4,5,6,7", data, out, VC_WORKER_HOSTS=hosts,
                   VC_TASK_INDEX=node, MA_NUM_GPUS=8)
        assert gpu.startswith("CUDA_VISIBLE_DEVICES=0,1,2,3,4,5,6,7 MS_NODE_TIMEOUT=30 ")
        assert (f"msrun --worker_num=24 --local_worker_num=8 --node_rank={node} "
                f"--master_addr=job-abc-worker-0.job-abc --master_port=8118 --log_dir={out}/log --join=True "
                f"--tail_worker_log={8 * node} ") in gpu
        ascend = _dry("run_distribute_train_ascend_msrun.sh", data, out, 8, VC_WORKER_HOSTS=hosts, VC_TASK_INDEX=node)
        assert (f"--worker_num=24 --local_worker_num=8 --node_rank={node} --master_addr=job-abc-worker-0.job-abc "
                in ascend)
        cpu = _dry("run_distribute_train_cpu.sh", 6, data, out, VC_WORKER_HOSTS=hosts, VC_TASK_INDEX=node)
        assert f"--worker_num=6 --local_worker_num=2 --node_rank={node} --master_addr=job-abc-worker-0.job-abc " in cpu
    # variables set explicitly win over the job's
    cpu = _dry("run_distribute_train_cpu.sh", 6, data, out, VC_WORKER_HOSTS=hosts, VC_TASK_INDEX=1,
               MASTER_ADDR="192.0.2.7", MASTER_PORT=9000, MS_NODE_TIMEOUT=60)
    assert cpu.startswith("MS_NODE_TIMEOUT=60 ")
    assert "--node_rank=1 --master_addr=192.0.2.7 --master_port=9000 " in cpu
    assert not out.exists()


def test_dry_run_rank_table(data, tmp_path, rank_table):
    out = tmp_path / "out"
    lines = _dry("run_distribute_train_ascend.sh", data, out, 2, 2, rank_table, TRAIN_ARGS="--lr=0.001").splitlines()
    assert len(lines) == 2
    for rank, line in enumerate(lines):
        device = 2 + rank
        assert line.startswith(f"cd {out}/device{device} && DEVICE_ID={device} RANK_ID={rank} RANK_SIZE=2 "
                               f"RANK_TABLE_FILE={rank_table} ")
        assert line.endswith(f"--device_target=Ascend --run_distribute=true --lr=0.001 --device_id={device} "
                             "> train.log 2>&1 &")
    assert not out.exists()


# ---------------------------------------------------------------- failures of real processes

def test_rank_table_launch_reports_each_failed_rank(data, tmp_path, rank_table):
    """A real launch: on this machine (no Ascend) train.py stops with a one-line error; the launcher names each
    rank, its device and its log, stops the ranks still running after the first failure, and exits 1. (Which
    ranks fail by themselves before the launcher stops the rest depends on timing.)"""
    out = tmp_path / "out"
    result = run("run_distribute_train_ascend.sh", data, out, 2, 2, rank_table, timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    failed = 0
    for rank, device in ((0, 2), (1, 3)):
        log = out / f"device{device}" / "train.log"
        own = f"error: rank {rank} (device {device}) failed (exit code 2): error: device_target=Ascend"
        stopped = f"note: rank {rank} (device {device}) was stopped after the failure above; log: {log}"
        assert (own in result.stderr and f"log: {log}" in result.stderr) or stopped in result.stderr, result.stderr
        if own in result.stderr:
            failed += 1
            assert "error: device_target=Ascend" in log.read_text()
    assert failed >= 1


def test_single_launcher_reports_a_failed_run(data, tmp_path):
    """A real single-GPU launch: here there is no GPU (and the data file is empty anyway), so train.py stops with
    a one-line error; the launcher exits 1 and names the error and the log it wrote under OUTPUT_PATH."""
    out = tmp_path / "out"
    result = run("run_single_train_gpu.sh", 0, data, out, timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "error: training failed (exit code 2): error: " in result.stderr
    assert f"log: {out}/train.log" in result.stderr
    assert "error: " in (out / "train.log").read_text()


@pytest.mark.skipif(shutil.which("mpirun") is not None, reason="mpirun is installed here")
def test_mpirun_launcher_needs_mpirun(data, tmp_path):
    result = run("run_distribute_train_gpu.sh", 2, "0,1", data, tmp_path / "out", LAUNCHER="mpirun")
    assert result.returncode == 2 and "mpirun is not on PATH" in result.stderr
    assert not (tmp_path / "out").exists()


def test_wait_ranks_stops_the_others_when_one_fails(tmp_path, capsys):
    """A rank that fails is named with its log; ranks still running (that would wait in a collective forever)
    are stopped rather than waited for."""
    from src.model_utils.launch import Rank, wait_ranks

    ranks = [Rank("rank 0", tmp_path, tmp_path / "r0.log", dict(os.environ), ["sleep", "120"]),
             Rank("rank 1", tmp_path, tmp_path / "r1.log", dict(os.environ, RANK_ID="1"),
                  ["bash", "-c", 'sleep 1; echo "rank $RANK_ID starting"; echo "error: MindRecord /x does not exist"; '
                   "exit 2"])]
    try:
        assert wait_ranks(ranks) == 1
    finally:
        for rank in ranks:
            rank.proc.kill()
            rank.proc.wait()
    err = capsys.readouterr().err
    assert "error: rank 1 failed (exit code 2): error: MindRecord /x does not exist" in err
    assert f"log: {tmp_path}/r1.log" in err
    assert f"note: rank 0 was stopped after the failure above; log: {tmp_path}/r0.log" in err
    assert "rank 1 starting" in (tmp_path / "r1.log").read_text()


def test_wait_ranks_checks_final_weights_agree(tmp_path, capsys):
    """Ranks that all exit 0 must report the same final weights digest; a diverged rank is an error."""
    from src.model_utils.launch import Rank, wait_ranks

    def launch(digests):
        ranks = [Rank(f"rank {rank}", tmp_path, tmp_path / f"w{rank}.log", dict(os.environ),
                      ["echo", f"[rank {rank}] final weights sha256 {digest}"]) for rank, digest in enumerate(digests)]
        return wait_ranks(ranks), capsys.readouterr()

    status, same = launch(["ab12", "ab12"])
    assert status == 0 and "all 2 local rank(s) finished with identical weights (sha256 ab12)" in same.out
    status, diverged = launch(["ab12", "cd34"])
    assert status == 1
    assert "error: rank 1 ended with different weights (sha256 cd34, not ab12)" in diverged.err
