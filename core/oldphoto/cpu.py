"""What this CPU can do fast, decided from what it HAS, checked by a probe at the real layer sizes.

Why this exists: a path that runs hundreds of times slower on some CPUs (float16 or bfloat16
convolutions without the instructions for them: oneDNN falls back to a reference kernel) must not be
chosen, or a test must not run it, on the word of a small timing probe. Issue 22: a 64-channel 32x32
float16 convolution took 4x its float32 time on an AVX2-only AMD EPYC, so a test went ahead, while the
real 256-channel layers took 180x and the test ran past CI's limit. So two answers are asked and the
stricter one is taken:

1. the instruction sets: ``/proc/cpuinfo`` flags (``avx512_fp16``, ``amx_fp16``, ``avx512_bf16``, ...),
   as far as torch may use them: ``torch.backends.cpu.get_cpu_capability()`` (which honours
   ``ATEN_CPU_CAPABILITY``) and ``ONEDNN_MAX_CPU_ISA`` (oneDNN's convolutions);
2. only where 1 says yes: a probe that runs the REAL layers (channels and sizes the caller gives) in a
   child process under a time budget, killed when the slow dtype exceeds ``max_ratio`` times its
   float32 time (so a reference kernel costs at most that, never hours).

``python -m oldphoto.cpu`` prints the machine lines that ``make test`` shows first.
Nothing here decides a result's numbers: only which path runs, or whether a test runs.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ISA_ENV = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")
"""The environment variables that restrict the instruction sets torch, oneDNN or MKL use."""

# oneDNN's ONEDNN_MAX_CPU_ISA values, weakest first (aliases share a place). oneDNN's sets are bit
# masks rather than a line; a line errs towards "allowed", and the probe then has the last word.
ONEDNN_ISA_ORDER: tuple[tuple[str, ...], ...] = (
    ("SSE41",), ("AVX",), ("AVX2",), ("AVX2_VNNI",), ("AVX2_VNNI_2",), ("AVX512_CORE",), ("AVX512_CORE_VNNI",),
    ("AVX512_CORE_BF16",), ("AVX512_CORE_FP16", "AVX10_1_512"), ("AVX512_CORE_AMX", "AVX10_1_512_AMX"),
    ("AVX512_CORE_AMX_FP16", "AVX10_1_512_AMX_FP16"), ("AVX10_2_512",), ("AVX10_2_512_AMX_2",),
)

# dtype -> the CPU flags that give fast convolutions in it: (flag, oneDNN ISA that uses it, needs AVX-512
# in ATen). Without one of these, oneDNN runs the dtype through a reference kernel (issue 22: 180x).
LOW_PRECISION_ROUTES: dict[str, tuple[tuple[str, str, bool], ...]] = {
    "float16": (("avx512_fp16", "AVX512_CORE_FP16", True), ("amx_fp16", "AVX512_CORE_AMX_FP16", True),
                ("avx_ne_convert", "AVX2_VNNI_2", False)),
    "bfloat16": (("avx512_bf16", "AVX512_CORE_BF16", True), ("amx_bf16", "AVX512_CORE_AMX", True),
                 ("avx_ne_convert", "AVX2_VNNI_2", False)),
}


@dataclass(frozen=True)
class CpuFacts:
    """What the CPU has and what torch was allowed to use of it (no timing)."""

    model: str
    vendor: str
    flags: frozenset[str]
    torch_capability: str  # torch.backends.cpu.get_cpu_capability(): "AVX512", "AVX2", "DEFAULT", ...
    env: dict[str, str]  # the ISA_ENV variables that are set
    threads: int  # torch's intra-op threads
    cpus: int
    torch_mkl: bool  # torch multiplies float32 matrices with MKL
    numpy_blas: str  # numpy's BLAS ("scipy-openblas", "openblas", "mkl", "" where unknown)

    def describe(self) -> list[str]:
        """The lines a test or benchmark log starts with, so a failure says which machine it came from."""
        isa = " ".join(f"{k}={v}" for k, v in self.env.items()) or "none set"
        wanted = sorted(f for f in self.flags if f.startswith(("avx512", "amx", "avx2", "avx_", "fma", "f16c")))
        return [
            f"CPU: {self.model or '?'} ({self.vendor or '?'}, {platform.machine()}), {self.cpus} logical CPUs",
            f"torch CPU capability: {self.torch_capability}; ISA environment: {isa}",
            f"threads: torch {self.threads} (OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')})",
            f"CPU flags: {' '.join(wanted) or 'none of avx2/avx512/amx'}",
            *(f"fast {dtype} convolutions: {'yes' if ok else 'no'} ({why})"
              for dtype in LOW_PRECISION_ROUTES for ok, why in [fast_by_instructions(dtype, self)]),
        ]


def parse_cpuinfo(text: str) -> dict[str, str]:
    """The first processor's fields of a /proc/cpuinfo text (all processors of a machine share them)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if out:
                break
            continue
        key, _, value = line.partition(":")
        out.setdefault(key.strip(), value.strip())
    return out


