"""Batch throughput: photos per minute and per-photo overhead of ``oldphoto batch``, local vs Ray.

    .venv/bin/python benchmarks/bench_batch.py [--ray-cpus 1 1] [--skip-ray]

The same 30 photos as the tests (tests/batch_helpers.py: 27 readable, 32-64 px, 3 broken), quality
mode, no faces, seeded weights. Baseline, measured in the same run: a warm ``Restorer`` restoring
the photos in a plain loop and encoding the PNGs, nothing else. The local engine runs warm (its
Restorer already loaded) and adds the tree walk, the manifest (fsync per line), atomic writes and
the progress bookkeeping. The Ray engine runs on a local cluster (``ray start``, ``--ray-cpus``
per node) that is already up: the first job also pays Ray's worker start, the second is what a
warm cluster costs per job (Ray Data starts the actors, and each loads the networks, every job).

On this 2-core machine Ray cannot be faster: the local engine already uses both cores (torch
threads), and Ray's actors split the same two cores while adding scheduling, serialization and
actor start-up. The figures say how much that costs; on a cluster the same job scales with nodes.
"""

from __future__ import annotations

import argparse
import functools
import io
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _common as C  # noqa: E402


def _run(engine, inp: Path, out: Path, options: dict, weights: dict):
    from oldphoto.batch import manifest, runner

    t = time.perf_counter()
    summary = runner.run(str(inp), str(out), engine=engine, options=options, weights=weights,
                         manifest_path=str(out / manifest.NAME), quiet=True, err=io.StringIO())
    return time.perf_counter() - t, summary


def _differ(a: Path, b: Path) -> str:
    """How two output trees differ: PNG bytes, and pixel levels where the bytes differ."""
    import numpy as np
    from PIL import Image

    names = sorted(p.relative_to(a).as_posix() for p in a.rglob("*.png"))
    diff = [r for r in names if (a / r).read_bytes() != (b / r).read_bytes()]
    worst = 0
    for r in diff:
        with Image.open(a / r) as x, Image.open(b / r) as y:
            worst = max(worst, int(np.abs(np.asarray(x, np.int16) - np.asarray(y, np.int16)).max()))
    return f"{len(names) - len(diff)}/{len(names)} PNGs byte-identical" + (f", others within {worst} level(s)" if diff else "")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ray-cpus", type=int, nargs="+", default=[1, 1], help="CPUs of each Ray node (head first)")
    p.add_argument("--threads", type=int, nargs="+", default=None,
                   help="torch threads for the baseline and the local engine, each measured (default: torch's)")
    p.add_argument("--skip-ray", action="store_true")
    p.add_argument("--weights-dir", type=Path, default=None)
    args = p.parse_args(argv)

    from PIL import Image

    from oldphoto.batch import local, plan
    from oldphoto.batch.work import weights_identity
    from oldphoto.pipeline import Restorer
    from tests.batch_helpers import GOOD, make_tree

    print(C.header("cpu"))
    wdir = C.seeded_weights_dir(args.weights_dir)
    print(f"weights: seeded, {wdir}")
    tmp = Path(tempfile.mkdtemp(prefix="bench_batch"))
    inp = tmp / "in"
    make_tree(inp)
    n = len(plan.find_jobs(str(inp), str(tmp / "x")))
    print(f"photos: {n} ({len(GOOD)} readable, 32-64 px), quality mode, no faces\n")

    kw = {"scratches": "none", "hr": False, "faces": False}
    options = {**kw, "exact_convs": False, "half": False}
    restorer = Restorer(device="cpu", weights_dir=wdir)
    weights = weights_identity(restorer, kw)
    restorer.restore(Image.new("RGB", (48, 48), (90, 90, 90)), **kw)  # warm: networks loaded, allocator primed

    import torch

    rows = []
    per_base: dict[int, float] = {}
    for threads in args.threads or [torch.get_num_threads()]:
        torch.set_num_threads(threads)
        t = time.perf_counter()
        for rel in GOOD:
            res = restorer.restore(inp / rel, **kw)
            res.image.save(io.BytesIO(), format="PNG")
        base = time.perf_counter() - t
        per_base[threads] = base / len(GOOD)
        rows.append((f"baseline: Restorer loop, {threads} thread(s), 27 photos", base, len(GOOD), threads))
        engine = functools.partial(local.records, make_restorer=lambda: restorer, restore_kwargs=kw,
                                   options=options, weights=weights)
        wall, s = _run(engine, inp, tmp / f"out_local_{threads}", options, weights)
        assert s.restored == len(GOOD), s
        rows.append((f"local engine, {threads} thread(s), 30 photos", wall, n, threads))

    if not args.skip_ray:
        from oldphoto.batch import ray_engine
        from oldphoto.cli.restore import restorer_from_args
        from tests.batch_helpers import RayCluster

        t = time.perf_counter()
        cluster = RayCluster(cpus=args.ray_cpus)
        up = time.perf_counter() - t
        os.environ.update({k: cluster.env[k] for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")})
        try:
            settings = argparse.Namespace(device="cpu", weights_dir=wdir, exact_convs=False, half=False)
            engine = functools.partial(ray_engine.records, make_restorer=functools.partial(restorer_from_args, settings),
                                       restore_kwargs=kw, options=options, weights=weights, address=cluster.address)
            for label in ("first job on the cluster", "next job (warm cluster)"):
                out = tmp / f"out_ray_{len(rows)}"
                wall, s = _run(engine, inp, out, options, weights)
                assert s.restored == len(GOOD), s
                rows.append((f"ray, nodes of {args.ray_cpus} CPU(s): {label}", wall, n, 1))
                for threads in per_base:
                    print(f"  ray {label} vs local engine at {threads} thread(s): {_differ(out, tmp / f'out_local_{threads}')}")
        finally:
            cluster.stop()
        print(f"  (cluster start, not counted below: {up:.1f} s)")

    print(f"\n{'run':58s} {'wall s':>7s} {'photos/min':>10s} {'overhead/photo':>15s}")
    for label, wall, count, threads in rows:
        over = (wall / count - per_base.get(threads, min(per_base.values()))) * 1000
        print(f"{label:58s} {wall:7.2f} {60 * count / wall:10.1f} {over:12.0f} ms")
    print("\noverhead/photo: wall time per photo minus the baseline's time per readable photo at the same thread"
          " count\n(Ray rows: against the 1-thread baseline when measured, each actor running 1 thread).\n"
          "On this 2-core machine Ray can only add overhead to a local engine that uses both cores well; see the"
          " docstring.")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
