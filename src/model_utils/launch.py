"""What the training launchers (scripts/run_*train*.sh) do after checking their arguments: build train.py's
command line (the launcher's flags, then TRAIN_ARGS, checked by train.py's own configuration parser), print it
(DRY_RUN=1) or run it, wait for the ranks, name a failed rank with its log line, stop the others (and msrun's
scheduler) on a failure or a signal, and check that data-parallel ranks end with the same weights.

The launcher execs ``python -m src.model_utils.launch MODE OPTION... -- FLAG...`` (it becomes this process, so
the signals sent to the launcher reach it), from the repository root:
  single      one train.py process in OUTPUT_PATH; output on the console and in OUTPUT_PATH/train.log
  rank_table  one train.py process per device of an HCCL rank table, each in OUTPUT_PATH/device<id>/
  msrun       the msrun command given with --runner (MindSpore's dynamic cluster), logs in OUTPUT_PATH/log/
  mpirun      the mpirun command given with --runner, logs in OUTPUT_PATH/log/
FLAGs are the launcher's own train.py flags (after --data_path, --output_path, --pre_trained_path).
Exit codes: 2 = bad argument or environment (nothing was started), 1 = training failed, 130/143 = interrupted.
The functions above ``# ---- processes`` are pure (tests/unit/test_launch.py).
"""
import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

from src import REPO_ROOT
from src.utils.errors import UserError

TRAIN_PY = os.path.join(REPO_ROOT, "train.py")
# TRAIN_ARGS keys holding a path: made absolute against the caller's folder (train.py runs from OUTPUT_PATH)
PATH_KEY = re.compile(r"_(path|url|folder|dir)$")
RANK_TABLE_SHAPE = "server_list[].device[].device_id/rank_id"


class UsageError(UserError):
    """A bad launcher argument: reported with the launcher's usage line."""


# ------------------------------------------------------------------ command lines
def is_dry_run(value):
    """DRY_RUN's value: anything but unset, empty, 0, false or no means print the commands instead."""
    return value not in (None, "", "0", "false", "no")


def shell_quote(word):
    """``word`` as the shell reads it back: plain if it has no special characters, else in '...'."""
    if re.fullmatch(r"[A-Za-z0-9_./=:,@%+-]+", word):
        return word
    return "'" + word.replace("'", "'\\''") + "'"


def format_command(env, cmd):
    """``VAR=value ... CMD ARGS...`` on one line, as DRY_RUN shows it, ready to paste."""
    words = [f"{name}={shell_quote(value)}" for name, value in (item.split("=", 1) for item in env)]
    return " ".join(words + [shell_quote(word) for word in cmd])


def caller_path(path, caller_dir):
    """``path`` absolute and normalised against the folder the launcher was called from (like realpath -m)."""
    return os.path.realpath(os.path.join(caller_dir, path))


def train_args_flags(train_args, caller_dir):
    """TRAIN_ARGS split on whitespace (no quoting), each a --key=value flag, relative paths (keys *_path, *_url,
    *_folder, *_dir; not URLs like obs://) made absolute against ``caller_dir``: [(as given, as passed)]."""
    flags = []
    for arg in (train_args or "").split():
        if not arg.startswith("--"):
            raise UserError(f"TRAIN_ARGS holds '{arg}'; it takes train.py flags like --key=value")
        key, eq, value = arg.partition("=")
        if eq and PATH_KEY.search(key) and value and not value.startswith("/") and "://" not in value:
            flags.append((arg, f"{key}={caller_path(value, caller_dir)}"))
        else:
            flags.append((arg, arg))
    return flags


