"""Data-parallel ranks that never drift apart, and that stop at once when another rank is lost.

``agree_start`` runs before the first step of a distributed run: every rank reports whether its set-up
succeeded and a digest of each setting that decides the training; a failed rank or a disagreement stops every
rank with the same one-line error, before anything is written. Then rank 0's start step and state (weights and
optimizer moments) are broadcast: only rank 0 reads checkpoints, so the other nodes need no copy of them (no
shared file system), and a digest of the state every rank ends up with is compared once more.

``stop_on_lost_peer`` turns a collective that failed because another rank died or cannot be reached into one
line on stdout and an immediate exit: MindSpore's own shutdown would wait for the lost rank for tens of
seconds more. The launcher names the lost rank (the scheduler's log on node 0 lists it).
"""
import contextlib
import hashlib
import os
import re
import sys

import numpy as np

from src.train.recipe import RECIPE_KEYS
from src.utils.errors import UserError

# a rank's failure message travels to the others as this many bytes (longer ones are cut)
MESSAGE_BYTES = 400


# the marker the launchers look for (src/model_utils/launch.py): this rank was stopped by another rank's loss
LOST_PEER_MARKER = "stopped: a collective operation failed"


_COLLECTIVE = re.compile(r"\b(AllReduce|AllGather|Broadcast|ReduceScatter)\b")


# what MindSpore says when the peer of a collective is gone (any other failure of a collective, e.g. a shape
# refused when the graph compiles, is a real error): on CPU (mccl) the collective's kernel fails to launch,
# "Launch kernel failed: Default/AllReduce-op0" (the log says why: "Ring ReduceScatter wait sending ... failed")
_LOST_PEER = re.compile(r"launch kernel failed: \S*(?:AllReduce|AllGather|Broadcast|ReduceScatter)|timed? ?out|"
                        r"timeout|heartbeat|disconnect|connection (?:reset|refused|closed)|unreachable", re.I)


def _first_line(text):
    """The first line of a MindSpore error that says something (its reports open with blank lines, rules of
    dashes and headings such as "- Kernel error:")."""
    for line in text.splitlines():
        line = line.strip()
        if line.strip("-") and not re.fullmatch(r"- [^:]*:", line):
            return line[:300]
    return ""


def _word(text):
    """A 31-bit digest of ``text``: one int32 entry of the gathered table."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little") & 0x7FFFFFFF


def _gather(row):
    """Every rank's int32 ``row`` (the same length on every rank), as a (world, len) array."""
    # imported here, not at the top: the command checks its inputs before MindSpore starts (seconds)
    import mindspore as ms
    from mindspore import ops

    row = np.asarray(row, np.int32)
    return ops.AllGather()(ms.Tensor(row)).asnumpy().reshape(-1, row.size)


def _recipe_keys():
    # pre_trained_path is left out: each node reads its own copy in setup, possibly at another path, and only
    # rank 0's weights count (they are broadcast)
    return [key for key in RECIPE_KEYS if key != "pre_trained_path"]


def _settings(trainer):
    """[(name, value text)] of what every rank must share: the recipe, the schedule, the data, the shapes."""
    cfg = trainer.cfg
    named = [(key, repr(getattr(cfg, key, None))) for key in _recipe_keys()]
    named += [("total_steps", str(trainer.total_steps)),
              ("data (patch count and size)", f"{trainer.data.count} x {trainer.data.patch_size}"),
              ("parameter shapes", repr([(e["name"], tuple(e["data"].shape)) for e in trainer.state_entries()]))]
    return named


def _state_digest(trainer):
    digest = hashlib.sha256()
    for entry in trainer.state_entries():
        digest.update(entry["name"].encode())
        digest.update(entry["data"].asnumpy().tobytes())
    return digest


