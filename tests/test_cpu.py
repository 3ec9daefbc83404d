"""oldphoto.cpu: the rule that decides whether a low-precision path may run, with both answers on any
machine (the capability facts and the probe are injected), and the real facts/probe on this one.
Nothing here asserts on wall-clock time."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from oldphoto import cpu
from oldphoto.cpu import CpuFacts, Layer, ProbeResult

# /proc/cpuinfo flags of the two kinds of machine in issue 22 (x86 flags trimmed to those that matter)
AVX2_EPYC = frozenset("fpu sse sse2 ssse3 sse4_1 sse4_2 avx f16c fma avx2 bmi2".split())
SAPPHIRE_RAPIDS = AVX2_EPYC | {"avx512f", "avx512bw", "avx512vl", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_tile"}
LAYERS = [Layer(512, 512, 3, 16, 24), Layer(64, 64, 4, 16, 24, "deconv", 2)]


def facts(flags=SAPPHIRE_RAPIDS, capability="AVX512", env=None, vendor="GenuineIntel", **kw) -> CpuFacts:
    base = dict(model="test CPU", vendor=vendor, flags=frozenset(flags), torch_capability=capability, env=env or {},
                threads=2, cpus=2, torch_mkl=True, numpy_blas="scipy-openblas")
    return CpuFacts(**{**base, **kw})


def probe_answering(ratio: float | None, finished: bool = True):
    calls = []

    def probe(dtype, layers, *, max_ratio, budget_s):
        calls.append((dtype, tuple(layers)))
        return ProbeResult(ratio, finished, f"probe said {ratio}")

    return probe, calls


def no_probe(*args, **kwargs):
    raise AssertionError("the probe ran although the instruction sets already said no")


def test_avx2_only_cpu_is_slow_for_float16_and_bfloat16_without_probing():
    for dtype in ("float16", "bfloat16"):
        v = cpu.fast_low_precision(dtype, LAYERS, facts=facts(AVX2_EPYC, "AVX2", vendor="AuthenticAMD"), probe=no_probe)
        assert not v.fast
        assert "none of" in v.reason and f"{dtype} convolutions" in v.reason


def test_fp16_cpu_runs_the_probe_at_the_real_layers_and_takes_the_stricter_answer():
    fast, calls = probe_answering(1.6)
    v = cpu.fast_low_precision("float16", LAYERS, facts=facts(), probe=fast)
    assert v.fast and "avx512_fp16" in v.reason
    assert calls == [("float16", tuple(LAYERS))]  # the caller's layers, not a small stand-in
    slow, _ = probe_answering(180.0)  # the instructions say yes, the real layers say no: no
    assert not cpu.fast_low_precision("float16", LAYERS, facts=facts(), probe=slow).fast
    stopped, _ = probe_answering(30.0, finished=False)  # stopped at its budget
    v = cpu.fast_low_precision("float16", LAYERS, facts=facts(), probe=stopped)
    assert not v.fast and "although it has the instructions" in v.reason


@pytest.mark.parametrize("env, capability", [
    ({"ONEDNN_MAX_CPU_ISA": "AVX2"}, "AVX512"),  # oneDNN may not use AVX-512
    ({"ATEN_CPU_CAPABILITY": "avx2"}, "AVX2"),  # torch was told AVX2
    ({"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16"}, "AVX512"),  # below float16's ISA
    ({"ONEDNN_MAX_CPU_ISA": "NOT_AN_ISA"}, "AVX512"),  # unknown: counted as a limit
])
def test_isa_variables_turn_the_instructions_off(env, capability):
    v = cpu.fast_low_precision("float16", LAYERS, facts=facts(env=env, capability=capability), probe=no_probe)
    assert not v.fast and "may not use it" in v.reason


def test_onednn_isa_order():
    f = facts(env={"ONEDNN_MAX_CPU_ISA": "avx512_core_amx"})
    assert cpu.onednn_allows("AVX512_CORE_BF16", f) and cpu.onednn_allows("AVX10_1_512", f)
    assert not cpu.onednn_allows("AVX512_CORE_AMX_FP16", f)
    assert cpu.onednn_allows("AVX512_CORE_AMX_FP16", facts(env={"ONEDNN_MAX_CPU_ISA": "ALL"}))
    assert cpu.onednn_allows("AVX512_CORE_AMX_FP16", facts())
    # bfloat16 stays allowed at AVX512_CORE_BF16 where float16 is not
    bf16_ok = facts(env={"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16"})
    assert cpu.fast_by_instructions("bfloat16", bf16_ok)[0] and not cpu.fast_by_instructions("float16", bf16_ok)[0]


def test_facts_of_this_machine_follow_torch_and_the_environment(monkeypatch):
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    f = cpu.read_facts()
    assert f.torch_capability == torch.backends.cpu.get_cpu_capability()
    assert f.env["ONEDNN_MAX_CPU_ISA"] == "AVX2" and f.threads == torch.get_num_threads()
    assert not cpu.fast_by_instructions("float16", f)[0]  # AVX2 for oneDNN: no float16 instructions
    lines = f.describe()
    assert lines[0].startswith("CPU: ") and "ONEDNN_MAX_CPU_ISA=AVX2" in lines[1] and "threads: torch" in lines[2]


def test_machine_lines_printed_first_by_make_test():
    r = subprocess.run([sys.executable, "-m", "oldphoto.cpu"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].startswith("CPU: ")
    assert f"torch CPU capability: {torch.backends.cpu.get_cpu_capability()}" in r.stdout
    assert "fast float16 convolutions: " in r.stdout


def test_real_probe_times_the_layers_in_a_child_and_stops_at_its_budget():
    done = cpu.probe_slowdown("bfloat16", [Layer(8, 8, 3, 8, 8)], max_ratio=1e9, budget_s=600)
    assert done.finished and done.ratio is not None and done.ratio > 0, done
    # a budget shorter than the child's start: it is stopped, and says so instead of waiting
    stopped = cpu.probe_slowdown("float16", [Layer(8, 8, 3, 8, 8)], max_ratio=25, budget_s=0.001)
    assert not stopped.finished and stopped.ratio is None and "did not finish" in stopped.message
    # a child that fails says why at once instead of waiting for its budget
    broken = cpu.probe_slowdown("no_such_dtype", [Layer(8, 8, 3, 8, 8)], max_ratio=25, budget_s=600)
    assert broken.ratio is None and "the probe failed" in broken.message and "no_such_dtype" in broken.message


def test_cpuinfo_parsing_reads_the_first_processor():
    text = ("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B12\nflags\t\t: fpu avx2 fma\n\n"
            "processor\t: 1\nvendor_id\t: other\n")
    info = cpu.parse_cpuinfo(text)
    assert info["vendor_id"] == "AuthenticAMD" and info["model name"] == "AMD EPYC 7B12"
    assert info["flags"].split() == ["fpu", "avx2", "fma"]


def test_a_timed_choice_is_made_once_per_machine_and_shared_by_its_processes(tmp_path):
    f = facts(vendor="AuthenticAMD")
    assert cpu.decided_once("gemm", lambda: "numpy", facts=f, directory=tmp_path) == "numpy"

    def must_not_decide() -> str:
        raise AssertionError("decided again")

    assert cpu.decided_once("gemm", must_not_decide, facts=f, directory=tmp_path) == "numpy"
    # another machine key (other threads, other ISA limit) decides for itself
    other = cpu.CpuFacts(**{**vars(f), "threads": 16})
    assert cpu.decided_once("gemm", lambda: "torch", facts=other, directory=tmp_path) == "torch"
    assert len(list(tmp_path.glob("gemm-*.json"))) == 2 and not list(tmp_path.glob(".*tmp"))
    # another process of this machine reads this process's decision instead of timing again
    assert cpu.decided_once("gemm2", lambda: "torch", directory=tmp_path) == "torch"
    code = "from oldphoto import cpu; print(cpu.decided_once('gemm2', lambda: 'numpy'))"
    env = {**os.environ, cpu.CACHE_ENV: str(tmp_path)}
    other = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert other.stdout.strip() == "torch", other.stderr


def test_unwritable_cache_keeps_the_process_own_answer(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert cpu.decided_once("gemm", lambda: "numpy", facts=facts(), directory=blocker / "sub") == "numpy"