def train_command(launcher_flags, train_args, caller_dir, later_flags=()):
    """train.py and its flags: ``launcher_flags`` (--data_path, --output_path, ..., from the launcher's checked
    arguments), then TRAIN_ARGS. UserError if TRAIN_ARGS sets a key the launcher sets itself (in
    ``launcher_flags``, or per process later: ``later_flags``, e.g. --device_id=<each device>)."""
    own = list(launcher_flags) + list(later_flags)
    extra = []
    for given, passed in train_args_flags(train_args, caller_dir):
        key = given.split("=", 1)[0]
        for flag in own:
            if flag.split("=", 1)[0] == key:
                raise UserError(f"TRAIN_ARGS holds '{given}', but the launcher sets {key} itself ({flag}, from its "
                                "checked arguments); drop it from TRAIN_ARGS")
        extra.append(passed)
    return [TRAIN_PY, *launcher_flags, *extra]


def runner_option(cmd, name):
    """The value of ``--name=value`` (msrun) or ``-name value`` (mpirun's -n) in the command ``cmd``."""
    for i, word in enumerate(cmd):
        if word.startswith(f"--{name}="):
            return word.split("=", 1)[1]
        if word == f"-{name}" and i + 1 < len(cmd):
            return cmd[i + 1]
    raise ValueError(f"the launcher's command has no {name}: {cmd}")


def parse_rank_table(text):
    """[(device_id, rank_id)] of every device of an HCCL rank table (JSON text); ValueError naming what is
    wrong."""
    try:
        table = json.loads(text)
        return [(int(device["device_id"]), int(device["rank_id"]))
                for server in table["server_list"] for device in server["device"]]
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"not a rank table with {RANK_TABLE_SHAPE} ({type(err).__name__}: {err})") from None


def ranks_of_devices(table, devices, where):
    """{device: rank} for ``devices`` (the ones to start): the table lists exactly as many, each of them."""
    if len(table) != len(devices):
        raise UsageError(f"{where} lists {len(table)} device(s) but DEVICE_NUM is {len(devices)}")
    ranks = {}
    for device in devices:
        found = [rank for listed, rank in table if listed == device]
        if not found:
            raise UsageError(f"{where} has no device {device}")
        ranks[device] = found[0]
    return ranks


# ------------------------------------------------------------------ what the logs say
def first_error(text):
    """The line that says why a rank stopped: train.py's first "error: ..." line, else the last exception line
    of a Python traceback; "" if neither."""
    found = re.search(r"^error: .*$", text, re.M)
    if found:
        return found.group(0)
    if "Traceback (most recent call last)" in text:
        lines = re.findall(r"^[A-Za-z_.]+(?:Error|Exception|Interrupt)\b.*$", text, re.M)
        return lines[-1] if lines else ""
    return ""


def log_rank(text, path):
    """The rank a worker log belongs to: from its "[rank r]" lines, else from its name worker_<r>.log, else
    "of <its folder>" (e.g. "rank of device3")."""
    found = re.search(r"^\[rank ([0-9]+)\]", text, re.M)
    if found:
        return found.group(1)
    named = re.search(r"_([0-9]+)$", os.path.basename(path).removesuffix(".log"))
    if named:
        return named.group(1)
    return f"of {os.path.basename(os.path.dirname(path))}"


def log_pid(text):
    """The process id MindSpore prints in its log lines ("[WARNING] ME(1234,..."), or None."""
    found = re.search(r"^\[(?:DEBUG|INFO|WARNING|ERROR|CRITICAL)\] [A-Z_]+\(([0-9]+),", text, re.M)
    return found.group(1) if found else None


def final_digest(text):
    """The digest of train.py's "final weights sha256 <hex>" line, or None: the rank finished."""
    found = re.search(r"final weights sha256 ([0-9a-f]+)", text)
    return found.group(1) if found else None


def lost_ranks(scheduler_text):
    """The ranks msrun's scheduler (node 0) took as lost (no heartbeat for MS_NODE_TIMEOUT s), sorted."""
    return sorted({int(rank) for rank in re.findall(r"The node: ([0-9]+) is timed out", scheduler_text)})