def _raise_failures(table, rank):
    """UserError naming the first rank whose set-up failed (its own message), on every rank."""
    failed = [r for r in range(len(table)) if table[r, 0]]
    if not failed:
        return
    first = rank if rank in failed else failed[0]  # a rank that failed reports its own error
    text = bytes(table[first, 1:1 + MESSAGE_BYTES].astype(np.uint8)).rstrip(b"\0").decode("utf-8", "replace")
    if first == rank:
        raise UserError(text)
    others = f" (and rank(s) {', '.join(map(str, failed[1:]))})" if len(failed) > 1 else ""
    raise UserError(f"rank {first}{others} could not start: {text}")


def agree_start(trainer, failure=None):
    """All ranks start from rank 0's step and state, or none starts. ``failure``: this rank's UserError from its
    set-up (None when it succeeded). Returns the start step; UserError (the same on every rank) otherwise."""
    rank, world = trainer.rank, trainer.world
    # round 1: set-up results and settings. A failed rank still takes part, so that nobody waits for it.
    message = np.zeros(MESSAGE_BYTES, np.int32)
    if failure is not None:
        encoded = str(failure).encode("utf-8")[:MESSAGE_BYTES]
        message[:len(encoded)] = np.frombuffer(encoded, np.uint8)
    settings = _settings(trainer) if failure is None else []
    words = [_word(value) for _, value in settings] if settings else [0] * (len(_recipe_keys()) + 3)
    table = _gather([int(failure is not None), *message, *words])
    _raise_failures(table, rank)
    values = table[:, 1 + MESSAGE_BYTES:]
    for column, (name, value) in enumerate(settings):
        differ = [r for r in range(world) if values[r, column] != values[0, column]]
        if differ:
            raise UserError(f"the ranks do not agree on {name}: rank(s) {', '.join(map(str, differ))} differ "
                            f"from rank 0 (this is rank {rank}, with {name} {value}); give every node the same "
                            "config, TRAIN_ARGS and data")
    # rank 0's start step and state, everywhere
    import mindspore as ms

    # imported here, not at the top: the command checks its inputs before MindSpore starts (seconds)
    from mindspore import ops

    broadcast = ops.Broadcast(0)
    start = int(broadcast((ms.Tensor(np.array([trainer.start_step], np.int32)),))[0].asnumpy()[0])
    for entry in trainer.state_entries():
        param = entry["data"]
        param.set_data(broadcast((ms.Tensor(param.asnumpy()),))[0])
    # round 2: the state every rank now holds
    digest = _state_digest(trainer)
    table = _gather([start, *np.frombuffer(digest.digest()[:16], np.int32)])
    differ = [r for r in range(world) if not np.array_equal(table[r], table[0])]
    if differ:
        raise UserError(f"rank(s) {', '.join(map(str, differ))} do not hold rank 0's state after the broadcast "
                        f"(this is rank {rank}); stopped before the first step")
    trainer.log(f"all {world} ranks start at step {start} from rank 0's state (sha256 {digest.hexdigest()[:16]})")
    return start


@contextlib.contextmanager
def stop_on_lost_peer(distributed=True):
    """A collective that fails because a peer rank is gone: one line, then exit 1 at once."""
    try:
        yield
    except RuntimeError as err:
        text = str(err)
        first_line = _first_line(text)
        match = _COLLECTIVE.search(text)
        timed_out = os.environ.get("MS_ROLE") == "MS_SCHED" and "timed out" in text
        if not distributed or not (timed_out or (match and _LOST_PEER.search(text))):
            raise
        timeout = os.environ.get("MS_NODE_TIMEOUT", "MindSpore's default")
        if timed_out:  # msrun's scheduler (it runs train.py too, inside init()): the launcher reads its log
            print(f"scheduler: stopped the job: {first_line}", flush=True)
        else:
            print(f"[rank {os.environ.get('RANK_ID', '?')}] {LOST_PEER_MARKER} ({match.group(1)}): another rank "
                  f"stopped or cannot be reached (MS_NODE_TIMEOUT {timeout} s); the launcher on node 0 names it. "
                  f"MindSpore: {first_line}", flush=True)
        sys.stderr.flush()
        # MindSpore's exit handlers would wait for the lost rank's heartbeat again; checkpoints are written
        # atomically, so nothing is left half-written
        os._exit(1)  # pylint: disable=protected-access
