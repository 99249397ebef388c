"""Setting up MindSpore for a device, once per process, before any graph runs."""
import os
import platform
import subprocess

from src import REPO_ROOT
from src.utils.errors import UserError


def init_context(device_target="CPU", device_id=0):
    """GRAPH mode on the chosen device. On CPU the graph runs on the calling thread
    (MS_DEV_HOST_BLOCKING_RUN): MindSpore's asynchronous actor pipeline spins on sched_yield, and with few
    cores each hand-off waits for a scheduler tick (4 ms); blocking run measured 56 -> 8 ms per training
    step of SRCNN 9-1-5 on 2 cores. A value the user set wins."""
    if device_target == "CPU":
        os.environ.setdefault("MS_DEV_HOST_BLOCKING_RUN", "1")
    # imported here, not at the top: the command checks its inputs before MindSpore starts (seconds)
    import mindspore as ms

    ms.set_context(mode=ms.GRAPH_MODE)
    try:
        ms.set_device(device_target, device_id)
    except (RuntimeError, ValueError) as err:
        # a process that already runs MindSpore on this device (a library caller, a test) keeps its runtime
        if "has been initialized" in str(err) and ms.get_context("device_target") == device_target:
            return
        raise UserError(f"device_target={device_target} (device_id={device_id}) is not usable with this "
                        f"MindSpore install: {str(err).splitlines()[0]}") from None
    if device_target != "CPU":
        # fail here, with one line, rather than at the first graph: e.g. the CPU-only wheel asked for a GPU
        try:
            import mindspore.ops as ops
            ops.ones((1,), ms.float32).asnumpy()
        except RuntimeError as err:
            first = next((line for line in str(err).splitlines() if line.strip()), "")
            raise UserError(f"device_target={device_target} is not available: {first}") from None


def describe_host(device_target="CPU"):
    """One line naming the hardware a run used (for logs and the results table)."""

    # imported here, not at the top: the command checks its inputs before MindSpore starts (seconds)
    import mindspore as ms

    if device_target != "CPU":
        return f"{device_target}, MindSpore {ms.__version__}"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"CPU {describe_cpu()}, {cores} cores, oneDNN cap {os.environ.get('ONEDNN_MAX_CPU_ISA', 'default')}, "
            f"MindSpore {ms.__version__}")


def describe_cpu(cpuinfo_path="/proc/cpuinfo"):
    """The CPU's model name, family/model numbers and widest vector ISA (what the fused kernel is built for):
    the model name alone ("AMD EPYC") hides a 2x difference in speed between the VMs of one name."""
    fields = {}
    try:
        with open(cpuinfo_path, encoding="utf-8") as handle:
            for line in handle:
                if not line.strip():
                    break  # the first processor's block is enough
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        return platform.machine()
    flags = set(fields.get("flags", "").split())
    isa = "AVX-512" if "avx512f" in flags else "AVX2" if {"avx2", "fma"} <= flags else "AVX" if "avx" in flags else "SSE2"
    name = fields.get("model name") or platform.machine()
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']} model {fields['model']}"
        return f"{name}, {isa})" if flags else f"{name})"
    return f"{name} ({isa})" if flags else name


def code_commit():
    """The git commit of this checkout (``+dirty`` when files differ from it); "" outside a git checkout.
    A shipped model records the code it was trained with."""

    repo = REPO_ROOT
    try:
        head = subprocess.run(["git", "-C", repo, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return ""
        dirty = subprocess.run(["git", "-C", repo, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return head.stdout.strip() + ("+dirty" if dirty.returncode == 0 and dirty.stdout.strip() else "")
