"""Data-parallel training for real: scripts/run_distribute_train_cpu.sh starts 2 CPU workers with msrun (mccl
collectives) on a tiny MindRecord, and the result must equal one process training on the doubled batch.

Checked: both ranks end with the same weights; only rank 0 writes checkpoints and the training log; the final
weights equal the single-process run's (gradients are averaged over the ranks, not summed); a failing rank
makes the launcher exit non-zero naming the rank and its log; enable_modelarts without moxing stops at once.

Several nodes (as root: two network namespaces on this machine): two nodes of one worker end equal to two workers
on one node; a node killed right after a checkpoint is named by the survivor, and a relaunch with --resume=true
(no shared folder) ends with the uninterrupted run's weights; nodes launched with different settings stop before
the first step.
"""
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import free_port, save_set5_crops

REPO = Path(__file__).resolve().parents[2]
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


def start_launcher(argv, **env):
    """A launcher (``argv`` after bash, or a full command) in a session of its own: ``finish`` can stop it and
    everything it started."""
    full_env = {k: v for k, v in os.environ.items() if k not in LAUNCH_VARS}
    full_env.update({k: str(v) for k, v in env.items()})
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full_env, cwd=REPO,
                            start_new_session=True)


def _log_pids(folder):
    """The pids MindSpore printed in msrun's logs under ``folder`` (scheduler, workers): each in a session of
    its own, beyond the launcher's process group."""
    pids = set()
    for log in Path(folder).glob("log/*.log"):
        found = re.search(r"^\[(?:WARNING|INFO|ERROR|DEBUG)\] [A-Z_]+\((\d+),", log.read_text(errors="replace"), re.M)
        if found:
            pids.add(int(found.group(1)))
    return pids


def finish(procs, outs=(), timeout=300):
    """[(stdout, stderr)] of ``procs`` (from start_launcher). If they do not all end within ``timeout`` (or
    anything else fails), their process groups and the msrun processes logged under ``outs`` are killed."""
    results = []
    try:
        for proc in procs:
            results.append(proc.communicate(timeout=timeout))
        return results
    finally:
        if len(results) < len(procs):
            for proc in procs:
                if proc.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
            for out in outs:
                for pid in _log_pids(out):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            for proc in procs[len(results):]:
                proc.communicate()


def launch(script, *args, timeout=600, **env):
    start = time.monotonic()
    proc = start_launcher(["bash", str(SCRIPTS / script), *map(str, args)], **env)
    (stdout, stderr), = finish([proc], [args[-1]] if script.startswith("run_distribute") else [], timeout)
    result = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    result.seconds = time.monotonic() - start
    return result


