"""Model load time from safetensors, per component: build (on the meta device, as
``oldphoto.nets.instantiate`` does), read the file, load_state_dict(assign=True).

    .venv/bin/python benchmarks/bench_load.py [--components vae_a_quality mapping_scratch ...] [--repeat 3]

Why split: a cold CLI run pays ``build + read + load`` for every network it needs, and the three
parts have different cures (lazy/meta construction, mmap, assign). The file read is timed with the
OS page cache as it is (the first repeat may be cold, later ones are warm); the best of ``--repeat``
is reported next to the first. Weights: the seeded files (same shapes and sizes as the real ones).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    from oldphoto.weights.manifests import COMPONENT_MANIFESTS

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--components", nargs="+", default=list(COMPONENT_MANIFESTS))
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--weights-dir", type=Path, default=None)
    args = p.parse_args(argv)

    import torch
    from safetensors.torch import load_file

    from oldphoto.nets import build

    print(C.header("cpu"))
    weights = C.seeded_weights_dir(args.weights_dir)
    print(f"weights: seeded, {weights}\n")
    rows = []
    for comp in args.components:
        path = weights / f"{comp}.safetensors"
        runs = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            try:
                with torch.device("meta"):  # what instantiate() does, timed separately
                    net = build(comp)
            except KeyError:
                break
            t1 = time.perf_counter()
            sd = load_file(str(path))
            t2 = time.perf_counter()
            net.load_state_dict(sd, strict=True, assign=True)
            net.eval().requires_grad_(False)
            t3 = time.perf_counter()
            runs.append((t1 - t0, t2 - t1, t3 - t2, t3 - t0))
            del net, sd
        if not runs:
            continue
        best = min(runs, key=lambda r: r[3])
        rows.append({
            "comp": comp, "mb": path.stat().st_size / 2**20, "build": best[0], "read": best[1],
            "load_sd": best[2], "total": best[3], "first": runs[0][3],
        })
    cols = [("comp", "component"), ("mb", "file MB"), ("build", "build s"), ("read", "read s"),
            ("load_sd", "load_state_dict s"), ("total", "best total s"), ("first", "first total s")]
    print(C.fmt_table(rows, cols))
    print(f"\nsum of best totals: {sum(r['total'] for r in rows):.2f} s; torch threads {torch.get_num_threads()}")
    print(f"load average at end: {C.load_average()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
