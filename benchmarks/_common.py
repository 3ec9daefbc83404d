"""Helpers shared by the benchmark scripts (not a test module; nothing here asserts on time).

Why a separate module: every benchmark must print the same header (command line, torch version,
threads, device, machine load) so that tables from different runs and machines can be compared, and
the per-process memory readings (VmHWM with a reset, CUDA peak) must be taken the same way.
"""

from __future__ import annotations

import os
import platform
import shlex
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TEST_IMAGES = REPO.parent / "shared" / "reference" / "test_images"
DEFAULT_WEIGHTS_CACHE = Path(
    os.environ.get("OLDPHOTO_BENCH_WEIGHTS", Path(tempfile.gettempdir()) / "oldphoto-bench-weights")
)


def header(device: str = "cpu") -> str:
    """Command line, versions, threads, device and load: what a reader needs to trust a timing."""
    import torch

    from oldphoto.cpu import cpu_facts

    lines = [
        *cpu_facts().describe(),
        f"command: {' '.join(shlex.quote(a) for a in [sys.executable, *sys.argv])}",
        f"python {platform.python_version()}  torch {torch.__version__}  threads {torch.get_num_threads()}"
        f"  interop {torch.get_num_interop_threads()}  cpus {os.cpu_count()}",
        f"device: {device}" + (f" ({torch.cuda.get_device_name(0)})" if device.startswith("cuda") else ""),
        f"load average at start: {load_average()}",
    ]
    return "\n".join(lines)


def load_average() -> str:
    """The 1/5/15 minute load average; timings on a shared machine are only meaningful next to it."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def proc_status_kib(field: str) -> int:
    """A ``/proc/self/status`` memory field in KiB (VmHWM = peak RSS, VmRSS = current RSS)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0), so the next peak belongs to what follows.

    Without it the peak of a run is hidden by the peak of model loading (state dict + parameters).
    """
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def seeded_weights_dir(path: Path | None = None) -> Path:
    """A folder of seeded ``<component>.safetensors`` (same shapes as the real checkpoints), made once."""
    from oldphoto.seeded import write_seeded_weights

    out = path or DEFAULT_WEIGHTS_CACHE
    write_seeded_weights(out)  # skips files that exist
    return out


def test_photo(width: int, height: int, name: str = "old/b.png"):
    """A real old photo (official test image) cropped to the aspect ratio and resized, RGB.

    A real photo rather than noise, so that the (seeded) scratch detector and face detector see
    natural image statistics; the networks' cost does not depend on the content.
    """
    from PIL import Image

    path = TEST_IMAGES / name
    if not path.exists():
        import numpy as np

        rng = np.random.default_rng(0)
        return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB")
    img = Image.open(path).convert("RGB")
    w, h = img.size
    target = width / height
    if w / h > target:
        nw = round(h * target)
        img = img.crop(((w - nw) // 2, 0, (w - nw) // 2 + nw, h))
    else:
        nh = round(w / target)
        img = img.crop((0, (h - nh) // 2, w, (h - nh) // 2 + nh))
    return img.resize((width, height), Image.BICUBIC)


def synthetic_mask(width: int, height: int):
    """Thin vertical, horizontal and diagonal scratches (~2% of pixels), like a scanned crease."""
    import numpy as np

    m = np.zeros((height, width), bool)
    m[:, width // 3 : width // 3 + 3] = True
    m[height // 2 : height // 2 + 2, :] = True
    n = min(width, height)
    idx = np.arange(n)
    for d in range(3):
        m[np.clip(idx + d, 0, height - 1), idx] = True
    return m


class NetTimer:
    """Wall time spent inside each network's top-level call (forward / encode / decode).

    Wraps the bound methods of the loaded instances (instance attributes shadow the class methods,
    and ``nn.Module.__call__`` looks ``forward`` up on the instance), so the pipeline code is
    measured unchanged. On CUDA each call is synchronised so the time is the network's, not the
    launch's.
    """

    METHODS = ("forward", "encode", "decode")

    def __init__(self, sync: Callable[[], None] | None = None) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self._sync = sync or (lambda: None)
        self._depth = 0

    def install(self, nets: dict[str, Any]) -> None:
        for comp, net in nets.items():
            for meth in self.METHODS:
                fn = getattr(type(net), meth, None)
                if fn is None or (meth == "forward" and type(net).forward is _unimplemented_forward()):
                    continue
                setattr(net, meth, self._wrap(comp, getattr(net, meth)))

    def _wrap(self, comp: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            # nested calls (a net calling another wrapped method) are counted once, by the outer one
            if self._depth:
                return fn(*args, **kwargs)
            self._depth += 1
            self._sync()
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self._sync()
                self._depth -= 1
                self.seconds[comp] = self.seconds.get(comp, 0.0) + time.perf_counter() - t
                self.calls[comp] = self.calls.get(comp, 0) + 1

        return timed

    def reset(self) -> None:
        self.seconds.clear()
        self.calls.clear()

    @property
    def total(self) -> float:
        return sum(self.seconds.values())


def _unimplemented_forward() -> Any:
    import torch

    return torch.nn.Module.forward


@contextmanager
def timed() -> Iterator[list[float]]:
    """``with timed() as t: ...`` then ``t[0]`` is the elapsed wall time in seconds."""
    out: list[float] = []
    t = time.perf_counter()
    try:
        yield out
    finally:
        out.append(time.perf_counter() - t)


def fmt_table(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> str:
    """A plain Markdown table (``columns`` = (key, title)), so results paste into notes unchanged."""
    titles = [t for _, t in columns]
    cells = [[_fmt(r.get(k)) for k, _ in columns] for r in rows]
    widths = [max(len(t), *(len(c[i]) for c in cells)) if cells else len(t) for i, t in enumerate(titles)]
    out = ["| " + " | ".join(t.ljust(w) for t, w in zip(titles, widths)) + " |"]
    out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for c in cells:
        out.append("| " + " | ".join(v.ljust(w) for v, w in zip(c, widths)) + " |")
    return "\n".join(out)


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.2f}"
    return str(v)