def wait_for(condition, what, seconds=240, interval=0.2):
    """Poll ``condition()`` until it is true; fails naming ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {seconds} s"
        time.sleep(interval)


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
    """train.py rejects the data on every rank once the cluster is up (x2 patches, --scale=3): the launcher exits
    1 and names each rank, its one-line error and its log; nothing is written."""
    out = tmp_path / "out"
    result = launch("run_distribute_train_cpu.sh", 2, patches, out, TRAIN_ARGS=f"{TRAIN_ARGS} --scale=3",
                    MASTER_PORT=free_port(), MS_NODE_TIMEOUT=6, timeout=300)
    print(f"failing launch: {result.seconds:.1f} s")
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert "error: distributed training failed (msrun exit code 1)" in result.stderr
    for rank in (0, 1):
        log = out / "log" / f"worker_{rank}.log"
        assert f"error: rank {rank} failed: error: {patches} holds x2 patches but scale=3" in result.stderr
        assert f"log: {log}" in result.stderr
        assert f"error: {patches} holds x2 patches but scale=3" in log.read_text()
    assert not list(out.rglob("*.ckpt"))


def test_a_killed_rank_is_named(patches, tmp_path):
    """Only rank 1 dies (SIGKILL, as by the OOM killer) in the middle of training: msrun stops rank 0, and the
    launcher names rank 1 as the failed one and rank 0 as stopped."""
    out = tmp_path / "out"
    proc = start_launcher(["bash", str(SCRIPTS / "run_distribute_train_cpu.sh"), "2", str(patches), str(out)],
                          TRAIN_ARGS="--n1=8 --n2=4 --train_steps=1000000 --batch_size=4 --log_interval=50 "
                          "--padding=valid", MASTER_PORT=free_port(), MS_NODE_TIMEOUT=6)
    log = out / "log" / "worker_1.log"
    try:
        wait_for(lambda: log.is_file() and "[rank 1] step 50/" in log.read_text(), "rank 1 at step 50", interval=0.5)
        text = log.read_text()
        pid = int(re.search(r"^\[(?:WARNING|INFO|ERROR)\] [A-Z_]+\((\d+),", text, re.M).group(1))
        assert "train.py" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        os.kill(pid, signal.SIGKILL)
    finally:
        (stdout, stderr), = finish([proc], [out], timeout=240)
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


# ---------------------------------------------------------------- several nodes
# Two "hosts" on this machine: two network namespaces joined by a veth pair, with addresses of the
# documentation range 192.0.2.0/24 (RFC 5737; never routed anywhere), and an output folder and a copy of the
# data of their own, as nodes without a shared file system.
NODE_ADDRS = ("192.0.2.1", "192.0.2.2")

# Loaded into node 0's processes only (PYTHONPATH): rank 0's worker stops itself (SIGSTOP) just before it
# renames the checkpoint SRCNN_STOP_AT into place, after writing its pid to SRCNN_STOP_PID. The test kills node
# 1 while rank 0 is stopped and then lets it go on: node 1 is lost right after a checkpoint, with no race.
STOP_SITECUSTOMIZE = '''
import os, signal, sys
_name = os.environ.get("SRCNN_STOP_AT")
if _name and os.environ.get("MS_ROLE") == "MS_WORKER" and os.environ.get("RANK_ID") == "0":
    def _stop(event, args):
        if event == "os.rename" and os.fspath(args[1]).endswith("/" + _name):
            _pid_file = os.environ["SRCNN_STOP_PID"]
            with open(_pid_file + ".tmp", "w") as handle:  # then renamed: the test never reads it half-written
                handle.write(str(os.getpid()))
            os.replace(_pid_file + ".tmp", _pid_file)
            os.kill(os.getpid(), signal.SIGSTOP)
    sys.addaudithook(_stop)
'''


def _ip(*args):
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)


def _namespace_pids(name):
    result = _ip("netns", "pids", name)
    return [int(p) for p in result.stdout.split()] if result.returncode == 0 else []


def _kill_namespace(name):
    """SIGKILL every process of namespace ``name``: the whole node goes, as when its machine fails."""
    for pid in _namespace_pids(name):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture(scope="module")
def two_hosts():
    """Names of two network namespaces, node 0 at 192.0.2.1 and node 1 at 192.0.2.2, joined by a veth pair.
    Removed (with every process in them) whatever happens."""
    if os.geteuid() != 0:
        pytest.skip("creating network namespaces needs root")
    if shutil.which("ip") is None:
        pytest.skip("the 'ip' command (iproute2) is not installed")
    tag = f"{os.getpid() % 100000}"
    names, links = [f"srcnn{tag}n0", f"srcnn{tag}n1"], [f"srcnn{tag}v0", f"srcnn{tag}v1"]
    try:
        steps = [("netns", "add", names[0]), ("netns", "add", names[1]),
                 ("link", "add", links[0], "type", "veth", "peer", "name", links[1])]
        for name, link, addr in zip(names, links, NODE_ADDRS):
            steps += [("link", "set", link, "netns", name), ("-n", name, "addr", "add", f"{addr}/24", "dev", link),
                      ("-n", name, "link", "set", link, "up"), ("-n", name, "link", "set", "lo", "up")]
        for step in steps:
            result = _ip(*step)
            if result.returncode != 0:
                pytest.skip(f"cannot set up network namespaces: ip {' '.join(step)}: {result.stderr.strip()}")
        yield names
    finally:
        for name in names:
            _kill_namespace(name)
        for name in names:
            _ip("netns", "del", name)  # removes the veth pair too
        _ip("link", "del", links[0])  # in case it never moved into a namespace


class Nodes:
    """The launcher run once per node (NODE_RANK, LOCAL_WORKER_NUM=1, MASTER_ADDR of node 0), each in its
    namespace with its own copy of the data and its own output folder."""

    def __init__(self, hosts, patches, root):
        self.hosts, self.root, self.port = hosts, root, 8118
        self.data = []
        for node in (0, 1):
            data = root / f"node{node}" / "data"
            data.mkdir(parents=True)
            for path in patches.parent.iterdir():
                shutil.copy(path, data / path.name)
            self.data.append(data)

    def outputs(self, run):
        """The output folders of launch ``run``, one per node."""
        return [self.root / f"node{node}" / run for node in (0, 1)]

    def start(self, train_args, outs, node_env=({}, {}), **env):
        self.port += 1  # each launch its own scheduler port (the namespaces have no other users)
        return [start_launcher(["ip", "netns", "exec", self.hosts[node], "bash",
                                str(SCRIPTS / "run_distribute_train_cpu.sh"), "2", str(self.data[node]),
                                str(outs[node])],
                               WORKER_NUM=2, LOCAL_WORKER_NUM=1, NODE_RANK=node, MASTER_ADDR=NODE_ADDRS[0],
                               MASTER_PORT=self.port, TRAIN_ARGS=train_args, **{**env, **node_env[node]})
                for node in (0, 1)]

    def run(self, train_args, outs, timeout=300, **env):
        start = time.monotonic()
        procs = self.start(train_args, outs, **env)
        outputs = finish(procs, outs, timeout)
        return [(proc.returncode, *out) for proc, out in zip(procs, outputs)], time.monotonic() - start


@pytest.fixture(scope="module")
def nodes(two_hosts, patches, tmp_path_factory):
    return Nodes(two_hosts, patches, tmp_path_factory.mktemp("nodes"))


@pytest.fixture(scope="module")
def two_nodes(nodes):
    """The training of `two_workers` as two nodes of one worker each: (results per node, output folders)."""
    outs = nodes.outputs("uninterrupted")
    results, seconds = nodes.run(TRAIN_ARGS, outs)
    print(f"two-node launch: {seconds:.1f} s")
    return results, outs


def test_two_nodes_train_as_two_workers_on_one_node(two_nodes, two_workers):
    results, outs = two_nodes
    for node, (code, stdout, stderr) in enumerate(results):
        assert code == 0, f"node {node}: {stdout[-3000:]}{stderr[-3000:]}"
    logs = [(outs[node] / "log" / f"worker_{node}.log").read_text() for node in (0, 1)]
    assert "batch 4 per device x 2 device(s) = global batch 8, 12 steps" in logs[1]
    assert "all 2 ranks start at step 0 from rank 0's state" in logs[1]
    digests = [_digest(text) for text in logs]
    assert digests[0] == digests[1]
    # node 1 has no checkpoint of its own: rank 0 alone writes them, on node 0
    assert not list(outs[1].rglob("*.ckpt"))
    one_node = read_ckpt(two_workers[1] / "ckpt_0" / "srcnn-final.ckpt")
    two = read_ckpt(outs[0] / "ckpt_0" / "srcnn-final.ckpt")
    assert set(one_node) == set(two)
    for key, value in one_node.items():
        np.testing.assert_array_equal(two[key], value, err_msg=key)
    assert digests[0] == _digest((two_workers[1] / "log" / "worker_0.log").read_text())


def test_a_lost_node_is_named_and_the_run_resumes(nodes, two_nodes, tmp_path):
    """Node 1 dies (every process of it, SIGKILL) right after rank 0 wrote the checkpoint of step 6: node 0
    exits 1 naming rank 1 on node 1 as lost, not itself. Both nodes relaunched with --resume=true continue from
    node 0's checkpoint (node 1 has none) and end with the weights of the uninterrupted two-node run."""
    results, uninterrupted_outs = two_nodes
    assert all(code == 0 for code, _, _ in results)
    outs = nodes.outputs("killed")
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(STOP_SITECUSTOMIZE)
    pid_file = tmp_path / "rank0.pid"
    stop_env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH", "")])),
                "SRCNN_STOP_AT": "srcnn-6.ckpt", "SRCNN_STOP_PID": str(pid_file)}
    start = time.monotonic()
    procs = nodes.start(TRAIN_ARGS, outs, node_env=(stop_env, {}), MS_NODE_TIMEOUT=10)
    killed = None
    try:
        wait_for(lambda: pid_file.is_file() or procs[0].poll() is not None, "rank 0 at the checkpoint of step 6")
        assert pid_file.is_file(), "rank 0 never reached the checkpoint of step 6"
        rank0 = int(pid_file.read_text())  # written whole: the file appears by rename
        wait_for(lambda: Path(f"/proc/{rank0}/stat").read_text().split(")")[-1].split()[0] == "T",
                 "rank 0 stopped (SIGSTOP)", seconds=60, interval=0.05)
        _kill_namespace(nodes.hosts[1])
        killed = time.monotonic()
        os.kill(rank0, signal.SIGCONT)
    finally:
        (stdout, stderr), _ = finish(procs, outs, timeout=240)
    detected = time.monotonic() - killed
    print(f"killed run: {time.monotonic() - start:.1f} s; node 0 stopped {detected:.1f} s after node 1 was killed "
          "(MS_NODE_TIMEOUT=10)")
    assert procs[0].returncode == 1, stdout[-3000:] + stderr[-3000:]
    assert ("error: rank 1 on node 1 was lost: no heartbeat for 10 s (process killed, machine down or network cut);"
            " its log: OUTPUT_PATH/log/worker_1.log on node 1 (NODE_RANK=1)") in stderr, stderr
    assert "note: rank(s) 0 did not finish: stopped after the failure above" in stderr
    assert "rank 0 failed" not in stderr
    # rank 0 saw the loss: in the collective waiting for rank 1 (src/train/cluster.py), or told by the scheduler
    rank0_log = (outs[0] / "log" / "worker_0.log").read_text()
    seen = [line for line in rank0_log.splitlines()
            if "[rank 0] stopped: a collective operation failed" in line or "Kill this process with SIGTERM" in line]
    assert seen, rank0_log[-3000:]
    print(f"rank 0: {seen[0]}")
    ckpts = sorted(p.name for p in outs[0].rglob("*.ckpt"))
    assert ckpts == ["srcnn-6.ckpt"], ckpts

    results, seconds = nodes.run(TRAIN_ARGS + " --resume=true", outs)
    print(f"resumed two-node launch: {seconds:.1f} s")
    for node, (code, out, err) in enumerate(results):
        assert code == 0, f"node {node}: {out[-3000:]}{err[-3000:]}"
    logs = [(outs[node] / "log" / f"worker_{node}.log").read_text() for node in (0, 1)]
    assert f"[rank 0] resumed from {outs[0]}/ckpt_0/srcnn-6.ckpt at step 6" in logs[0]
    assert "[rank 1] all 2 ranks start at step 6 from rank 0's state" in logs[1]
    uninterrupted = read_ckpt(uninterrupted_outs[0] / "ckpt_0" / "srcnn-final.ckpt")
    resumed = read_ckpt(outs[0] / "ckpt_0" / "srcnn-final.ckpt")
    worst = max(float(np.abs(resumed[k].astype(np.float64) - uninterrupted[k]).max()) for k in uninterrupted)
    print(f"resumed vs uninterrupted: max abs difference {worst:.3g}")
    assert worst == 0
    assert _digest(logs[0]) == _digest(logs[1])


