"""The host line's CPU part names the family/model and the widest vector ISA, read from /proc/cpuinfo's first
processor block (two VMs both called "AMD EPYC" differed 2x in training speed: Zen 3 AVX2 against Zen 5 AVX-512)."""
import platform

from src.model_utils.device import describe_cpu

BLOCK = ("processor\t: {n}\nvendor_id\t: AuthenticAMD\ncpu family\t: {family}\nmodel\t\t: {model}\n"
         "model name\t: AMD EPYC\nflags\t\t: {flags}\n\n")


def write_cpuinfo(tmp_path, *blocks):
    path = tmp_path / "cpuinfo"
    path.write_text("".join(BLOCK.format(n=n, **block) for n, block in enumerate(blocks)))
    return str(path)


def test_avx2_machine(tmp_path):
    path = write_cpuinfo(tmp_path, dict(family=25, model=1, flags="fpu sse2 avx fma avx2 bmi2"))
    assert describe_cpu(path) == "AMD EPYC (family 25 model 1, AVX2)"


def test_avx512_machine(tmp_path):
    path = write_cpuinfo(tmp_path, dict(family=26, model=2, flags="sse2 avx avx2 fma avx512f avx512bw avx512_bf16"))
    assert describe_cpu(path) == "AMD EPYC (family 26 model 2, AVX-512)"


def test_first_processor_block_only(tmp_path):
    path = write_cpuinfo(tmp_path, dict(family=6, model=85, flags="sse2"), dict(family=25, model=1, flags="avx2 fma"))
    assert describe_cpu(path) == "AMD EPYC (family 6 model 85, SSE2)"


def test_avx_without_fma_is_not_avx2(tmp_path):
    path = write_cpuinfo(tmp_path, dict(family=6, model=42, flags="sse2 avx"))
    assert describe_cpu(path) == "AMD EPYC (family 6 model 42, AVX)"


def test_unreadable_cpuinfo_falls_back(tmp_path):
    assert describe_cpu(str(tmp_path / "missing")) == platform.machine()
