#!/usr/bin/env bash
# Shared by the scripts/run_*train*.sh launchers (sourced, not run; its messages and find_python by
# eval_common.sh too): checks of their arguments and environment, msrun's command line, and `launch`, which hands
# over to src/model_utils/launch.py: TRAIN_ARGS checks, DRY_RUN, running the processes, waiting for them, naming a
# failed rank, stopping the others, comparing final weights.
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

# train_paths DATA_PATH OUTPUT_PATH: DATA_PATH checked, both made absolute; PRE_TRAINED_PATH empty until
# pre_trained_path PATH sets it (an existing, readable checkpoint).
# shellcheck disable=SC2034  # DATA_PATH, OUTPUT_PATH, PRE_TRAINED_PATH: read by the launcher that sources this
train_paths() {
    check_exists DATA_PATH "$1"
    DATA_PATH=$(abs_path "$1")
    OUTPUT_PATH=$(abs_path "$2")
    PRE_TRAINED_PATH=""
}

# shellcheck disable=SC2034  # read by the launcher
pre_trained_path() {
    check_file PRE_TRAINED_PATH "$1"
    PRE_TRAINED_PATH=$(abs_path "$1")
}

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

# run_msrun OUTPUT_PATH DATA_PATH PRE_TRAINED_PATH FLAG...: train.py on MS_LOCAL workers of this node with msrun,
# from OUTPUT_PATH, logs in OUTPUT_PATH/log/ (worker_<rank>.log, scheduler.log on node 0), msrun's own output in
# OUTPUT_PATH/msrun.log; ENV_PREFIX: extra environment (VAR=value). MS_NODE_TIMEOUT (default 30 s, MindSpore's
# own default made explicit) bounds how long a lost rank goes unnoticed: the scheduler times out a rank without
# heartbeat after it, and a collective waiting for a lost peer fails after it; the surviving ranks then exit at
# once (src/train/cluster.py). A shorter value finds a loss sooner but takes for lost a rank that pauses longer,
# e.g. rank 0 validating or writing a checkpoint.
run_msrun() {
    local output=$1 data=$2 pretrained=$3 msrun
    shift 3
    need_plain_python msrun
    if [[ -x $(dirname "$PYTHON")/msrun ]]; then
        msrun=("$(dirname "$PYTHON")/msrun")
    else
        msrun=("$PYTHON" -m mindspore.parallel.cluster.run)
    fi
    msrun+=("--worker_num=$MS_TOTAL" "--local_worker_num=$MS_LOCAL" "--node_rank=$MS_NODE_RANK"
        "--master_addr=$MS_MASTER_ADDR" "--master_port=$MS_MASTER_PORT" "--log_dir=$output/log" "--join=True"
        "--tail_worker_log=$((MS_NODE_RANK * MS_LOCAL))")
    launch msrun "${ENV_PREFIX[@]/#/--env=}" "--env=MS_NODE_TIMEOUT=$MS_NODE_TIMEOUT" "${msrun[@]/#/--runner=}" \
        --output_path="$output" --data_path="$data" --pre_trained_path="$pretrained" -- "$@"
}

# launch MODE OPTION... -- FLAG...: src/model_utils/launch.py takes over this process (exec), so that it gets
# the signals sent to the launcher; it runs from the repository, told the caller's folder for TRAIN_ARGS paths.
ENV_PREFIX=()
launch() {
    local caller=$PWD
    cd "$REPO_ROOT" || fail_setup "cannot enter $REPO_ROOT"
    exec "$PYTHON" -m src.model_utils.launch "$1" --caller_dir="$caller" --python="$PYTHON" \
        --usage_line="${USAGE%%$'\n'*}" "${@:2}"
}