def compare_final_weights(logs):
    """``logs``: [(path, text)] of ranks that exited 0. Data-parallel ranks must end with identical weights:
    (error lines for each rank that did not finish or differs from the first, the common digest or None)."""
    errors, first = [], None
    for path, text in logs:
        digest = final_digest(text)
        if digest is None:
            errors.append(f"error: rank {log_rank(text, path)} exited without finishing training; log: {path}")
        elif first is None:
            first = digest
        elif digest != first:
            errors.append(f"error: rank {log_rank(text, path)} ended with different weights (sha256 {digest}, not "
                          f"{first}): the ranks diverged; log: {path}")
    return errors, first


def worker_failures(launcher_log, launcher_text, lost, logs, local_workers=1, node_rank=0, node_timeout=30,
                    master="?:?"):
    """Error and note lines after a failed msrun/mpirun job. ``launcher_log``, ``launcher_text``: the file of
    msrun's or mpirun's output and its text; ``lost``: the ranks the scheduler timed out; ``logs``: [(path,
    text)] of this node's worker logs; the rest: msrun's settings (``master``: "address:port"). Names each rank
    of another node that was lost, each rank that failed by itself (its error line and log) and each rank that
    was stopped because of it."""
    lines, stopped, failed, lost_scheduler = [], [], 0, False
    # msrun: "Worker process 1234 exit with exception. Error code: 2."
    bad_pids = set(re.findall(r"Worker process ([0-9]+) exit with exception", launcher_text))
    for rank in lost:
        # this node's own ranks are judged by their logs below (msrun stops them all when one fails, and the
        # scheduler then times them out too)
        node = rank // local_workers
        if node == node_rank:
            continue
        lines.append(f"error: rank {rank} on node {node} was lost: no heartbeat for {node_timeout} s (process "
                     f"killed, machine down or network cut); its log: OUTPUT_PATH/log/worker_{rank}.log on node "
                     f"{node} (NODE_RANK={node})")
        failed += 1
    for path, text in logs:
        rank, err, pid = log_rank(text, path), first_error(text), log_pid(text)
        # "error: interrupted" is a rank sent SIGTERM/SIGINT (by msrun or MindSpore after another rank's
        # failure): stopped, not failed
        if err and err != "error: interrupted":
            lines += [f"error: rank {rank} failed: {err}", f"       log: {path}"]
            failed += 1
        elif re.search("stopped: a collective operation failed|Kill this process with SIGTERM", text):
            # this rank lost a peer: src/train/cluster.py says so, or MindSpore stops it when the scheduler
            # reports a loss
            stopped.append(rank)
            lost_scheduler = lost_scheduler or "Failed to send heartbeat message to meta server" in text
        elif pid is not None and pid in bad_pids:
            lines += [f"error: rank {rank} failed (process {pid} exited abnormally, see the end of its log)",
                      f"       log: {path}"]
            failed += 1
        elif final_digest(text) is None:
            stopped.append(rank)
    if failed == 0 and lost_scheduler and node_rank != 0:
        lines.append(f"error: node 0 was lost: its scheduler at {master} stopped answering (node 0 stopped, or it "
                     "ended the job after losing another node); see the launcher output and OUTPUT_PATH/log/ on "
                     "node 0")
    elif failed == 0:
        lines.append(f"error: the job failed but no worker log names an error; see {launcher_log} and the logs: "
                     f"{' '.join(path for path, _ in logs)}")
    if stopped:
        lines.append(f"note: rank(s) {' '.join(stopped)} did not finish: stopped after the failure above")
    return lines


# ------------------------------------------------------------------ processes
def read_text(path):
    """The file's text ("" if it cannot be read: a log a rank never wrote)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return ""


def say(*lines, err=False):
    stream = sys.stderr if err else sys.stdout
    for line in lines:
        print(line, file=stream, flush=True)


def exit_status(returncode):
    """A child's exit status as a shell reports it (128 + signal for one killed by a signal)."""
    return 128 - returncode if returncode < 0 else returncode


