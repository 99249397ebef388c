"""A run's checkpoints in output_path/ckpt_0: the periodic srcnn-<step>.ckpt (the newest keep_checkpoint_max
kept), srcnn-best.ckpt and srcnn-final.ckpt, each holding the network, the optimizer state and the step; and
the resume, which restores the newest readable one."""
import glob
import os
import re

from src.utils.errors import UserError

CKPT_PATTERN = re.compile(r"srcnn-(\d+)\.ckpt$")


def list_checkpoints(ckpt_dir):
    """[(step, path)] of the periodic checkpoints in ``ckpt_dir``, oldest first."""
    found = []
    for path in glob.glob(os.path.join(ckpt_dir, "srcnn-*.ckpt")):
        match = CKPT_PATTERN.search(os.path.basename(path))
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def remove_temporaries(ckpt_dir):
    """Delete the temporary files of a checkpoint that was being written when an earlier run was killed (call
    it only while holding output_path's lock, so never the file a running process is writing)."""
    for stale in glob.glob(os.path.join(ckpt_dir, ".tmp_*")):
        os.remove(stale)


def state_entries(net, optimizer):
    """The parameters a checkpoint holds (network, then optimizer), as save_checkpoint takes them."""
    entries = [{"name": p.name, "data": p} for p in net.get_parameters()]
    names = {e["name"] for e in entries}
    entries += [{"name": p.name, "data": p} for p in optimizer.get_parameters() if p.name not in names]
    return entries


def checkpoint_meta(cfg, step, total_steps):
    """The record a training checkpoint carries besides its parameters (read back by resume and eval)."""
    return {"arch": cfg.arch, "n1": cfg.n1, "n2": cfg.n2, "padding": cfg.padding, "scale": cfg.scale,
            "step": step, "total_steps": total_steps, "seed": cfg.seed}


def save(ckpt_dir, entries, meta, name=None, keep=None):
    """Write ``entries`` with ``meta`` as ``name`` in ``ckpt_dir`` (default: the periodic srcnn-<step>.ckpt, after
    which only the newest ``keep`` periodic checkpoints are kept). Returns the path."""
    # imported here, not at the top: the command checks its inputs before MindSpore starts (seconds)
    from src.model.checkpoint import save_checkpoint

    path = os.path.join(ckpt_dir, name or f"srcnn-{meta['step']}.ckpt")
    save_checkpoint(entries, path, meta)
    if name is None and keep:
        for _, old in list_checkpoints(ckpt_dir)[:-keep]:
            os.remove(old)
    return path


def _check_state(state, params, path, total_steps):
    """UserError unless ``state`` (a loaded checkpoint) continues a run of ``total_steps`` with every one of
    ``params`` at its shape and finite."""
    # imported here, not at the top: the command checks its inputs before MindSpore starts (seconds)
    import mindspore as ms

    from src.model.checkpoint import check_finite

    if int(state.get("total_steps", ms.Tensor(total_steps)).asnumpy()) != total_steps:
        raise UserError(f"{path} belongs to a run of {int(state['total_steps'].asnumpy())} steps, "
                        f"this run has {total_steps}: use the same schedule to resume")
    for param in params:
        if param.name not in state:
            raise UserError(f"{path} has no {param.name}: not a training checkpoint of this network")
        found = tuple(state[param.name].shape)
        if found != tuple(param.shape):
            raise UserError(f"{path}: {param.name} has shape {found}, this run's network expects "
                            f"{tuple(param.shape)}: resume with the run's settings, or start fresh with "
                            "--resume=false and another --output_path")
        check_finite(param.name, state[param.name].asnumpy(), path)


def load_latest(ckpt_dir, params, total_steps, log=print):
    """Restore ``params`` (network and optimizer Parameters) from the newest readable periodic checkpoint of
    ``ckpt_dir``; an unreadable one (a kill while it was written elsewhere, a damaged copy) is skipped with a
    warning. Returns ``(step, path)``, or None when there is none to resume from."""
    # imported here, not at the top: the command checks its inputs before MindSpore starts (seconds)
    import mindspore as ms

    for step, path in reversed(list_checkpoints(ckpt_dir)):
        try:
            state = ms.load_checkpoint(path)
        except (ValueError, RuntimeError, OSError) as err:
            log(f"warning: skipping unreadable checkpoint {path} ({str(err).splitlines()[0][:80]})")
            continue
        _check_state(state, params, path, total_steps)
        for param in params:
            param.set_data(state[param.name])
        return step, path
    return None
