"""src/model_utils/launch.py's pure parts: train.py's command line from the launcher's flags and TRAIN_ARGS, the
DRY_RUN form of a command, the rank table, and what worker logs say about a failed job (no subprocess)."""
import json

import pytest

from src.model_utils import launch
from src.utils.errors import UserError

TRAIN_PY = launch.TRAIN_PY
OWN = ["--data_path=/d", "--output_path=/o", "--device_target=CPU", "--run_distribute=true"]

# a worker log as msrun leaves it: MindSpore's lines carry the pid, train.py's lines the rank
WORKER_LOG = """[WARNING] ME(4242,7f0000000000,python):2026-12-01-10:00:00.000.000 [mindspore/ccsrc/x.cc:1] warn
[rank 1] training 9-1-5 (n1=8, n2=4, padding=valid)
[rank 1] step 50/1000000 loss 0.0123
"""


# ---------------------------------------------------------------- command lines

@pytest.mark.parametrize("value, dry", [(None, False), ("", False), ("0", False), ("false", False), ("no", False),
                                        ("1", True), ("yes", True), ("true", True)])
def test_dry_run_values(value, dry):
    assert launch.is_dry_run(value) is dry


@pytest.mark.parametrize("word, quoted", [("--lr=0.001", "--lr=0.001"), ("/a/b_c.d", "/a/b_c.d"),
                                          ("a b", "'a b'"), ("it's", "'it'\\''s'"), ("$HOME", "'$HOME'"),
                                          ("", "''")])
def test_shell_quote(word, quoted):
    assert launch.shell_quote(word) == quoted


def test_format_command_quotes_values_not_names():
    assert launch.format_command(["CUDA_VISIBLE_DEVICES=0,1", "X=a b"], ["python", "train.py", "--k=v w"]) == \
        "CUDA_VISIBLE_DEVICES=0,1 X='a b' python train.py '--k=v w'"


def test_train_args_paths_are_made_absolute_against_the_caller():
    flags = launch.train_args_flags("--config_path=run.yaml --validation_path=../val --data_url=obs://b/d "
                                    "--lr=0.1 --output_dir=/abs --holdout_folder=", "/home/u/work")
    assert [passed for _, passed in flags] == ["--config_path=/home/u/work/run.yaml", "--validation_path=/home/u/val",
                                               "--data_url=obs://b/d", "--lr=0.1", "--output_dir=/abs",
                                               "--holdout_folder="]
    assert flags[0][0] == "--config_path=run.yaml"  # as given, for messages


def test_train_args_split_on_any_whitespace():
    assert [given for given, _ in launch.train_args_flags("  --a=1\t--b=2\n--c=3 ", "/")] == ["--a=1", "--b=2",
                                                                                            "--c=3"]
    assert launch.train_args_flags("", "/") == [] and launch.train_args_flags(None, "/") == []


def test_train_args_must_be_flags():
    with pytest.raises(UserError, match=r"^TRAIN_ARGS holds 'train_steps=3'; it takes train.py flags like "
                                        r"--key=value$"):
        launch.train_args_flags("--lr=1 train_steps=3", "/")


def test_train_command_order():
    assert launch.train_command(OWN, "--train_steps=5 --n1=8", "/") == [TRAIN_PY, *OWN, "--train_steps=5", "--n1=8"]


@pytest.mark.parametrize("train_args, own", [("--data_path=/elsewhere", "--data_path=/d"),
                                             ("--run_distribute=false", "--run_distribute=true"),
                                             ("--device_target", "--device_target=CPU")])
def test_train_args_may_not_set_the_launchers_keys(train_args, own):
    key = train_args.split("=")[0]
    with pytest.raises(UserError) as info:
        launch.train_command(OWN, f"--lr=0.1 {train_args}", "/")
    assert str(info.value) == (f"TRAIN_ARGS holds '{train_args}', but the launcher sets {key} itself ({own}, from "
                               "its checked arguments); drop it from TRAIN_ARGS")


def test_train_args_may_not_set_a_flag_added_per_process():
    with pytest.raises(UserError, match=r"sets --device_id itself \(--device_id=<each device>, "):
        launch.train_command(OWN, "--device_id=5", "/", later_flags=["--device_id=<each device>"])


