"""Peak-memory estimate of one restoration, and the check that refuses a photo that cannot fit.

Why: a photo too large for the machine should fail at once with a size that would work, not after
minutes of computation with the OOM killer (or swap) as the message. Since the attention blocks are
computed in row blocks (``nets/attention.py``), every stage's memory grows linearly with the number
of processed pixels, so the estimate is ``fixed + per_pixel * pixels`` per mode, calibrated with
``benchmarks/bench_pipeline.py`` (run +MB column, CPU, float32) and rounded up by a safety margin.
What dominates per pixel: the VAE's 64-channel full-resolution activations (256 B/px each, 2-3 live
in the first encoder and last decoder layers) and, in scratch mode, the non-local block's g / theta /
phi / output maps (512 channels at 1/16 of the pixels, 128 B/px each).

``OLDPHOTO_SKIP_MEMORY_CHECK=1`` turns the check off (the estimate may be pessimistic on a machine
with a different allocator or BLAS).
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from .errors import InputError

Mode = Literal["quality", "scratch", "hr", "colorize"]
"""The global-stage modes, and "colorize" for ``Restorer.colorize`` alone (no restoration)."""

GiB = 2**30
MiB = 2**20

# Bytes per processed pixel of the global stage's peak above the loaded networks, measured on CPU
# (torch 2.x, float32; see the benchmark tables in the issue-7 note) with a 1.3x margin.
PER_PIXEL: dict[str, float] = {"quality": 1300.0, "scratch": 1500.0, "hr": 1500.0}
# Pixel-independent working memory of a run above the loaded networks (allocator slack, the
# attention block buffers of nets/attention.py, the 960 px face detector input and the generator,
# and ~300 MiB of Winograd chunk buffers and transformed weights, nets/winograd.py).
FIXED_RUN_BYTES: dict[str, int] = {"quality": 500 * MiB, "scratch": 900 * MiB, "hr": 900 * MiB}
# Face stage above its networks: RetinaFace at 960 px plus one generator pass (measured +290 MB
# at 256 px, +990 MB at 512 px, both independent of the photo size), with margin.
FACES_RUN_BYTES = {256: 500 * MiB, 512: 1400 * MiB}
# Interpreter + torch runtime when no network is loaded yet.
RUNTIME_BYTES = 300 * MiB
# Colour stage (stages/colorize.py) above its network: DDColor's activations at 512 px (photo-size
# independent) plus, per photo pixel, the uint8 photo, its float32 RGB copy for cv2.resize (12 B),
# the uncoloured image kept for re-blending and the result (3 B each) and PIL copies; the strips of
# the post-processing are bounded. Measured with benchmarks/bench_colorize.py (peak above the warm
# process): DDColor-T +285 MB at 1 MP, +408 MB at 12 MP (~11 B per photo pixel; the official
# pipeline: +835 / +1011 MB). Kept with a wide margin: restore() also holds its own results then.
COLOR_RUN_BYTES = {"ddcolor_paper_tiny": 600 * MiB, "large": 1200 * MiB,
                   # guided colour (stages/guided.py) at its fixed ~330k-pixel processing size, with the
                   # other two Deep Exemplar networks' weights (108 MB): benchmarks/bench_colorize_guided.py
                   # measured +262 MB and +96 MB peaks above the loaded networks
                   "exemplar_colornet": 700 * MiB, "siggraph17": 400 * MiB}
COLOR_PER_PIXEL = 40.0


def processing_size(width: int, height: int, mode: Mode) -> tuple[int, int]:
    """The size the networks run at: multiples of 16 with a mask, else of 4 (see stages.resize)."""
    from .stages.resize import round_to

    if mode == "colorize":
        return width, height
    k = 4 if mode == "quality" else 16
    return max(k, round_to(width, k)), max(k, round_to(height, k))


def weights_bytes(components: Iterable[str]) -> int:
    """float32 bytes of the networks' tensors, from their manifests (no file is read)."""
    from .weights.manifests import load_manifest

    total = 0
    for comp in components:
        for _name, shape, _dtype in load_manifest(comp).tensors:
            total += 4 * math.prod(shape)
    return total