def check_finished_logs(paths):
    """0 if every log shows the same final weights (printed), else 1 with the ranks that differ named."""
    errors, digest = compare_final_weights([(path, read_text(path)) for path in paths])
    say(*errors, err=True)
    if errors or digest is None:
        return 1
    say(f"all {len(paths)} local rank(s) finished with identical weights (sha256 {digest})")
    return 0


def copy_output(source, log_path):
    """Copy the bytes of ``source`` (a pipe) to stdout and to the file ``log_path`` until it closes (tee)."""
    with open(log_path, "wb") as log:
        while chunk := os.read(source.fileno(), 65536):
            for out in (sys.stdout.buffer, log):
                out.write(chunk)
                out.flush()


def run_teed(cmd, cwd, log_path, **popen):
    """Start ``cmd`` from ``cwd`` with its output (stdout and stderr) on the console and in ``log_path``:
    (process, the thread copying its output)."""
    sys.stdout.flush()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **popen)
    copier = threading.Thread(target=copy_output, args=(proc.stdout, log_path), daemon=True)
    copier.start()
    return proc, copier


class Signalled(Exception):
    """SIGINT or SIGTERM arrived while the launcher waited for its processes."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


def _raise_signalled(signum, frame):
    for sig in (signal.SIGINT, signal.SIGTERM):  # one clean-up, not one per signal
        signal.signal(sig, signal.SIG_IGN)
    raise Signalled(signum)


@contextlib.contextmanager
def signals_to(handler):
    """SIGINT and SIGTERM go to ``handler`` inside the block; the previous handlers come back after it."""
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def is_running(pid):
    """The process exists and is not a zombie (an exited child its parent has not reaped yet)."""
    stat = read_text(f"/proc/{pid}/stat")
    return bool(stat) and stat.rsplit(")", 1)[-1].split()[0] != "Z"


def child_pids(pid):
    """The processes whose parent is ``pid`` (from /proc)."""
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = read_text(f"/proc/{entry}/stat")
            if stat and stat.rsplit(")", 1)[-1].split()[1] == str(pid):
                children.append(int(entry))
    return children


def signal_group(pid, signum):
    """``signum`` to the process group (session) led by ``pid``, else to ``pid`` alone."""
    for send, target in ((os.killpg, pid), (os.kill, pid)):
        try:
            send(target, signum)
            return
        except (ProcessLookupError, PermissionError):
            continue


def stop_session(pid):
    """TERM to the children of ``pid`` (msrun: scheduler and workers, each in its own session with what they
    started) and to ``pid``'s session; KILL to what still runs 10 s later."""
    children = child_pids(pid)
    for target in [*children, pid]:
        signal_group(target, signal.SIGTERM)
    for _ in range(20):
        if not any(is_running(target) for target in [*children, pid]):
            return
        time.sleep(0.5)
    for target in [*children, pid]:
        signal_group(target, signal.SIGKILL)


def wait_passing_signals(proc):
    """Wait for ``proc`` (in the launcher's process group), passing it SIGINT/SIGTERM sent to the launcher
    alone: (its exit status, the signal the launcher got or 0). train.py stops cleanly on them
    (src/utils/errors.py); the launcher then exits 128 + signal, quietly, as the shell it replaced did."""
    received = []

    def pass_on(signum, frame):
        received.append(signum)
        proc.send_signal(signum)

    with signals_to(pass_on):
        status = exit_status(proc.wait())
    return status, (received[0] if received else 0)


def run_single(python, train_cmd, output, env):
    """train.py in one process from ``output``, its output on the console and in output/train.log."""
    log = os.path.join(output, "train.log")
    say(f"training; log: {log}")
    proc, copier = run_teed([python, *train_cmd], output, log, env=env)
    status, signum = wait_passing_signals(proc)
    copier.join()
    if signum:
        return 128 + signum
    if status != 0:
        say(f"error: training failed (exit code {status}): {first_error(read_text(log))}", f"       log: {log}",
            err=True)
        return 1
    return 0


