"""Building the fused CPU kernels (src/model/cpu/srcnn_fused.cc) into a shared library, once per source,
compiler and CPU. No MindSpore import: the tests ask ``find_compiler`` before MindSpore loads.

The library is compiled with -O3 -march=native (SRCNN_KERNEL_MARCH=<target> overrides it) into a per-user
cache (SRCNN_KERNEL_CACHE, else $XDG_CACHE_HOME/srcnn-mindspore, else ~/.cache/srcnn-mindspore), keyed by
the source, the compiler, the flags and the CPU, and written atomically (ranks building at once are safe).
``KernelUnavailable`` says why it cannot be used (no compiler, a failed build, SRCNN_FUSED_CPU=0, not Linux, MindSpore's
MS_CUSTOM_AOT_WHITE_LIST excluding the cache); callers fall back with ``note_fallback``.
"""
import atexit
import hashlib
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "srcnn_fused.cc")


LIBRARY_NAME = "srcnn_fused.so"


FLAGS = ("-O3", "-std=c++17", "-shared", "-fPIC", "-pthread")


class KernelUnavailable(RuntimeError):
    """The fused kernel cannot be built or is switched off; the message says why."""


_NOTED = set()


_PRIVATE_COPIES = {}  # build key -> this process's private library, where the shared cache is not trusted


def note_fallback(reason, fallback):
    """One line on stderr, once per process and message: why the kernel is not used and what runs instead."""
    message = f"note: fused CPU kernel not used ({reason}); running {fallback}"
    if message not in _NOTED:
        _NOTED.add(message)
        print(message, file=sys.stderr)


def enabled():
    return os.environ.get("SRCNN_FUSED_CPU", "1").strip().lower() not in ("0", "false", "no", "off")


def find_compiler():
    """The compiler command as a list ($CXX, which may carry arguments such as 'ccache g++', else the first of
    c++, g++, clang++ on PATH), or None if there is none."""
    if os.environ.get("CXX"):
        words = shlex.split(os.environ["CXX"])
        program = shutil.which(words[0]) if words else None
        return [program, *words[1:]] if program else None
    for name in ("c++", "g++", "clang++"):
        path = shutil.which(name)
        if path:
            return [path]
    return None


def target_flags():
    """-march for the build: the CPU this runs on, unless SRCNN_KERNEL_MARCH names another target (for
    example x86-64-v3 for AVX2 code, x86-64 for SSE2 code)."""
    return (f"-march={os.environ.get('SRCNN_KERNEL_MARCH') or 'native'}",)


def cache_root():
    if os.environ.get("SRCNN_KERNEL_CACHE"):
        return os.environ["SRCNN_KERNEL_CACHE"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "srcnn-mindspore")