def color_run_bytes(component: str, width: int, height: int) -> int:
    """Working memory of the colour stage on a ``width`` x ``height`` photo, above its network's weights."""
    fixed = COLOR_RUN_BYTES.get(component, COLOR_RUN_BYTES["large"])
    return int(fixed + COLOR_PER_PIXEL * width * height)


def estimate_peak_bytes(
    width: int,
    height: int,
    mode: Mode,
    *,
    faces: bool = False,
    loaded: Iterable[str] = (),
    hr_faces: bool = False,
    colorize: str | None = None,
) -> int:
    """Estimated peak process memory (bytes) to restore a ``width`` x ``height`` photo.

    ``loaded``: components already in memory, counted in the networks' share like the others
    (the estimate is of the whole process, not of the increment). The global stage and the face
    stage do not overlap in time, so the larger of the two working sets counts. ``colorize``: the
    DDColor component of a colour stage after them (mode "colorize": that stage alone).
    """
    from .stages.restore import components_for_mode

    if mode == "colorize":
        comps = set(loaded) | ({colorize} if colorize else set())
        return int(RUNTIME_BYTES + weights_bytes(comps) + color_run_bytes(colorize or "", width, height))
    w, h = processing_size(width, height, mode)
    comps = set(components_for_mode(mode)) | set(loaded)
    if mode != "quality":
        comps.add("detection_unet")  # counted even with a user mask: an upper bound
    if faces:
        comps |= {"retinaface_resnet50", "face_gen_512" if hr_faces or mode == "hr" else "face_gen_256"}
    run = FIXED_RUN_BYTES[mode] + PER_PIXEL[mode] * w * h
    if faces:
        face_px = 512 if hr_faces or mode == "hr" else 256
        run = max(run, FACES_RUN_BYTES[face_px] + 40.0 * w * h)  # blending works on float copies of the photo
    if colorize:
        comps.add(colorize)
        run = max(run, color_run_bytes(colorize, width, height) + 8.0 * w * h)  # restoration results kept
    return int(RUNTIME_BYTES + weights_bytes(comps) + run)


def available_bytes() -> int | None:
    """Memory this process may still use: MemAvailable, capped by a cgroup v2 limit when one is set.

    Read from /proc (no psutil); ``None`` where neither can be read (then nothing is checked).
    """
    avail: int | None = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                avail = int(line.split()[1]) * 1024
                break
    except (OSError, ValueError, IndexError):
        pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
            room = int(limit) - used
            avail = room if avail is None else min(avail, room)
    except (OSError, ValueError):
        pass
    return avail


def current_rss_bytes() -> int:
    """This process's resident memory (already counted in MemAvailable as used)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def largest_fitting_size(width: int, height: int, mode: Mode, budget: int, **kw) -> tuple[int, int] | None:
    """The largest size with the photo's aspect ratio whose estimate fits ``budget`` (sides multiples of 16)."""
    fixed = estimate_peak_bytes(16, 16, mode, **kw)
    per_px = (estimate_peak_bytes(1024, 1024, mode, **kw) - fixed) / (1024 * 1024 - 256)
    if budget <= fixed:
        return None
    scale = min(1.0, math.sqrt((budget - fixed) / per_px / (width * height)))
    w, h = int(width * scale) // 16 * 16, int(height * scale) // 16 * 16
    while w >= 16 and h >= 16 and estimate_peak_bytes(w, h, mode, **kw) > budget:
        w, h = w - 16, int((w - 16) * height / width) // 16 * 16
    return (w, h) if w >= 16 and h >= 16 else None