class Rank:
    """A started process of the rank-table launcher: its name ("rank 1 (device 3)"), process and log."""

    def __init__(self, name, cwd, log, env, cmd):
        self.name, self.log = name, log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        say(f"started {name} (pid {self.proc.pid}), log: {log}")


def stop_ranks(ranks, signum=signal.SIGTERM):
    for rank in ranks:
        if rank.proc.poll() is None:
            rank.proc.send_signal(signum)


def wait_ranks(ranks):
    """Wait for every rank. When one fails, name it, its error and its log, stop the others (they would block in
    collectives: TERM, then KILL 10 s later) and return 1; else check the ranks' final weights agree."""
    with signals_to(_raise_signalled):
        try:
            failed = _wait_for_ranks(ranks)
        except Signalled:  # further signals are ignored until the launcher exits (_raise_signalled)
            stop_ranks(ranks)
            say("error: interrupted; ranks stopped", err=True)
            return 130
    return 1 if failed else check_finished_logs([rank.log for rank in ranks])


def _wait_for_ranks(ranks):
    """Poll the ranks each second until all have exited; True if one failed (reported, the others stopped)."""
    done, failed, stopping = {}, False, 0
    while len(done) < len(ranks):
        for rank in ranks:
            if rank in done or rank.proc.poll() is None:
                continue
            done[rank] = status = exit_status(rank.proc.returncode)
            if status != 0 and (not failed or status not in (143, 137)):
                say(f"error: {rank.name} failed (exit code {status}): {first_error(read_text(rank.log))}",
                    f"       log: {rank.log}", err=True)
                failed = True
            elif status != 0:
                say(f"note: {rank.name} was stopped after the failure above; log: {rank.log}", err=True)
        if len(done) == len(ranks):
            break
        if failed:
            stopping += 1
            stop_ranks(ranks, signal.SIGKILL if stopping > 10 else signal.SIGTERM)
        time.sleep(1)
    return failed


def run_msrun(msrun_cmd, train_cmd, output, env, node_timeout):
    """msrun's command from ``output`` in a session of its own, its output on the console and in
    output/msrun.log; on a failure, the failed and the lost ranks named; on SIGINT/SIGTERM, msrun, its scheduler
    and its workers stopped (an orphaned scheduler would hold MASTER_PORT for minutes)."""
    total, local = runner_option(msrun_cmd, "worker_num"), int(runner_option(msrun_cmd, "local_worker_num"))
    node_rank, log_dir = int(runner_option(msrun_cmd, "node_rank")), runner_option(msrun_cmd, "log_dir")
    master = f"{runner_option(msrun_cmd, 'master_addr')}:{runner_option(msrun_cmd, 'master_port')}"
    first_local = int(runner_option(msrun_cmd, "tail_worker_log"))
    os.makedirs(log_dir, exist_ok=True)
    for name in os.listdir(log_dir):
        if re.fullmatch(r"worker_.*\.log|scheduler\.log", name):
            os.remove(os.path.join(log_dir, name))
    launcher_log = os.path.join(output, "msrun.log")
    say(f"msrun: {local} of {total} worker(s) on node {node_rank}, scheduler {master} (a rank silent for "
        f"MS_NODE_TIMEOUT={node_timeout} s is lost); logs in {log_dir}, msrun output in {launcher_log}")
    proc = None
    with signals_to(_raise_signalled):
        try:
            # msrun in a session of its own, so that a signal to the launcher's process group does not kill
            # msrun alone and orphan its scheduler: stop_session stops them all
            proc, copier = run_teed([*msrun_cmd, *train_cmd], output, launcher_log, env=env, start_new_session=True)
            status = exit_status(proc.wait())
        except Signalled as stop:  # further signals are ignored until the launcher exits (_raise_signalled)
            if proc is not None:
                stop_session(proc.pid)
            what = "interrupted" if stop.signum == signal.SIGINT else "terminated"
            say(f"error: {what}; msrun and its processes stopped", err=True)
            return 128 + stop.signum
    copier.join()
    logs = [os.path.join(log_dir, f"worker_{rank}.log") for rank in range(first_local, first_local + local)]
    if status != 0:
        say(f"error: distributed training failed (msrun exit code {status})", err=True)
        lost = lost_ranks(read_text(os.path.join(log_dir, "scheduler.log")))
        say(*worker_failures(launcher_log, read_text(launcher_log), lost, [(path, read_text(path)) for path in logs],
                             local, node_rank, node_timeout, master), err=True)
        return 1
    return check_finished_logs(logs)