def loopback_nodes(patches, outs, train_args):
    """Two nodes of one worker each on 127.0.0.1 (one network, shared data), ``train_args`` per node."""
    port = free_port()
    return [start_launcher(["bash", str(SCRIPTS / "run_distribute_train_cpu.sh"), "2", str(patches), str(out)],
                           WORKER_NUM=2, LOCAL_WORKER_NUM=1, NODE_RANK=node, MASTER_ADDR="127.0.0.1",
                           MASTER_PORT=port, TRAIN_ARGS=args)
            for node, (out, args) in enumerate(zip(outs, train_args))]


def test_nodes_that_disagree_stop_before_the_first_step(patches, tmp_path):
    """Two nodes (here both on loopback) launched with different settings (node 1: another lr): every node stops
    with the same one-line error before anything is written, instead of averaging two different recipes."""
    outs = [tmp_path / "node0", tmp_path / "node1"]
    start = time.monotonic()
    procs = loopback_nodes(patches, outs, (TRAIN_ARGS, TRAIN_ARGS + " --lr=0.002"))
    results = finish(procs, outs)
    print(f"disagreeing nodes: {time.monotonic() - start:.1f} s")
    for node, ((stdout, stderr), own_lr) in enumerate(zip(results, ("0.001", "0.002"))):
        assert procs[node].returncode == 1, stdout[-3000:] + stderr[-3000:]
        assert (f"error: rank {node} failed: error: the ranks do not agree on lr: rank(s) 1 differ from rank 0 "
                f"(this is rank {node}, with lr {own_lr}); give every node the same config, TRAIN_ARGS and data"
                in stderr), stderr
        log = (outs[node] / "log" / f"worker_{node}.log").read_text()
        assert "step 1/" not in log and "training 9-1-5" not in log
        assert not list(outs[node].rglob("*.ckpt")) and not (outs[node] / "train_log.jsonl").exists()


