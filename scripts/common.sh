#!/usr/bin/env bash
# Shared by the scripts/run_*train*.sh launchers (sourced, not run): argument checks, the command line of
# train.py, msrun settings and reporting which rank failed.
#
# Environment read by every launcher:
#   TRAIN_ARGS  extra train.py flags, split on whitespace (no quoting): TRAIN_ARGS="--train_steps=20 --n1=8"
#   DRY_RUN=1   check the arguments, then print the commands instead of running them (nothing is created)
#   PYTHON      interpreter for train.py (default: <repo>/.venv/bin/python if present, else python3)
# and by the msrun launchers (see msrun_settings): WORKER_NUM, LOCAL_WORKER_NUM, NODE_RANK, MASTER_ADDR,
# MASTER_PORT, plus MindSpore's own MS_NODE_TIMEOUT etc., which the workers inherit.
#
# Exit codes of the launchers: 2 = bad argument or environment (nothing was started), 1 = training failed.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TRAIN_PY="$REPO_ROOT/train.py"

# ------------------------------------------------------------------ messages
usage() {
    printf '%s\n' "$USAGE" >&2
}

# Bad argument: one line, the message and the usage line ("error: ... (usage: ...)"), exit 2.
fail_usage() {
    echo "error: $* (${USAGE%%$'\n'*}; run with --help for details)" >&2
    exit 2
}

# Bad setting outside the positional arguments (environment, installation): one line, exit 2.
fail_setup() {
    echo "error: $*" >&2
    exit 2
}

