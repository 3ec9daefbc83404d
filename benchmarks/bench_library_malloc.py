"""A/B in one process: a plain-Python ``Restorer`` with glibc's malloc defaults vs its per-job tuning.

    .venv/bin/python benchmarks/bench_library_malloc.py [--size 408x512] [--modes quality scratch] [--repeat 3]

Why one process, alternating: the machine is shared, so separate runs measure the neighbours as much
as the code. The same ``Restorer`` (networks loaded once, warmed up) restores the same photo with
``reuse_memory=False`` (what a script or notebook got before: glibc's defaults, every big layer
output zero-filled afresh) and ``reuse_memory=True`` (the default now: malloc tuned for the job and
set back afterwards, ``oldphoto.memory.begin_scoped_job``), alternately; best of ``--repeat`` each.
The process never calls ``keep_freed_memory_for_reuse`` itself, as a library user would not.
Seeded weights (same cost as the real ones), faces off, synthetic scratch mask.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", default="408x512", help="WIDTHxHEIGHT of the photo")
    p.add_argument("--modes", nargs="+", choices=["quality", "scratch"], default=["quality", "scratch"])
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)
    w, h = (int(v) for v in args.size.split("x"))

    from oldphoto import Restorer

    print(C.header("cpu"))
    r = Restorer(device="cpu", weights_dir=C.seeded_weights_dir())
    photo = C.test_photo(w, h)
    for mode in args.modes:
        kw = {"faces": False}
        if mode == "scratch":
            kw["mask"] = C.synthetic_mask(w, h)
        r.restore(C.test_photo(128, 128), faces=False, **({"mask": C.synthetic_mask(128, 128)} if mode == "scratch" else {}))
        best = {False: float("inf"), True: float("inf")}
        faults = {False: 0, True: 0}
        for _ in range(args.repeat):
            for reuse in (False, True):
                r.reuse_memory = reuse
                f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                t = time.perf_counter()
                r.restore(photo, **kw)
                best[reuse] = min(best[reuse], time.perf_counter() - t)
                faults[reuse] = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0
        # page faults do not depend on the neighbours' load: the robust half of the comparison
        print(f"{mode} {w}x{h}: glibc defaults {best[False]:.2f} s ({faults[False]} page faults), "
              f"per-job tuning (default) {best[True]:.2f} s ({faults[True]} page faults), "
              f"{best[False] / best[True]:.2f}x (best of {args.repeat}, interleaved)")
    print("load:", C.load_average())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
