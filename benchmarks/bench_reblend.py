"""What moving the web app's Strength / Face strength slider costs: ``RestoreResult.reblend`` (no
network) next to the warm ``Restorer.restore`` it replaces, measured in the same run (issue 16).

Seeded weights; faces through the detector network with one synthetic centred face (as in
bench_pipeline.py), so alignment, one generator pass and the blending run as for a portrait.
Prints a table; asserts nothing.

    .venv/bin/python benchmarks/bench_reblend.py [--sizes 512 1024] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import fmt_table, header, load_average, seeded_weights_dir, test_photo  # noqa: E402
from bench_pipeline import inject_face_if_none  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[512, 1024], help="long side of the test photo")
    p.add_argument("--repeats", type=int, default=5, help="re-blends per size (median reported)")
    p.add_argument("--weights-dir", type=Path)
    args = p.parse_args(argv)

    from oldphoto import Restorer

    print(header("cpu"))
    inject_face_if_none()
    r = Restorer(device="cpu", weights_dir=seeded_weights_dir(args.weights_dir))
    rows = []
    for side in args.sizes:
        photo = test_photo(side, side * 3 // 4)
        r.restore(photo, faces=True)  # warm-up: networks loaded, allocator warm
        t = time.perf_counter()
        res = r.restore(photo, faces=True)
        restore_s = time.perf_counter() - t
        times = []
        for k in range(args.repeats):
            t = time.perf_counter()
            res.reblend(strength=0.3 + 0.1 * k, face_strength=0.5)
            times.append(time.perf_counter() - t)
        t = time.perf_counter()
        res.reblend(strength=0.5, face_strength=1.0)
        no_face_mix = time.perf_counter() - t
        rows.append({
            "size": f"{photo.width}x{photo.height}", "faces": len(res.faces), "restore_s": restore_s,
            "reblend_s": statistics.median(times), "reblend_max_s": max(times), "strength_only_s": no_face_mix,
            "speedup": restore_s / statistics.median(times),
        })
    print(fmt_table(rows, [("size", "photo"), ("faces", "faces"), ("restore_s", "restore (s)"),
                           ("reblend_s", "reblend median (s)"), ("reblend_max_s", "reblend max (s)"),
                           ("strength_only_s", "reblend, face strength 1 (s)"), ("speedup", "restore / reblend")]))
    print(f"load average at end: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