# Launchers call this first: no arguments or -h/--help print the usage; a wrong count names the problem.
check_nargs() {  # MIN MAX "$@"
    local min=$1 max=$2
    shift 2
    if (($# == 1)) && [[ $1 == -h || $1 == --help ]]; then
        printf '%s\n' "$USAGE"
        exit 0
    fi
    if (($# == 0)); then
        usage
        exit 2
    fi
    if (($# < min || $# > max)); then
        if ((min == max)); then
            fail_usage "expected $min arguments, got $#"
        fi
        fail_usage "expected $min to $max arguments, got $#"
    fi
}

# ------------------------------------------------------------------ argument checks
# check_int NAME VALUE MIN [MAX]: VALUE is a decimal integer within [MIN, MAX]; prints it normalised (08 -> 8).
check_int() {
    local name=$1 value=$2 min=$3 max=${4:-}
    if ! [[ $value =~ ^[0-9]+$ ]]; then
        fail_usage "$name must be a non-negative integer, got '$value'"
    fi
    if ((${#value} > 9)); then
        fail_usage "$name is out of range: $value"
    fi
    value=$((10#$value))
    if [[ -n $max ]] && ((value < min || value > max)); then
        fail_usage "$name must be between $min and $max, got $value"
    fi
    if ((value < min)); then
        fail_usage "$name must be >= $min, got $value"
    fi
    printf '%s\n' "$value"
}

# abs_path PATH: the absolute, normalised path (it need not exist yet).
abs_path() {
    local path=$1
    [[ $path == /* ]] || path="$PWD/$path"
    realpath -m -- "$path" 2>/dev/null || printf '%s\n' "$path"
}

# check_exists NAME PATH: a file or folder that exists and can be read (DATA_PATH: a .mindrecord or its folder).
check_exists() {
    local name=$1 path=$2
    [[ -n $path ]] || fail_usage "$name is empty"
    [[ -e $path ]] || fail_usage "$name '$path' does not exist"
    [[ -r $path ]] || fail_usage "$name '$path' is not readable"
}

# check_file NAME PATH: an existing, readable regular file.
check_file() {
    local name=$1 path=$2
    [[ -n $path ]] || fail_usage "$name is empty"
    [[ -e $path ]] || fail_usage "$name '$path' does not exist"
    [[ -f $path ]] || fail_usage "$name '$path' is not a file"
    [[ -r $path ]] || fail_usage "$name '$path' is not readable"
}

# prepare_output NAME PATH: a folder, created unless DRY_RUN.
prepare_output() {
    local name=$1 path=$2
    [[ -n $path ]] || fail_usage "$name is empty"
    if [[ -e $path && ! -d $path ]]; then
        fail_usage "$name '$path' exists and is not a folder"
    fi
    is_dry_run && return 0
    mkdir -p -- "$path" 2>/dev/null || fail_usage "$name '$path' cannot be created"
    [[ -w $path ]] || fail_usage "$name '$path' is not writable"
}

is_dry_run() {
    case "${DRY_RUN:-0}" in
        "" | 0 | false | no) return 1 ;;
        *) return 0 ;;
    esac
}

# ------------------------------------------------------------------ python and train.py's command line
# find_python: sets PYTHON and puts its folder first on PATH (msrun and mpirun start 'python' from PATH).
find_python() {
    if [[ -n ${PYTHON:-} ]]; then
        local found
        found=$(command -v -- "$PYTHON" 2>/dev/null) || fail_setup "PYTHON='$PYTHON' is not an executable"
        PYTHON=$found
    elif [[ -x $REPO_ROOT/.venv/bin/python ]]; then
        PYTHON=$REPO_ROOT/.venv/bin/python
    elif command -v python3 >/dev/null 2>&1; then
        PYTHON=$(command -v python3)
    else
        fail_setup "no python found: set PYTHON=/path/to/python"
    fi
    [[ $PYTHON == /* ]] || PYTHON="$PWD/$PYTHON"
    PATH="$(dirname "$PYTHON"):$PATH"
    export PATH
}

# need_plain_python: msrun and mpirun run the program 'python'; it must be PYTHON's sibling.
need_plain_python() {
    local dir
    dir=$(dirname "$PYTHON")
    [[ -x $dir/python ]] || fail_setup "$1 starts workers as 'python', but $dir has no 'python': set PYTHON to an " \
        "interpreter named python (e.g. a virtualenv's bin/python)"
}

# train_command DATA_PATH OUTPUT_PATH PRE_TRAINED_PATH [FLAG ...]: sets TRAIN_CMD, the train.py arguments
# (without the interpreter): the launcher's flags, then TRAIN_ARGS. TRAIN_ARGS may not set a key the launcher
# sets (its checked arguments, --run_distribute, --device_target); relative paths in it (keys *_path, *_url,
# *_folder, *_dir) are made absolute against the caller's folder; and its values are checked by train.py's own
# configuration parser (no MindSpore, a fraction of a second): a mistake is train.py's one-line error, exit 2,
# before anything starts or is created. LATER_FLAGS: flags the launcher adds per process later (--device_id=...).
LATER_FLAGS=()
train_command() {
    local data=$1 output=$2 pretrained=$3
    shift 3
    local extra=()
    if [[ -n ${TRAIN_ARGS:-} ]]; then
        read -r -a extra <<< "$TRAIN_ARGS"
    fi
    TRAIN_CMD=("$TRAIN_PY" "--data_path=$data" "--output_path=$output")
    [[ -n $pretrained ]] && TRAIN_CMD+=("--pre_trained_path=$pretrained")
    TRAIN_CMD+=("$@")
    local arg key own i
    for i in "${!extra[@]}"; do
        arg=${extra[i]}
        [[ $arg == --* ]] || fail_setup "TRAIN_ARGS holds '$arg'; it takes train.py flags like --key=value"
        key=${arg%%=*}
        # train.py runs from OUTPUT_PATH: a relative path means the caller's folder, for the check and the run
        if [[ $arg == *=* && $key =~ _(path|url|folder|dir)$ && -n ${arg#*=} && ${arg#*=} != /* &&
            ${arg#*=} != *://* ]]; then
            extra[i]="$key=$(abs_path "${arg#*=}")"
        fi
        for own in "${TRAIN_CMD[@]:1}" "${LATER_FLAGS[@]}"; do
            if [[ ${own%%=*} == "$key" ]]; then
                fail_setup "TRAIN_ARGS holds '$arg', but the launcher sets $key itself ($own, from its checked" \
                    "arguments); drop it from TRAIN_ARGS"
            fi
        done
    done
    TRAIN_CMD+=("${extra[@]}")
    check_train_flags
}

# check_train_flags: train.py's configuration parser on TRAIN_CMD's flags; its one-line error and exit 2 if it
# refuses them (an unknown key, a value of the wrong type or out of range, an unreadable --config_path).
check_train_flags() {
    local err
    err=$(cd "$REPO_ROOT" && "$PYTHON" -c 'import sys
from src.utils.errors import run_cli
from src.model_utils.config import get_config
def check(argv):
    get_config(argv)
    return 0
run_cli(check)' "${TRAIN_CMD[@]:1}" 2>&1 >/dev/null) && return 0
    [[ $err == error:* ]] || err="error: train.py's settings cannot be checked with $PYTHON: ${err##*$'\n'}"
    printf '%s\n' "$err" >&2
    exit 2
}

# shell_quote WORD: WORD as the shell reads it back (plain if it has no special characters, else in '...').
shell_quote() {
    if [[ $1 =~ ^[A-Za-z0-9_./=:,@%+-]+$ ]]; then
        printf '%s' "$1"
    else
        printf "'%s'" "${1//\'/\'\\\'\'}"
    fi
}

# print_command [VAR=value ...] -- CMD ARGS...: the command on one line, as DRY_RUN shows it, ready to paste.
print_command() {
    local out=() arg in_env=1
    for arg in "$@"; do
        if [[ $arg == -- ]]; then
            in_env=0
        elif ((in_env)) && [[ $arg =~ ^([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]]; then
            out+=("${BASH_REMATCH[1]}=$(shell_quote "${BASH_REMATCH[2]}")")
        else
            out+=("$(shell_quote "$arg")")
        fi
    done
    printf '%s\n' "${out[*]}"
}

# ------------------------------------------------------------------ runs and failures
# first_error LOG: the line that says why a rank stopped (train.py's "error: ..." or a Python exception).
first_error() {
    local log=$1 line
    [[ -f $log ]] || return 0
    line=$(grep -m1 -E '^error: ' -- "$log" 2>/dev/null) && { printf '%s\n' "$line"; return 0; }
    if grep -q 'Traceback (most recent call last)' -- "$log" 2>/dev/null; then
        grep -E '^[A-Za-z_.]+(Error|Exception|Interrupt)\b' -- "$log" | tail -n 1
    fi
}

# log_rank LOG: the rank a worker log belongs to, from its "[rank r]" lines, else from the name worker_<r>.log.
log_rank() {
    local log=$1 rank
    rank=$(grep -m1 -oE '^\[rank [0-9]+\]' -- "$log" 2>/dev/null | grep -oE '[0-9]+')
    if [[ -z $rank ]]; then
        rank=$(basename "$log" .log)
        if [[ $rank =~ _([0-9]+)$ ]]; then
            rank=${BASH_REMATCH[1]}
        else
            rank="of $(basename "$(dirname "$log")")"  # e.g. "rank of device3"
        fi
    fi
    printf '%s\n' "$rank"
}

# log_pid LOG: the process id MindSpore prints in its log lines ("[WARNING] ME(1234,...").
log_pid() {
    grep -m1 -oE '^\[(DEBUG|INFO|WARNING|ERROR|CRITICAL)\] [A-Z_]+\([0-9]+,' -- "$1" 2>/dev/null | grep -oE '[0-9]+' |
        head -n 1
}

# check_finished_logs LOG...: every log shows the same "final weights sha256"; prints the digest. Data-parallel
# ranks must end with identical weights; a rank that did not print it or differs is reported, and it returns 1.
check_finished_logs() {
    local log digest first="" status=0
    for log in "$@"; do
        digest=$(grep -m1 -oE 'final weights sha256 [0-9a-f]+' -- "$log" 2>/dev/null | awk '{print $4}')
        if [[ -z $digest ]]; then
            echo "error: rank $(log_rank "$log") exited without finishing training; log: $log" >&2
            status=1
        elif [[ -z $first ]]; then
            first=$digest
        elif [[ $digest != "$first" ]]; then
            echo "error: rank $(log_rank "$log") ended with different weights (sha256 $digest, not $first):" \
                "the ranks diverged; log: $log" >&2
            status=1
        fi
    done
    [[ $status == 0 && -n $first ]] && echo "all $# local rank(s) finished with identical weights (sha256 $first)"
    return $status
}

# lost_ranks LOG_DIR: the ranks msrun's scheduler (node 0) took as lost, one a line: they sent no heartbeat for
# MS_NODE_TIMEOUT seconds (killed, machine down, network cut). Empty on the other nodes (no scheduler log).
lost_ranks() {
    grep -oE 'The node: [0-9]+ is timed out' -- "$1/scheduler.log" 2>/dev/null | awk '{print $3}' | sort -un
}

# report_worker_failures LAUNCHER_LOG LOST LOG...: after a failed msrun/mpirun job, name each rank that was lost
# (LOST: the ranks the scheduler timed out, with where their logs are), each rank that failed by itself (its
# error line and log) and each rank that was stopped because of it. Always returns 1.
report_worker_failures() {
    local launcher_log=$1 lost=$2 log err pid rank failed=0 stopped=() node
    shift 2
    local bad_pids="" lost_scheduler=0
    if [[ -f $launcher_log ]]; then
        # msrun: "Worker process 1234 exit with exception. Error code: 2."
        bad_pids=$(grep -oE 'Worker process [0-9]+ exit with exception' -- "$launcher_log" | awk '{print $3}')
    fi
    for rank in $lost; do
        # this node's own ranks are judged by their logs and exits below (msrun stops them all when one fails,
        # and the scheduler then times them out too)
        node=$((rank / ${MS_LOCAL:-1}))
        ((node == ${MS_NODE_RANK:-0})) && continue
        echo "error: rank $rank on node $node was lost: no heartbeat for ${MS_NODE_TIMEOUT:-30} s (process killed," \
            "machine down or network cut); its log: OUTPUT_PATH/log/worker_$rank.log on node $node" \
            "(NODE_RANK=$node)" >&2
        failed=$((failed + 1))
    done
    for log in "$@"; do
        rank=$(log_rank "$log")
        err=$(first_error "$log")
        pid=$(log_pid "$log")
        # "error: interrupted" is a rank that was sent SIGTERM/SIGINT (by msrun or MindSpore after another
        # rank's failure): stopped, not failed
        if [[ -n $err && $err != "error: interrupted" ]]; then
            echo "error: rank $rank failed: $err" >&2
            echo "       log: $log" >&2
            failed=$((failed + 1))
        elif grep -qE 'stopped: a collective operation failed|Kill this process with SIGTERM' -- "$log" 2>/dev/null
        then
            # this rank lost a peer: src/cluster.py says so, or MindSpore stops it when the scheduler reports a loss
            stopped+=("$rank")
            grep -q 'Failed to send heartbeat message to meta server' -- "$log" && lost_scheduler=1
        elif [[ -n $pid ]] && grep -qx -- "$pid" <<< "$bad_pids"; then
            echo "error: rank $rank failed (process $pid exited abnormally, see the end of its log)" >&2
            echo "       log: $log" >&2
            failed=$((failed + 1))
        elif ! grep -q 'final weights sha256' -- "$log" 2>/dev/null; then
            stopped+=("$rank")
        fi
    done
    if ((failed == 0 && lost_scheduler)) && ((${MS_NODE_RANK:-0} != 0)); then
        echo "error: node 0 was lost: its scheduler at ${MS_MASTER_ADDR:-?}:${MS_MASTER_PORT:-?} stopped answering" \
            "(node 0 stopped, or it ended the job after losing another node); see the launcher output and" \
            "OUTPUT_PATH/log/ on node 0" >&2
        failed=1
    elif ((failed == 0)); then
        echo "error: the job failed but no worker log names an error; see $launcher_log and the logs: $*" >&2
    fi
    if ((${#stopped[@]})); then
        echo "note: rank(s) ${stopped[*]} did not finish: stopped after the failure above" >&2
    fi
    return 1
}

# ------------------------------------------------------------------ msrun (dynamic cluster)
# msrun_settings LOCAL_DEFAULT TOTAL_DEFAULT: reads WORKER_NUM (total processes over all nodes), LOCAL_WORKER_NUM
# (processes on this node), NODE_RANK (this node's index, needed with several nodes), MASTER_ADDR and
# MASTER_PORT (node 0's scheduler) into MS_TOTAL, MS_LOCAL, MS_NODE_RANK, MS_MASTER_ADDR, MS_MASTER_PORT.
#
# ModelArts multi-node jobs set VC_WORKER_HOSTS (the job's hosts, comma-separated, node 0 first) and VC_TASK_INDEX
# (this host's index) on every node: they give the defaults NODE_RANK=VC_TASK_INDEX, MASTER_ADDR=the first host
# and WORKER_NUM=LOCAL_WORKER_NUM x the number of hosts (variables set explicitly win).
msrun_settings() {
    MS_LOCAL=$(check_int LOCAL_WORKER_NUM "${LOCAL_WORKER_NUM:-$1}" 1) || exit 2
    modelarts_hosts
    if ((${#MA_HOSTS[@]})); then
        : "${NODE_RANK:=$VC_TASK_INDEX}" "${MASTER_ADDR:=${MA_HOSTS[0]}}"
        : "${WORKER_NUM:=$((MS_LOCAL * ${#MA_HOSTS[@]}))}"
    fi
    MS_TOTAL=$(check_int WORKER_NUM "${WORKER_NUM:-$2}" 1) || exit 2
    MS_MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
    MS_MASTER_PORT=$(check_int MASTER_PORT "${MASTER_PORT:-8118}" 1024 65535) || exit 2
    MS_NODE_TIMEOUT=$(check_int MS_NODE_TIMEOUT "${MS_NODE_TIMEOUT:-30}" 3 86400) || exit 2  # see run_msrun
    if [[ -z $MS_MASTER_ADDR || $MS_MASTER_ADDR =~ [[:space:]] ]]; then
        fail_setup "MASTER_ADDR must be a host name or IP address, got '$MS_MASTER_ADDR'"
    fi
    if ((MS_LOCAL > MS_TOTAL)); then
        fail_setup "LOCAL_WORKER_NUM ($MS_LOCAL) exceeds WORKER_NUM ($MS_TOTAL), the total over all nodes"
    fi
    if ((MS_LOCAL == MS_TOTAL)); then
        MS_NODE_RANK=$(check_int NODE_RANK "${NODE_RANK:-0}" 0 0) || exit 2
        return 0
    fi
    if ((MS_TOTAL % MS_LOCAL)); then
        fail_setup "WORKER_NUM ($MS_TOTAL) must be a multiple of LOCAL_WORKER_NUM ($MS_LOCAL): every node runs" \
            "the same number of workers"
    fi
    [[ -n ${NODE_RANK:-} ]] || fail_setup "several nodes (WORKER_NUM $MS_TOTAL > LOCAL_WORKER_NUM $MS_LOCAL):" \
        "set NODE_RANK to this node's index, 0 to $((MS_TOTAL / MS_LOCAL - 1)) (0 runs the scheduler)"
    MS_NODE_RANK=$(check_int NODE_RANK "$NODE_RANK" 0 $((MS_TOTAL / MS_LOCAL - 1))) || exit 2
    if [[ -z ${MASTER_ADDR:-} ]]; then
        fail_setup "several nodes: set MASTER_ADDR to the address of node 0 (NODE_RANK=0), the same on every node"
    fi
}

# modelarts_hosts: MA_HOSTS, the hosts of VC_WORKER_HOSTS (empty off ModelArts); checks VC_TASK_INDEX indexes them.
# Read once (a launcher may call it before msrun_settings does).
MA_HOSTS_READ=0
modelarts_hosts() {
    ((MA_HOSTS_READ)) && return 0
    MA_HOSTS_READ=1
    MA_HOSTS=()
    [[ -n ${VC_WORKER_HOSTS:-} ]] || return 0
    IFS=, read -r -a MA_HOSTS <<< "$VC_WORKER_HOSTS"
    local host
    for host in "${MA_HOSTS[@]}"; do
        [[ -n $host && ! $host =~ [[:space:]] ]] || fail_setup "VC_WORKER_HOSTS must be comma-separated host" \
            "names, got '$VC_WORKER_HOSTS'"
    done
    [[ -n ${VC_TASK_INDEX:-} ]] || fail_setup "VC_WORKER_HOSTS is set (a ModelArts multi-node job) but VC_TASK_INDEX," \
        "this node's index in it, is not"
    VC_TASK_INDEX=$(check_int VC_TASK_INDEX "$VC_TASK_INDEX" 0 $((${#MA_HOSTS[@]} - 1))) || exit 2
}

# run_msrun OUTPUT_PATH: runs TRAIN_CMD on MS_LOCAL workers of this node with msrun, from OUTPUT_PATH, logs
# in OUTPUT_PATH/log/ (worker_<rank>.log, scheduler.log on node 0) and msrun's own output in
# OUTPUT_PATH/msrun.log; reports the failed and the lost ranks. Extra environment (VAR=value) comes from
# ENV_PREFIX. MS_NODE_TIMEOUT (default 30 s, MindSpore's own default made explicit) bounds how long a lost
# rank goes unnoticed: the scheduler times out a rank without heartbeat after it, and a collective waiting for
# a lost peer fails after it; the surviving ranks then exit at once (src/cluster.py). A shorter value finds a
# loss sooner but takes for lost a rank that pauses longer, e.g. rank 0 validating or writing a checkpoint.
run_msrun() {
    local output=$1 msrun
    local log_dir="$output/log"
    ENV_PREFIX+=("MS_NODE_TIMEOUT=$MS_NODE_TIMEOUT")
    need_plain_python msrun
    if [[ -x $(dirname "$PYTHON")/msrun ]]; then
        msrun=("$(dirname "$PYTHON")/msrun")
    else
        msrun=("$PYTHON" -m mindspore.parallel.cluster.run)
    fi
    local first_local=$((MS_NODE_RANK * MS_LOCAL))
    local cmd=("${msrun[@]}" "--worker_num=$MS_TOTAL" "--local_worker_num=$MS_LOCAL" "--node_rank=$MS_NODE_RANK"
        "--master_addr=$MS_MASTER_ADDR" "--master_port=$MS_MASTER_PORT" "--log_dir=$log_dir" "--join=True"
        "--tail_worker_log=$first_local" "${TRAIN_CMD[@]}")
    if is_dry_run; then
        print_command "${ENV_PREFIX[@]}" -- "${cmd[@]}"
        return 0
    fi
    export_env
    rm -f -- "$log_dir"/worker_*.log "$log_dir/scheduler.log"
    echo "msrun: $MS_LOCAL of $MS_TOTAL worker(s) on node $MS_NODE_RANK, scheduler $MS_MASTER_ADDR:$MS_MASTER_PORT" \
        "(a rank silent for MS_NODE_TIMEOUT=$MS_NODE_TIMEOUT s is lost); logs in $log_dir, msrun output in" \
        "$output/msrun.log"
    # msrun in a session of its own, so that a signal to the launcher's process group does not kill msrun
    # alone and orphan its scheduler (which would hold MASTER_PORT for minutes): the trap stops them all
    local tee_fd tee_pid status
    exec {tee_fd}> >(tee "$output/msrun.log")
    tee_pid=$!
    (cd "$output" && exec setsid "${cmd[@]}") >&"$tee_fd" 2>&1 &
    MSRUN_PID=$!
    exec {tee_fd}>&-
    trap 'stop_msrun; echo "error: interrupted; msrun and its processes stopped" >&2; exit 130' INT
    trap 'stop_msrun; echo "error: terminated; msrun and its processes stopped" >&2; exit 143' TERM
    wait "$MSRUN_PID"
    status=$?
    trap - INT TERM
    wait "$tee_pid" 2>/dev/null
    local logs=()
    local rank
    for ((rank = first_local; rank < first_local + MS_LOCAL; rank++)); do
        logs+=("$log_dir/worker_$rank.log")
    done
    if ((status != 0)); then
        echo "error: distributed training failed (msrun exit code $status)" >&2
        report_worker_failures "$output/msrun.log" "$(lost_ranks "$log_dir")" "${logs[@]}"
        return 1
    fi
    check_finished_logs "${logs[@]}"
}

# is_running PID: the process exists and is not a zombie (an exited child its parent has not reaped yet).
is_running() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat:0:1} != Z ]]
}

# stop_msrun: TERM to msrun's children (scheduler, workers: each in its own session, with what they started)
# and to msrun's session; KILL to what still runs 10 s later.
stop_msrun() {
    local pid children tries
    children=$(pgrep -P "$MSRUN_PID" 2>/dev/null)
    for pid in $children; do
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
    done
    kill -TERM -- "-$MSRUN_PID" 2>/dev/null || kill -TERM "$MSRUN_PID" 2>/dev/null
    for ((tries = 0; tries < 20; tries++)); do
        local alive=0
        for pid in $children "$MSRUN_PID"; do
            is_running "$pid" && alive=1
        done
        ((alive)) || return 0
        sleep 0.5
    done
    for pid in $children "$MSRUN_PID"; do
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
    done
}

# ------------------------------------------------------------------ one process, or one process per card
# export_env: exports the VAR=value entries of ENV_PREFIX.
export_env() {
    local var
    for var in "${ENV_PREFIX[@]}"; do
        export "${var?}"
    done
}

# run_single OUTPUT_PATH: PYTHON TRAIN_CMD from OUTPUT_PATH, output on the console and in OUTPUT_PATH/train.log.
run_single() {
    local output=$1
    local log="$output/train.log" cmd=("$PYTHON" "${TRAIN_CMD[@]}")
    if is_dry_run; then
        print_command "${ENV_PREFIX[@]}" -- "${cmd[@]}"
        return 0
    fi
    export_env
    echo "training; log: $log"
    (cd "$output" && exec "${cmd[@]}") 2>&1 | tee "$log"
    local status=${PIPESTATUS[0]}
    if ((status != 0)); then
        echo "error: training failed (exit code $status): $(first_error "$log")" >&2
        echo "       log: $log" >&2
        return 1
    fi
}

RANK_PIDS=()
RANK_NAMES=()
RANK_LOGS=()

# start_rank NAME DIR LOG VAR=value... -- CMD...: CMD in the background from DIR with the variables exported,
# output to LOG; recorded for wait_ranks.
start_rank() {
    local name=$1 dir=$2 log=$3
    shift 3
    local env=()
    while (($#)) && [[ $1 != -- ]]; do
        env+=("$1")
        shift
    done
    shift
    (cd "$dir" && exec env "${env[@]}" "$@") > "$log" 2>&1 &
    RANK_PIDS+=("$!")
    RANK_NAMES+=("$name")
    RANK_LOGS+=("$log")
    echo "started $name (pid $!), log: $log"
}

stop_ranks() {  # [SIGNAL]
    local pid
    for pid in "${RANK_PIDS[@]}"; do
        kill "-${1:-TERM}" "$pid" 2>/dev/null
    done
}

# wait_ranks: waits for every started rank. When one fails, it names the rank, its error and its log, stops
# the others (they would block in collectives) and returns 1; else checks the ranks' final weights agree.
wait_ranks() {
    local n=${#RANK_PIDS[@]} i status running failed=0 stopping=0
    local state=()
    trap 'stop_ranks; echo "error: interrupted; ranks stopped" >&2; exit 130' INT TERM
    while :; do
        running=0
        for ((i = 0; i < n; i++)); do
            [[ -n ${state[i]:-} ]] && continue
            if kill -0 "${RANK_PIDS[i]}" 2>/dev/null; then
                running=$((running + 1))
                continue
            fi
            wait "${RANK_PIDS[i]}"
            status=$?
            state[i]=$status
            if ((status != 0)) && ((failed == 0 || (status != 143 && status != 137))); then
                echo "error: ${RANK_NAMES[i]} failed (exit code $status): $(first_error "${RANK_LOGS[i]}")" >&2
                echo "       log: ${RANK_LOGS[i]}" >&2
                failed=1
            elif ((status != 0)); then
                echo "note: ${RANK_NAMES[i]} was stopped after the failure above; log: ${RANK_LOGS[i]}" >&2
            fi
        done
        ((running == 0)) && break
        if ((failed)); then
            # TERM first; what still runs 10 s later gets KILL
            stopping=$((stopping + 1))
            if ((stopping > 10)); then stop_ranks KILL; else stop_ranks TERM; fi
        fi
        sleep 1
    done
    trap - INT TERM
    ((failed)) && return 1
    check_finished_logs "${RANK_LOGS[@]}"
}