def check_fits(
    width: int,
    height: int,
    mode: Mode,
    *,
    faces: bool = False,
    hr_faces: bool = False,
    loaded: Iterable[str] = (),
    available: int | None = None,
    colorize: str | None = None,
) -> None:
    """Raise :class:`InputError` naming a size that fits when the photo cannot be restored in memory.

    ``available`` defaults to :func:`available_bytes` plus this process's RSS (the estimate is of the
    whole process, and what is resident now is reused). Only CPU memory is checked.
    """
    if os.environ.get("OLDPHOTO_SKIP_MEMORY_CHECK", "").strip() not in ("", "0"):
        return
    loaded = tuple(loaded)
    if available is None:
        free = available_bytes()
        if free is None:
            return
        available = free + current_rss_bytes()
    kw = {"faces": faces, "hr_faces": hr_faces, "loaded": loaded, "colorize": colorize}
    need = estimate_peak_bytes(width, height, mode, **kw)
    if need <= available:
        return
    fit = largest_fitting_size(width, height, mode, available, **kw)
    where = f"it would fit at about {fit[0]}x{fit[1]} pixels" if fit else "not even a small photo fits now"
    raise InputError(
        f"This photo ({width}x{height}) needs about {need / GiB:.1f} GB of memory in {mode} mode, but only "
        f"{available / GiB:.1f} GB is available; {where}. Resize the photo (or close other programs) and "
        f"try again; OLDPHOTO_SKIP_MEMORY_CHECK=1 skips this check."
    )


_libc = None  # set while malloc is tuned (by keep_freed_memory_for_reuse() or for a Restorer's job)
_trim_after_jobs = False
_process_tuned = False  # the process itself asked (the CLI, the web app, the GIMP worker)
_scoped_jobs = 0  # Restorer jobs running with malloc tuned for their duration only
_scope_lock = threading.Lock()
GLIBC_DEFAULT_THRESHOLD = 128 * 1024  # glibc's initial M_MMAP_THRESHOLD and M_TRIM_THRESHOLD
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8
KEEP_MMAP_THRESHOLD = 1 << 30  # blocks below this stay in the heap when freed (every layer output here)
MAP_MMAP_THRESHOLD = 32 * MiB  # glibc's own ceiling for its dynamic threshold on 64-bit
# Scratch/HR photos above this many processed pixels (~1450x1450) allocate big blocks with mmap again.
# Their time is the attention's arithmetic (2048x2048 scratch: 1622 of 1643 s in the mapping network),
# so keeping freed memory saves nothing there, while its heap grew to 7.9 GB against the live set's
# ~4.3 GB (benchmarks/bench_pipeline.py --sizes 2048 --modes scratch).
KEEP_MAX_PIXELS_WITH_ATTENTION = 2**21


def keep_freed_memory_for_reuse(*, trim_after_jobs: bool = False) -> bool:
    """Ask glibc's malloc to keep freed blocks instead of returning them to the system (Linux only).

    Why: every layer output (tens to hundreds of MB) is a fresh ``mmap`` by default, and the kernel
    zero-fills each of its pages on first touch: ~1.7 million page faults for one 512x512 quality
    restoration, a third of its time (measured: 6.1-7.1 s -> 4.2-4.5 s). Keeping freed memory in the
    heap lets the next layer reuse it; one arena makes that hold for work done in worker threads too
    (Gradio's handlers, the GIMP worker), whose own arenas would still ``mmap`` every big block.
    The price is a peak above the live set (blocks of varying sizes leave holes): +14-28 % measured
    up to 2048x2048 in quality mode and 1024x1024 in scratch mode, inside the estimate above; bigger
    scratch/HR photos go back to ``mmap`` per job (:func:`job_started`). A long-lived process passes
    ``trim_after_jobs=True`` so that :func:`job_done` (called by the Restorer after each photo) gives
    the freed memory back between jobs (~50 ms); the one-shot CLI keeps it.
    Process-wide and lasting, so only oldphoto's own entry points call this, never the library on
    import; a :class:`~oldphoto.pipeline.Restorer` in someone else's process tunes malloc per job
    instead (:func:`begin_scoped_job`). Returns whether the setting was applied.
    """
    global _libc, _trim_after_jobs, _process_tuned
    libc = _glibc()
    if libc is None:
        return False
    with _scope_lock:
        ok = _keep_freed(libc) and bool(libc.mallopt(_M_ARENA_MAX, 1))
        if ok:
            _libc, _trim_after_jobs, _process_tuned = libc, trim_after_jobs, True
    return ok