def test_a_missing_path_on_node_0_stops_every_node_at_once(patches, tmp_path):
    """validation_path is missing on both nodes: rank 1 does not check it (only rank 0 validates), rank 0 checks
    it after joining the cluster, so node 1 hears of rank 0's error at once instead of waiting for it to join."""
    outs = [tmp_path / "node0", tmp_path / "node1"]
    start = time.monotonic()
    procs = loopback_nodes(patches, outs, [f"{TRAIN_ARGS} --validation_path={tmp_path}/missing{node}"
                                           for node in (0, 1)])
    results = finish(procs, outs)
    print(f"missing validation_path on two nodes: {time.monotonic() - start:.1f} s")
    own = f"error: validation_path {tmp_path}/missing0 does not exist"
    assert procs[0].returncode == 1, results[0][1][-3000:]
    assert f"error: rank 0 failed: {own}" in results[0][1], results[0][1]
    assert procs[1].returncode == 1, results[1][1][-3000:]
    assert f"error: rank 1 failed: error: rank 0 could not start: {own[len('error: '):]}" in results[1][1], \
        results[1][1]
    assert "missing1" not in results[1][1]
    assert not list(tmp_path.rglob("*.ckpt"))


def test_stopping_the_launcher_stops_msrun_and_its_scheduler(patches, tmp_path):
    """SIGTERM to the launcher's process group (as a job scheduler or a terminal's Ctrl+C does): msrun, its
    scheduler and its worker (each in a session of its own) all end, and MASTER_PORT is not held."""
    out, port = tmp_path / "out", free_port()
    proc = start_launcher(["bash", str(SCRIPTS / "run_distribute_train_cpu.sh"), "1", str(patches), str(out)],
                          TRAIN_ARGS="--n1=8 --n2=4 --train_steps=1000000 --batch_size=4 --log_interval=20 "
                          "--padding=valid", MASTER_PORT=port)
    log = out / "log" / "worker_0.log"
    try:
        wait_for(lambda: log.is_file() and "step 20/" in log.read_text(), "the worker at step 20", interval=0.5)
        msrun = [int(p) for p in subprocess.run(["pgrep", "-f", "--", f"--master_port={port}"], capture_output=True,
                                                text=True).stdout.split()]
        started = _log_pids(out) | set(msrun)
        assert len(started) >= 3, started  # msrun, the scheduler, the worker
        os.killpg(proc.pid, signal.SIGTERM)
    finally:
        (_, stderr), = finish([proc], [out], timeout=60)
    assert proc.returncode == 143, stderr
    assert "error: terminated; msrun and its processes stopped" in stderr

    def gone():
        return not [pid for pid in started if Path(f"/proc/{pid}").exists()
                    and Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"]

    wait_for(gone, f"msrun's processes {sorted(started)} ended", seconds=30)
    with socket.socket() as sock:  # the scheduler's port is free again
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))