def run_mpirun(mpirun_cmd, train_cmd, output, env):
    """mpirun's command from ``output``, its output on the console and in output/mpirun.log; each rank writes
    log/worker_<rank>.log (the rank shell in the launcher's command); the failed ranks named on a failure."""
    total = int(runner_option(mpirun_cmd, "n"))
    log_dir = env["SRCNN_LOG_DIR"]
    os.makedirs(log_dir, exist_ok=True)
    for name in os.listdir(log_dir):
        if re.fullmatch(r"worker_.*\.log", name):
            os.remove(os.path.join(log_dir, name))
    launcher_log = os.path.join(output, "mpirun.log")
    say(f"mpirun: {total} process(es); logs in {log_dir}, mpirun output in {launcher_log}")
    proc, copier = run_teed([*mpirun_cmd, *train_cmd], output, launcher_log, env=env)
    status, signum = wait_passing_signals(proc)
    copier.join()
    if signum:
        return 128 + signum
    logs = [path for path in (os.path.join(log_dir, f"worker_{rank}.log") for rank in range(total))
            if os.path.isfile(path)]
    if status != 0:
        say(f"error: distributed training failed (mpirun exit code {status})", err=True)
        say(*worker_failures(launcher_log, read_text(launcher_log), [], [(path, read_text(path)) for path in logs]),
            err=True)
        return 1
    return check_finished_logs(logs)


# ------------------------------------------------------------------ the command line of this module
def check_train_flags(train_cmd, python):
    """train.py's configuration parser on ``train_cmd``'s flags (no MindSpore, a fraction of a second): an
    unknown key, a value of the wrong type or out of range, an unreadable --config_path is train.py's one-line
    error, before anything starts or is created."""
    try:
        from src.model_utils.config import get_config  # needs PyYAML: reported, not a traceback, if it is missing
    except ImportError as err:
        raise UserError(f"train.py's settings cannot be checked with {python}: {type(err).__name__}: {err}")
    get_config(train_cmd[1:], script="train.py")