def _glibc():
    """glibc through ctypes, or None where malloc is not glibc's (not Linux, musl)."""
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt  # noqa: B018 - glibc has both; a libc without them is not tuned at all
        libc.malloc_trim  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


def _keep_freed(libc) -> bool:
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, KEEP_MMAP_THRESHOLD)) and bool(
        libc.mallopt(_M_TRIM_THRESHOLD, (1 << 31) - 1)
    )


def begin_scoped_job() -> bool:
    """Tune malloc for one Restorer job in a process that did not ask for it (a script, a notebook).

    Why: a library user otherwise gets glibc's defaults and the slow path (408x512 quality: 4.85 s
    instead of 3.05 s, issue 15) without knowing it. Scoped so that it cannot hurt the host: only the two
    thresholds change, for the duration of the job; :func:`end_scoped_job` gives the kept memory
    back (``malloc_trim``) and sets them back to glibc's initial 128 KiB (glibc's *dynamic* mmap
    threshold, which only ever grows, stays frozen at that value afterwards: mallopt cannot
    re-enable it). ``M_ARENA_MAX`` is left alone: it cannot be reset and would serialise a
    multithreaded host's allocations; so jobs run in a thread that already has its own arena
    reuse blocks below that arena's 64 MiB heaps only. Concurrent jobs share one scope.
    Returns whether this job opened (or joined) a scope; then :func:`end_scoped_job` must follow.
    """
    global _libc, _scoped_jobs
    with _scope_lock:
        if _process_tuned:
            return False  # the process's own, longer-lived setting applies
        if _scoped_jobs == 0:
            libc = _glibc()
            if libc is None or not _keep_freed(libc):
                return False
            _libc = libc
        _scoped_jobs += 1
        return True


def end_scoped_job() -> None:
    """End of a job opened by :func:`begin_scoped_job`: the last one out restores glibc's defaults."""
    global _libc, _scoped_jobs
    with _scope_lock:
        _scoped_jobs -= 1
        if _scoped_jobs > 0 or _process_tuned or _libc is None:
            return
        libc, _libc = _libc, None
        libc.malloc_trim(0)
        libc.mallopt(_M_MMAP_THRESHOLD, GLIBC_DEFAULT_THRESHOLD)
        libc.mallopt(_M_TRIM_THRESHOLD, GLIBC_DEFAULT_THRESHOLD)


def job_started(width: int, height: int, mode: Mode) -> bool:
    """Start of one photo: whether its big blocks are kept for reuse (see the constants above).

    Without :func:`keep_freed_memory_for_reuse` or a scoped job nothing is tuned and this returns False. Switching
    to ``mmap`` first gives back what earlier photos left in the heap.
    """
    if _libc is None:
        return False
    w, h = processing_size(width, height, mode)
    keep = mode == "quality" or w * h <= KEEP_MAX_PIXELS_WITH_ATTENTION
    if not keep:
        _libc.malloc_trim(0)
    _libc.mallopt(_M_MMAP_THRESHOLD, KEEP_MMAP_THRESHOLD if keep else MAP_MMAP_THRESHOLD)
    return keep


def job_done() -> None:
    """End of one photo: give kept memory back when the process asked for that (see above)."""
    if _libc is not None and _trim_after_jobs:
        _libc.malloc_trim(0)