def test_train_flags_are_checked_by_train_py_s_parser():
    launch.check_train_flags([TRAIN_PY, *OWN, "--train_steps=5"], "python")
    with pytest.raises(UserError, match=r"config key 'lr' expects a float, got 'abc' \(from --lr=abc\)"):
        launch.check_train_flags([TRAIN_PY, *OWN, "--lr=abc"], "python")
    with pytest.raises(UserError, match=r"unknown config key 'nosuch'"):
        launch.check_train_flags([TRAIN_PY, *OWN, "--nosuch=1"], "python")
    with pytest.raises(UserError, match=r"config key 'onnx_path' is not used by train.py"):  # eval_onnx.py's key
        launch.check_train_flags([TRAIN_PY, *OWN, "--onnx_path=m.onnx"], "python")


def test_runner_option():
    msrun = ["msrun", "--worker_num=4", "--local_worker_num=2", "--log_dir=/o/log", "train.py", "--worker_num=9"]
    assert launch.runner_option(msrun, "worker_num") == "4"  # msrun's own, not one of train.py's flags after it
    assert launch.runner_option(msrun, "log_dir") == "/o/log"
    assert launch.runner_option(["mpirun", "-n", "3", "-x", "PATH"], "n") == "3"
    with pytest.raises(ValueError):
        launch.runner_option(msrun, "node_rank")


# ---------------------------------------------------------------- rank table

TABLE = {"version": "1.0", "server_count": "1", "status": "completed",
         "server_list": [{"server_id": "10.0.0.1", "device": [
             {"device_id": "2", "device_ip": "192.168.100.101", "rank_id": "0"},
             {"device_id": "3", "device_ip": "192.168.101.101", "rank_id": "1"}]}]}


def test_rank_table_devices_and_ranks():
    table = launch.parse_rank_table(json.dumps(TABLE))
    assert table == [(2, 0), (3, 1)]
    assert launch.ranks_of_devices(table, range(2, 4), "T") == {2: 0, 3: 1}


@pytest.mark.parametrize("text, error", [("", "JSONDecodeError"), ("{}", "KeyError: 'server_list'"),
                                         ('{"server_list": [{"device": [{"device_id": "x", "rank_id": 0}]}]}',
                                          "ValueError: invalid literal"),
                                         ("[1]", "TypeError")])
def test_not_a_rank_table(text, error):
    with pytest.raises(ValueError, match=r"^not a rank table with server_list\[\]\.device\[\]\.device_id/rank_id "
                                         rf"\({error}"):
        launch.parse_rank_table(text)


def test_rank_table_must_list_exactly_the_devices():
    table = [(2, 0), (3, 1)]
    with pytest.raises(launch.UsageError, match=r"^T lists 2 device\(s\) but DEVICE_NUM is 3$"):
        launch.ranks_of_devices(table, range(2, 5), "T")
    with pytest.raises(launch.UsageError, match=r"^T has no device 0$"):
        launch.ranks_of_devices(table, range(0, 2), "T")


# ---------------------------------------------------------------- what the logs say

def test_first_error_is_train_py_s_error_line():
    text = "[rank 0] starting\nerror: MindRecord /x does not exist\nerror: later\n"
    assert launch.first_error(text) == "error: MindRecord /x does not exist"


def test_first_error_of_a_traceback_is_its_last_exception_line():
    text = ("Traceback (most recent call last):\n  File \"train.py\", line 1\nValueError: inner\n\nDuring handling"
            "...\nTraceback (most recent call last):\n  File \"x\"\nRuntimeError: outer failure\n")
    assert launch.first_error(text) == "RuntimeError: outer failure"
    assert launch.first_error("ValueError: not in a traceback\n") == ""
    assert launch.first_error("") == ""


def test_log_rank_from_the_log_its_name_or_its_folder():
    assert launch.log_rank(WORKER_LOG, "/o/log/worker_7.log") == "1"  # what train.py printed wins
    assert launch.log_rank("", "/o/log/worker_7.log") == "7"
    assert launch.log_rank("no rank here", "/o/device3/train.log") == "of device3"


def test_log_pid_and_final_digest():
    assert launch.log_pid(WORKER_LOG) == "4242"
    assert launch.log_pid("[rank 0] no MindSpore line\n") is None
    assert launch.final_digest("x\n[rank 0] final weights sha256 00ff1a\n") == "00ff1a"
    assert launch.final_digest(WORKER_LOG) is None