@pytest.mark.parametrize("message, shown", [
    # as MindSpore 2.10 on CPU reports a collective whose peer is gone (from the lost-node test's log)
    ("\n" + "-" * 52 + "\n- Kernel error:\n" + "-" * 52 + "\nLaunch kernel failed: Default/AllReduce-op0\n\n"
     + "-" * 52 + "\n- The Function Call Stack: (For framework developers)\n",
     "Launch kernel failed: Default/AllReduce-op0"),
    ("AllGather timed out after 30 s waiting for rank 1\nmore", "AllGather timed out after 30 s waiting for rank 1"),
    ("For 'AllReduce', the input shape (2, 3) does not match (3, 2)", None)])
def test_only_a_lost_peer_stops_a_rank_quietly(message, shown):
    """A collective's error that says a peer is gone: one line with MindSpore's first line, exit 1 at once; any
    other error of a collective is raised as it is (its traceback)."""
    code = ("import sys\nfrom src.train.cluster import stop_on_lost_peer\nwith stop_on_lost_peer():\n"
            "    raise RuntimeError(sys.argv[1])")
    result = subprocess.run([sys.executable, "-c", code, message], capture_output=True, text=True, cwd=REPO,
                            env={**os.environ, "RANK_ID": "3", "MS_NODE_TIMEOUT": "30"}, timeout=60)
    assert result.returncode == 1
    if shown:
        assert result.stdout.startswith("[rank 3] stopped: a collective operation failed ("), result.stdout
        assert result.stdout.rstrip().endswith(f"MindSpore: {shown}") and result.stderr == ""
    else:
        assert result.stdout == "" and f"RuntimeError: {message}" in result.stderr