def prepare_output(path, dry_run):
    """OUTPUT_PATH: a folder, created unless DRY_RUN."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"OUTPUT_PATH '{path}' exists and is not a folder")
    if dry_run:
        return
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:
        raise UsageError(f"OUTPUT_PATH '{path}' cannot be created") from None
    if not os.access(path, os.W_OK):
        raise UsageError(f"OUTPUT_PATH '{path}' is not writable")


def parse_args(argv):
    """(options, the launcher's train.py flags): MODE OPTION... -- FLAG..."""
    split = argv.index("--") if "--" in argv else len(argv)
    parser = argparse.ArgumentParser(prog="python -m src.model_utils.launch", allow_abbrev=False)
    parser.add_argument("mode", choices=("single", "rank_table", "msrun", "mpirun"))
    parser.add_argument("--caller_dir", required=True, help="the folder the launcher was called from")
    parser.add_argument("--python", required=True, help="the interpreter for train.py")
    parser.add_argument("--usage_line", default="usage: ?", help="the launcher's usage line, for its errors")
    parser.add_argument("--data_path", required=True)
    parser.add_argument("--output_path", required=True)
    parser.add_argument("--pre_trained_path", default="", help="empty: none")
    parser.add_argument("--env", action="append", default=[], help="VAR=value for the processes (repeatable)")
    parser.add_argument("--runner", action="append", default=[], help="a word of the msrun/mpirun command")
    parser.add_argument("--rank_table", help="rank_table: the HCCL rank table (JSON)")
    parser.add_argument("--begin_device", type=int, help="rank_table: the first device")
    parser.add_argument("--device_num", type=int, help="rank_table: the number of devices")
    return parser.parse_args(argv[:split]), argv[split + 1:]


def run_rank_table(opts, ranks, train_cmd, env, dry_run):
    """One train.py per device of ``ranks`` ({device: rank}), each from OUTPUT_PATH/device<id>/ with its
    train.log, its rank table variables and --device_id; printed (DRY_RUN) or started and waited for."""
    started = []
    for device, rank in ranks.items():
        folder = os.path.join(opts.output_path, f"device{device}")
        rank_env = [f"DEVICE_ID={device}", f"RANK_ID={rank}", f"RANK_SIZE={opts.device_num}",
                    f"RANK_TABLE_FILE={opts.rank_table}"]
        cmd = [opts.python, *train_cmd, f"--device_id={device}"]
        if dry_run:
            say(f"cd {shell_quote(folder)} && {format_command(rank_env, cmd)} > train.log 2>&1 &")
            continue
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError:
            stop_ranks(started)
            raise UserError(f"cannot create {folder}") from None
        started.append(Rank(f"rank {rank} (device {device})", folder, os.path.join(folder, "train.log"),
                            dict(env, **dict(item.split("=", 1) for item in rank_env)), cmd))
    if dry_run:
        return 0
    say(f"waiting for {opts.device_num} process(es)...")
    return wait_ranks(started)


def launch(opts, flags):
    """Check TRAIN_ARGS and OUTPUT_PATH, then print (DRY_RUN) or run the mode's processes: the exit code."""
    dry_run = is_dry_run(os.environ.get("DRY_RUN"))
    env = dict(os.environ, **dict(item.split("=", 1) for item in opts.env))
    later, ranks = [], {}
    if opts.mode == "rank_table":
        where = f"RANK_TABLE_FILE '{opts.rank_table}'"
        try:
            table = parse_rank_table(read_text(opts.rank_table))
        except ValueError as err:
            raise UsageError(f"{where} is {err}") from None
        ranks = ranks_of_devices(table, range(opts.begin_device, opts.begin_device + opts.device_num), where)
        later = ["--device_id=<each device of the rank table>"]
    if opts.mode == "mpirun" and not dry_run and shutil.which("mpirun") is None:
        raise UserError("LAUNCHER=mpirun but mpirun is not on PATH (install OpenMPI)")
    launcher_flags = [f"--data_path={opts.data_path}", f"--output_path={opts.output_path}",
                      *([f"--pre_trained_path={opts.pre_trained_path}"] if opts.pre_trained_path else []), *flags]
    train_cmd = train_command(launcher_flags, os.environ.get("TRAIN_ARGS"), opts.caller_dir, later)
    check_train_flags(train_cmd, opts.python)
    prepare_output(opts.output_path, dry_run)
    if opts.mode == "rank_table":
        return run_rank_table(opts, ranks, train_cmd, env, dry_run)
    cmd = [opts.python, *train_cmd] if opts.mode == "single" else [*opts.runner, *train_cmd]
    if dry_run:
        say(format_command(opts.env, cmd))
        return 0
    if opts.mode == "single":
        return run_single(opts.python, train_cmd, opts.output_path, env)
    if opts.mode == "msrun":
        return run_msrun(opts.runner, train_cmd, opts.output_path, env, env.get("MS_NODE_TIMEOUT", "30"))
    return run_mpirun(opts.runner, train_cmd, opts.output_path, env)


def main(argv=None):
    opts, flags = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return launch(opts, flags)
    except UsageError as err:
        say(f"error: {err} ({opts.usage_line}; run with --help for details)", err=True)
    except UserError as err:
        say(f"error: {err}", err=True)
    return 2


if __name__ == "__main__":
    sys.exit(main())