def _cpu_signature():
    """What -march=native depends on: the CPU model and feature flags (a shared home may span machines)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            lines = [line for line in f if line.startswith(("model name", "flags", "Features", "CPU part"))]
        return platform.machine() + "".join(sorted(set(lines)))
    except OSError:
        return platform.machine() + platform.processor()


def _compile(compiler, flags, output):
    """(ok, the compiler's first error line)."""
    try:
        result = subprocess.run([*compiler, *flags, "-o", output, SOURCE], capture_output=True, text=True,
                                check=False)
    except OSError as e:
        return False, f"cannot run {compiler[0]}: {e.strerror}"
    lines = (result.stderr or result.stdout).strip().splitlines()
    errors = [line for line in lines if "error" in line.lower()]
    return result.returncode == 0, (errors or lines or [""])[0]


def _unsafe_reason(path, cache):
    """Why the cached library ``path`` (or a folder on the way to it, from ``cache`` down) must not be loaded:
    not owned by this user (or root), or writable by others; None when it is safe."""
    me = os.getuid()
    for item in (path, os.path.dirname(path), cache):
        try:
            info = os.stat(item)
        except FileNotFoundError:
            continue
        if info.st_uid not in (me, 0):
            return f"{item} belongs to uid {info.st_uid}, not to this user"
        if info.st_mode & 0o022:
            return f"{item} is writable by other users (mode {info.st_mode & 0o777:o})"
    return None


def build_library():
    """The compiled kernel library's path (built once per source, compiler, flags and CPU)."""
    if not enabled():
        raise KernelUnavailable("SRCNN_FUSED_CPU=0")
    if platform.system() != "Linux":
        raise KernelUnavailable(f"MindSpore runs custom operators on Linux only, this is {platform.system()}")
    cache = os.path.realpath(cache_root())
    if ":" in cache:  # MindSpore reads the operator's "library:function" name
        raise KernelUnavailable(f"the kernel cache path {cache} contains ':'; set SRCNN_KERNEL_CACHE")
    allowed = os.environ.get("MS_CUSTOM_AOT_WHITE_LIST")
    if allowed is not None:  # MindSpore loads custom-operator libraries from inside this folder only
        allowed = os.path.realpath(allowed)
        if os.path.commonpath([allowed, cache]) != allowed:
            raise KernelUnavailable(f"the kernel cache {cache} is outside MS_CUSTOM_AOT_WHITE_LIST={allowed}; "
                                    "set SRCNN_KERNEL_CACHE to a folder inside it")
    compiler = find_compiler()
    if compiler is None:
        raise KernelUnavailable(f"no C++ compiler found (CXX={os.environ.get('CXX', '')!r}, c++, g++, clang++)")
    try:
        version = subprocess.run([*compiler, "--version"], capture_output=True, text=True, check=False).stdout
    except OSError as e:
        raise KernelUnavailable(f"cannot run {compiler[0]}: {e.strerror}") from None
    with open(SOURCE, "rb") as f:
        source = f.read()
    flags = FLAGS + target_flags()
    key = hashlib.sha256(b"\0".join([source, " ".join(compiler).encode(), version.encode(),
                                     " ".join(flags).encode(), _cpu_signature().encode()])).hexdigest()[:16]
    folder = os.path.join(cache, key)
    path = os.path.join(folder, LIBRARY_NAME)
    unsafe = _unsafe_reason(path, cache) if os.path.exists(path) or os.path.isdir(folder) else None
    if unsafe and os.path.isfile(_PRIVATE_COPIES.get(key, "")):
        return _PRIVATE_COPIES[key]  # built once per process (the formulation check and the operator ask)
    if unsafe:  # loading it would run whatever another user put there: build a private copy instead
        folder = tempfile.mkdtemp(prefix="srcnn-kernel-")  # mode 0700, a fresh unpredictable name
        atexit.register(shutil.rmtree, folder, True)  # this process's copy only
        path = os.path.join(folder, LIBRARY_NAME)
        print(f"note: fused CPU kernel cache not trusted ({unsafe}); building a private copy in {folder}",
              file=sys.stderr)
    elif os.path.isfile(path) and os.access(path, os.R_OK):
        return path
    try:
        os.makedirs(folder, exist_ok=True)
        fd, partial = tempfile.mkstemp(prefix=".building-", suffix=".so", dir=folder)
        os.close(fd)
    except OSError as e:
        raise KernelUnavailable(f"cannot write the kernel cache {folder}: {e.strerror}") from None
    try:
        ok, message = _compile(compiler, flags, partial)
        if not ok and flags[-1] == "-march=native":  # a compiler that does not know this CPU: portable code
            ok, message = _compile(compiler, FLAGS, partial)
            if ok:
                print(f"note: fused CPU kernel built without -march=native ({message})", file=sys.stderr)
        if not ok:
            raise KernelUnavailable(f"{compiler[0]} failed on {SOURCE}: {message}")
        os.chmod(partial, 0o755)  # mkstemp made it private; a shared cache must be readable by its users
        os.replace(partial, path)
        if unsafe:
            _PRIVATE_COPIES[key] = path
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    return path


def entry_point_call(function, arrays):
    """A no-argument callable that calls the library entry point ``function`` (MindSpore's AOT custom-op
    signature: nparam, params, ndims, shapes, dtypes, stream, extra) on float32 numpy ``arrays`` and returns its
    error code: tests and benchmarks run the kernel through ctypes without MindSpore (the callable keeps the
    argument arrays alive; a benchmark times only the call)."""
    import ctypes

    n = len(arrays)
    params = (ctypes.c_void_p * n)(*[a.ctypes.data for a in arrays])
    ndims = (ctypes.c_int * n)(*[a.ndim for a in arrays])
    shape_arrays = [(ctypes.c_int64 * a.ndim)(*a.shape) for a in arrays]
    shapes = (ctypes.POINTER(ctypes.c_int64) * n)(*[ctypes.cast(s, ctypes.POINTER(ctypes.c_int64)) for s in shape_arrays])
    dtypes = (ctypes.c_char_p * n)(*[b"float32"] * n)

    def call(_keep=(arrays, shape_arrays)):
        return function(n, params, ndims, shapes, dtypes, None, None)

    return call