def test_lost_ranks_from_the_scheduler_log():
    text = ("[WARNING] DISTRIBUTED(1,2,python):x] The node: 3 is timed out\n"
            "The node: 1 is timed out\nThe node: 3 is timed out\n")
    assert launch.lost_ranks(text) == [1, 3]
    assert launch.lost_ranks("") == []


def test_compare_final_weights():
    same = [(f"/l/worker_{r}.log", f"[rank {r}] final weights sha256 ab12\n") for r in (0, 1)]
    assert launch.compare_final_weights(same) == ([], "ab12")
    diverged = same[:1] + [("/l/worker_1.log", "[rank 1] final weights sha256 cd34\n"), ("/l/worker_2.log", "")]
    errors, digest = launch.compare_final_weights(diverged)
    assert digest == "ab12"
    assert errors == ["error: rank 1 ended with different weights (sha256 cd34, not ab12): the ranks diverged; "
                      "log: /l/worker_1.log",
                      "error: rank 2 exited without finishing training; log: /l/worker_2.log"]


def test_worker_failures_names_the_failed_and_the_stopped_ranks():
    logs = [("/o/log/worker_0.log", "[rank 0] step 3\nerror: interrupted\n"),
            ("/o/log/worker_1.log", "[rank 1] x\nerror: /d holds x2 patches but scale=3\n")]
    assert launch.worker_failures("/o/msrun.log", "", [], logs) == [
        "error: rank 1 failed: error: /d holds x2 patches but scale=3", "       log: /o/log/worker_1.log",
        "note: rank(s) 0 did not finish: stopped after the failure above"]


def test_worker_failures_names_a_killed_process_by_its_pid():
    msrun_log = "Worker process 4242 exit with exception. Error code: -9.\n"
    logs = [("/o/log/worker_0.log", "[rank 0] step 50\n"), ("/o/log/worker_1.log", WORKER_LOG)]
    assert launch.worker_failures("/o/msrun.log", msrun_log, [], logs) == [
        "error: rank 1 failed (process 4242 exited abnormally, see the end of its log)",
        "       log: /o/log/worker_1.log",
        "note: rank(s) 0 did not finish: stopped after the failure above"]


def test_worker_failures_names_a_lost_rank_of_another_node():
    logs = [("/o/log/worker_0.log", "[rank 0] stopped: a collective operation failed (MindSpore: ...)\n")]
    lines = launch.worker_failures("/o/msrun.log", "", [0, 1], logs, local_workers=1, node_rank=0, node_timeout="10")
    assert lines == ["error: rank 1 on node 1 was lost: no heartbeat for 10 s (process killed, machine down or "
                     "network cut); its log: OUTPUT_PATH/log/worker_1.log on node 1 (NODE_RANK=1)",
                     "note: rank(s) 0 did not finish: stopped after the failure above"]


def test_worker_failures_on_node_1_when_node_0_is_gone():
    logs = [("/o/log/worker_1.log", "[rank 1] Kill this process with SIGTERM\n"
                                    "Failed to send heartbeat message to meta server\n")]
    lines = launch.worker_failures("/o/msrun.log", "", [], logs, node_rank=1, master="192.0.2.1:8119")
    assert lines[0] == ("error: node 0 was lost: its scheduler at 192.0.2.1:8119 stopped answering (node 0 stopped, "
                        "or it ended the job after losing another node); see the launcher output and "
                        "OUTPUT_PATH/log/ on node 0")
    assert lines[1] == "note: rank(s) 1 did not finish: stopped after the failure above"


def test_worker_failures_when_no_log_names_an_error():
    logs = [("/o/log/worker_0.log", "[rank 0] final weights sha256 ab\n"), ("/o/log/worker_1.log", "")]
    assert launch.worker_failures("/o/mpirun.log", "", [], logs) == [
        "error: the job failed but no worker log names an error; see /o/mpirun.log and the logs: "
        "/o/log/worker_0.log /o/log/worker_1.log",
        "note: rank(s) 1 did not finish: stopped after the failure above"]


def test_exit_status_as_a_shell_reports_it():
    assert [launch.exit_status(code) for code in (0, 2, -15, -9)] == [0, 2, 143, 137]