def _cpuinfo() -> dict[str, str]:
    try:
        with open("/proc/cpuinfo") as f:
            return parse_cpuinfo(f.read())
    except OSError:
        return {}


def _numpy_blas() -> str:
    try:
        import numpy as np

        return str(np.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"])
    except Exception:  # noqa: BLE001 - numpy < 1.26 or an unusual build: unknown
        return ""


def read_facts() -> CpuFacts:
    """This machine's facts, read now (``cpu_facts()`` caches them per process)."""
    import torch

    info = _cpuinfo()
    flags = frozenset((info.get("flags") or info.get("Features") or "").split())
    return CpuFacts(
        model=info.get("model name") or platform.processor(),
        vendor=info.get("vendor_id", ""),
        flags=flags,
        torch_capability=str(torch.backends.cpu.get_cpu_capability()),
        env={k: os.environ[k] for k in ISA_ENV if os.environ.get(k)},
        threads=torch.get_num_threads(),
        cpus=os.cpu_count() or 1,
        torch_mkl=bool(torch.backends.mkl.is_available()),
        numpy_blas=_numpy_blas(),
    )


@functools.cache
def cpu_facts() -> CpuFacts:
    return read_facts()


def _onednn_rank(name: str) -> int | None:
    for i, names in enumerate(ONEDNN_ISA_ORDER):
        if name.upper() in names:
            return i
    return None


def onednn_allows(isa: str, facts: CpuFacts) -> bool:
    """Whether ``ONEDNN_MAX_CPU_ISA`` (or its old name) leaves oneDNN the instruction set ``isa``.

    An unknown value counts as a limit (the stricter answer); ``ALL``/``DEFAULT`` as none.
    """
    limit = facts.env.get("ONEDNN_MAX_CPU_ISA") or facts.env.get("DNNL_MAX_CPU_ISA")
    if not limit or limit.upper() in ("ALL", "DEFAULT"):
        return True
    have, need = _onednn_rank(limit), _onednn_rank(isa)
    return have is not None and need is not None and need <= have


def fast_by_instructions(dtype: str, facts: CpuFacts) -> tuple[bool, str]:
    """Answer 1: does the CPU have, and may torch use, instructions for ``dtype`` convolutions?"""
    routes = LOW_PRECISION_ROUTES[dtype]
    limited = []
    for flag, isa, needs_avx512 in routes:
        if flag not in facts.flags:
            continue
        if needs_avx512 and not facts.torch_capability.upper().startswith("AVX512"):
            limited.append(f"{flag} (torch capability {facts.torch_capability})")
        elif not onednn_allows(isa, facts):
            limited.append(f"{flag} (ONEDNN_MAX_CPU_ISA={facts.env.get('ONEDNN_MAX_CPU_ISA') or facts.env.get('DNNL_MAX_CPU_ISA')})")
        else:
            return True, f"the CPU has {flag}"
    if limited:
        return False, f"the CPU has {', '.join(limited)} but torch may not use it"
    names = "/".join(flag for flag, _, _ in routes)
    return False, f"the CPU has none of {names}: oneDNN runs {dtype} convolutions through a reference kernel"


@dataclass(frozen=True)
class Layer:
    """One convolution of a real network, at the size it runs at: what a probe must time.

    ``kind``: "conv" (``conv2d``, ``padding = kernel // 2``) or "deconv" (``conv_transpose2d`` with
    ``stride`` and ``padding = (kernel - stride) // 2``, the VAE decoder's upsampling).
    """

    cin: int
    cout: int
    kernel: int
    height: int
    width: int
    kind: str = "conv"
    stride: int = 1


@dataclass(frozen=True)
class ProbeResult:
    ratio: float | None  # low precision time / float32 time; None where the probe could not tell
    finished: bool  # False: the low precision run was stopped at its budget
    message: str


def _probe_child() -> None:
    """Runs in the probe's child process: layers from stdin, "float32 <s>" then "<dtype> <s>" on stdout."""
    spec = json.loads(sys.stdin.read())
    import torch
    import torch.nn.functional as F

    low = getattr(torch, spec["dtype"])  # an unknown dtype fails before any timing
    torch.set_num_threads(spec["threads"])
    torch.set_grad_enabled(False)
    gen = torch.Generator().manual_seed(0)
    layers = [Layer(**layer) for layer in spec["layers"]]
    data = []
    for la in layers:
        x = torch.randn(1, la.cin, la.height, la.width, generator=gen)
        shape = (la.cin, la.cout, la.kernel, la.kernel) if la.kind == "deconv" else (la.cout, la.cin, la.kernel, la.kernel)
        data.append((la, x, torch.randn(shape, generator=gen) * 0.05))

    def run(dtype: torch.dtype) -> float:
        t = time.perf_counter()
        for la, x, w in data:
            if la.kind == "deconv":
                F.conv_transpose2d(x.to(dtype), w.to(dtype), stride=la.stride, padding=(la.kernel - la.stride) // 2)
            else:
                F.conv2d(x.to(dtype), w.to(dtype), padding=la.kernel // 2)
        return time.perf_counter() - t

    run(torch.float32)  # first call: oneDNN builds its kernels
    print("float32", min(run(torch.float32), run(torch.float32)), flush=True)
    for _ in range(2):  # the first includes building the kernels; the parent keeps the best it sees in time
        print(spec["dtype"], run(low), flush=True)


def probe_slowdown(dtype: str, layers: Sequence[Layer], *, max_ratio: float, budget_s: float) -> ProbeResult:
    """Answer 2: ``layers`` in ``dtype`` against float32, timed in a child process that is killed
    when ``dtype`` has taken ``max_ratio`` times the float32 time or the whole probe ``budget_s``.

    A child process, because a reference-kernel convolution cannot be interrupted in this one and
    would keep a core busy for minutes after a thread gave up on it.
    """
    import torch

    spec = {"dtype": dtype, "threads": torch.get_num_threads(), "layers": [vars(la) for la in layers]}
    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-c", "from oldphoto.cpu import _probe_child; _probe_child()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()  # type: ignore[union-attr]
    try:
        proc.stdin.write(json.dumps(spec))  # type: ignore[union-attr]
        proc.stdin.close()  # type: ignore[union-attr]

        def read(deadline: float) -> float | None:
            """The next time the child prints; None at the deadline or once the child has ended."""
            while True:
                try:
                    return float(lines.get(timeout=min(0.2, max(0.0, deadline - time.monotonic()))).split()[1])
                except (IndexError, ValueError):
                    return None
                except queue.Empty:
                    if time.monotonic() >= deadline:
                        return None
                    if proc.poll() is not None:  # ended: its last line may still be on the way
                        try:
                            return float(lines.get(timeout=0.5).split()[1])
                        except (queue.Empty, IndexError, ValueError):
                            return None

        def failed() -> ProbeResult | None:
            if proc.poll() is None:
                return None
            err = (proc.stderr.read() if proc.stderr else "").strip().splitlines()  # type: ignore[union-attr]
            return ProbeResult(None, False, f"the probe failed: {err[-1] if err else f'exit {proc.returncode}'}")

        t32 = read(start + budget_s)
        if t32 is None:
            return failed() or ProbeResult(None, False, f"the float32 probe did not finish within {budget_s:.3g} s")
        t32 = max(t32, 1e-6)
        waited = time.monotonic()
        t_low = read(min(start + budget_s, waited + max_ratio * t32 + 0.5))
        if t_low is None:
            if (bad := failed()) is not None:
                return bad
            slower = (time.monotonic() - waited) / t32
            return ProbeResult(slower, False, f"{dtype} took over {slower:.0f}x the float32 time of the real "
                               f"layers ({t32:.3f} s) and was stopped")
        second = read(min(start + budget_s, time.monotonic() + max_ratio * t32 + 0.5))
        ratio = min(t_low, second if second is not None else t_low) / t32
        return ProbeResult(ratio, True, f"{dtype} takes {ratio:.1f}x the float32 time of the real layers ({t32:.3f} s)")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


@dataclass(frozen=True)
class Verdict:
    fast: bool
    reason: str


Probe = Callable[..., ProbeResult]


def fast_low_precision(
    dtype: str,
    layers: Sequence[Layer],
    *,
    max_ratio: float = 25.0,
    budget_s: float = 60.0,
    facts: CpuFacts | None = None,
    probe: Probe = probe_slowdown,
) -> Verdict:
    """Whether ``dtype`` convolutions of ``layers`` are fast here: BOTH the instruction sets and the
    probe at those sizes must say so (the probe runs only where the instructions say yes).

    ``facts`` and ``probe`` are parameters so that tests can give either answer on any machine.
    """
    facts = facts or cpu_facts()
    ok, why = fast_by_instructions(dtype, facts)
    if not ok:
        return Verdict(False, f"{dtype} convolutions are slow on this CPU: {why}")
    result = probe(dtype, layers, max_ratio=max_ratio, budget_s=budget_s)
    if result.ratio is None or not result.finished or result.ratio > max_ratio:
        return Verdict(False, f"{dtype} convolutions are slow on this CPU although it has the instructions "
                       f"({why}): {result.message} (limit {max_ratio:.0f}x)")
    return Verdict(True, f"{why}; {result.message}")


CACHE_ENV = "OLDPHOTO_CPU_CACHE"  # where per-machine decisions are kept (default: $XDG_CACHE_HOME/oldphoto/cpu)


def decisions_dir() -> Path:
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(os.path.expanduser(env))
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "oldphoto" / "cpu"


def machine_key(facts: CpuFacts) -> str:
    """What a timed choice depends on: the CPU, what torch may use of it, its threads, the libraries."""
    import numpy as np
    import torch

    parts = [facts.model, facts.vendor, sorted(facts.flags), facts.torch_capability, sorted(facts.env.items()),
             facts.threads, facts.torch_mkl, facts.numpy_blas, torch.__version__, np.__version__]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


def decided_once(name: str, decide: Callable[[], str], *, facts: CpuFacts | None = None,
                 directory: Path | None = None) -> str:
    """``decide()`` once per machine, then the same answer in every process (a file per machine key).

    Why: a choice made by timing (which GEMM library multiplies the attention's matrices) changes the
    float rounding of a result. Made afresh in every process, two processes on one machine could
    choose differently on a busy machine (measured: 1 of 6 processes on a shared EPYC), and so give a
    GIMP worker and the CLI pixels a level apart for the same photo. The first process to finish the
    decision writes it (created atomically, never replaced); all later ones read it. Where the folder
    cannot be written, the process keeps its own answer.
    """
    path = (directory or decisions_dir()) / f"{name}-{machine_key(facts or cpu_facts())}.json"
    try:
        return str(json.loads(path.read_text())["choice"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    choice = decide()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"choice": choice, "decided": time.strftime("%Y-%m-%d %H:%M:%S")}))
        try:
            os.link(tmp, path)  # atomic "create if absent": a concurrent first decision wins
        finally:
            tmp.unlink(missing_ok=True)
    except FileExistsError:
        try:
            return str(json.loads(path.read_text())["choice"])
        except (OSError, ValueError, KeyError, TypeError):
            return choice
    except OSError:
        return choice
    return choice


def main() -> int:
    print("\n".join(cpu_facts().describe()), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
