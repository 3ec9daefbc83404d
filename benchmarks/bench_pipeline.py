"""Warm pipeline benchmark: per-network forward time, whole-pipeline time, overhead and peak memory.

    .venv/bin/python benchmarks/bench_pipeline.py                      # 256, 512, 1024 x 3 modes x faces on/off
    .venv/bin/python benchmarks/bench_pipeline.py --sizes 256 512 --modes scratch --faces off
    .venv/bin/python benchmarks/bench_pipeline.py --sizes 2048 --modes scratch --faces off   # opt-in size

Each configuration (size x mode x faces) runs in its own child process, so that its peak RSS is its
own: the child loads the networks it needs (timed per component), warms them up on a small photo,
resets the peak-RSS counter, then restores the benchmark photo ``--repeat`` times through
``Restorer.restore`` (the public API, unchanged). Network calls are timed by wrapping the loaded
instances' ``forward`` / ``encode`` / ``decode``; the pipeline overhead is the pipeline's wall time
minus the sum of those calls (image conversion, resizing, masks, face alignment and blending).

Weights: the seeded weights (same shapes and therefore the same cost as the real checkpoints), written
once to ``--weights-dir``. Scratch masks: ``--mask detect`` (default) runs the U-Net as the CLI does;
``--mask synthetic`` passes a fixed ~2% crease mask instead. Faces: the seeded RetinaFace's random head
"finds" ~13k faces, so by default its post-processing is replaced by one synthetic face (the network
still runs), so that alignment, one generator call and blending are measured as for a portrait
(``--no-inject-face`` keeps the plain detector; expect minutes of NMS and thousands of faces).
Memory allocator: by default the child tunes malloc as the web app and the GIMP worker do
(``keep_freed_memory_for_reuse(trim_after_jobs=True)``: freed layer outputs are reused within a photo
and given back after it); ``--malloc default`` keeps glibc's defaults (``Restorer(reuse_memory=False)``:
every big layer output is then zero-filled afresh, ~1/3 slower on the CPU; a plain-Python Restorer
now tunes malloc per job by itself, see bench_library_malloc.py).
Timings on a shared machine are noisy; the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402

MODES = ("quality", "scratch", "hr")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024], help="square photo sides (px)")
    p.add_argument("--include-2048", action="store_true", help="also run 2048 px (slow on CPU)")
    p.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    p.add_argument("--faces", nargs="+", choices=["off", "on"], default=["off", "on"])
    p.add_argument("--repeat", type=int, default=1, help="timed runs per configuration (best is reported)")
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads in the child (0: default)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--mask", choices=["detect", "synthetic"], default="detect")
    p.add_argument("--no-inject-face", dest="inject_face", action="store_false")
    p.add_argument("--weights-dir", type=Path, default=None, help="seeded weights folder (made if missing)")
    p.add_argument("--json", type=Path, help="also write all results to this file")
    p.add_argument("--exact-convs", action="store_true", help="direct convolutions instead of Winograd (CPU)")
    p.add_argument("--half", action="store_true", help="Restorer(half=True): float16 networks (meant for CUDA)")
    p.add_argument("--malloc", choices=["server", "default"], default="server",
                   help="server: malloc tuned as in the web app / GIMP worker (default); default: glibc's defaults")
    p.add_argument("--child", help=argparse.SUPPRESS)  # JSON config: run one configuration and print RESULT
    return p.parse_args(argv)


# -- child: one configuration ----------------------------------------------------------------------
def inject_face_if_none() -> None:
    """Make face detection return one plausible face (centre, a third of the photo's short side).

    The seeded RetinaFace is random: its head scores ~13k priors above the threshold, and greedy NMS
    over them takes ~20 s, a cost real weights never show. So the detector network still runs on
    the real input (its cost is real), but its post-processing is replaced by one fixed face, so
    that alignment, the generator and blending run once, as for a single-person portrait.
    """
    import numpy as np

    from oldphoto.stages import face_detect

    def one_face(loc: Any, conf: Any, landmarks: Any, *, photo_size: tuple[int, int], **kw: Any) -> list[Any]:
        h, w = photo_size
        f = min(h, w) / 3
        cx, cy = w / 2, h / 2
        lm = np.array(
            [[cx - 0.18 * f, cy - 0.1 * f], [cx + 0.18 * f, cy - 0.1 * f], [cx, cy + 0.05 * f],
             [cx - 0.15 * f, cy + 0.22 * f], [cx + 0.15 * f, cy + 0.22 * f]]
        )
        return [face_detect.Detection(box=(cx - f / 2, cy - f / 2, cx + f / 2, cy + f / 2), score=1.0, landmarks=lm)]

    face_detect.postprocess = one_face


def run_child(cfg: dict[str, Any]) -> dict[str, Any]:
    import torch

    from oldphoto import Restorer
    from oldphoto.memory import keep_freed_memory_for_reuse

    if cfg.get("malloc", "server") == "server":
        keep_freed_memory_for_reuse(trim_after_jobs=True)
    if cfg["threads"]:
        torch.set_num_threads(cfg["threads"])
    cuda = cfg["device"].startswith("cuda")
    sync = torch.cuda.synchronize if cuda else None
    size, mode, faces = cfg["size"], cfg["mode"], cfg["faces"]
    use_mask = mode != "quality"
    hr = mode == "hr"
    loader = None
    if cfg["weights_dir"] is None:  # no safetensors module (a bare GPU image): the same seeded tensors in memory
        from oldphoto.seeded import seeded_state_dict

        loader = seeded_state_dict
    r = Restorer(device=cfg["device"], weights_dir=cfg["weights_dir"], weights_loader=loader,
                 exact_convs=cfg.get("exact_convs", False), half=cfg.get("half", False),
                 reuse_memory=cfg.get("malloc", "server") == "server")

    load: dict[str, float] = {}
    for comp in r.components_for(scratches=use_mask and cfg["mask"] == "detect", hr=hr, faces=faces):
        t = time.perf_counter()
        r.net(comp)
        load[comp] = time.perf_counter() - t
    if faces and cfg["inject_face"]:
        inject_face_if_none()

    photo = C.test_photo(size, size)
    mask = C.synthetic_mask(size, size) if use_mask and cfg["mask"] == "synthetic" else None
    kwargs: dict[str, Any] = {"hr": hr, "faces": faces}
    if use_mask:
        kwargs.update({"mask": mask} if mask is not None else {"scratches": "auto"})

    # warm-up on a small photo: first-call costs (allocator, oneDNN primitives, lazy imports)
    small = C.test_photo(128, 128)
    warm_kwargs = dict(kwargs)
    if mask is not None:
        warm_kwargs["mask"] = C.synthetic_mask(128, 128)
    r.restore(small, **warm_kwargs)

    timer = C.NetTimer(sync)
    timer.install(r._nets)
    rss_before = C.proc_status_kib("VmRSS")
    load_peak = C.proc_status_kib("VmHWM")  # loading + warm-up, before the reset below
    C.reset_peak_rss()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    best: dict[str, Any] | None = None
    for _ in range(cfg["repeat"]):
        timer.reset()
        t, cpu = time.perf_counter(), time.process_time()
        res = r.restore(photo, **kwargs)
        if sync:
            sync()
        total = time.perf_counter() - t
        cpu = time.process_time() - cpu
        if best is None or total < best["total_s"]:
            best = {
                "total_s": total,
                "cpu_s": cpu,
                "nets": dict(timer.seconds),
                "calls": dict(timer.calls),
                "stages": dict(res.timings),
                "faces_found": len(res.faces),
                "mask_frac": None if res.mask is None else float(res.mask.mean()),
            }
    assert best is not None
    out = {
        **{k: cfg[k] for k in ("size", "mode", "faces")},
        **best,
        "nets_s": sum(best["nets"].values()),
        "load": load,
        "rss_before_mb": rss_before / 1024,
        "peak_rss_mb": C.proc_status_kib("VmHWM") / 1024,
        "load_peak_mb": load_peak / 1024,
        "threads": torch.get_num_threads(),
    }
    if cuda:
        out["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


# -- parent: configurations in children, tables --------------------------------------------------
def run_config(args: argparse.Namespace, size: int, mode: str, faces: bool, weights: Path | None) -> dict[str, Any]:
    cfg = {
        "size": size, "mode": mode, "faces": faces, "repeat": args.repeat, "threads": args.threads, "exact_convs": args.exact_convs,
        "device": args.device, "mask": args.mask, "inject_face": args.inject_face, "weights_dir": None if weights is None else str(weights), "malloc": args.malloc, "half": args.half,
    }
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(cfg)], capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - t
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            res = json.loads(line[len("RESULT "):])
            res["child_wall_s"] = wall
            return res
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    return {"size": size, "mode": mode, "faces": faces, "error": " / ".join(tail) or f"exit {proc.returncode}"}


def row(res: dict[str, Any]) -> dict[str, Any]:
    out = {k: res.get(k) for k in ("size", "mode")}
    out["faces"] = "on" if res.get("faces") else "off"
    if "error" in res:
        out["total_s"] = "ERROR: " + res["error"][:120]
        return out
    nets = res["nets"]
    out.update(
        total_s=res["total_s"],
        cpu_s=res.get("cpu_s"),
        nets_s=res["nets_s"],
        overhead=f"{100 * (res['total_s'] - res['nets_s']) / res['nets_s']:.1f}%",
        breakdown=", ".join(f"{k} {v:.2f}" for k, v in nets.items()),
        peak_mb=f"{res['peak_rss_mb']:.0f}",
        base_mb=f"{res['rss_before_mb']:.0f}",
        run_mb=f"{res['peak_rss_mb'] - res['rss_before_mb']:.0f}",
        load_mb=f"{res['load_peak_mb']:.0f}",
        nfaces=res["faces_found"],
        mask=None if res["mask_frac"] is None else f"{100 * res['mask_frac']:.1f}%",
    )
    if "cuda_peak_mb" in res:
        out["cuda_mb"] = f"{res['cuda_peak_mb']:.0f}"
    return out


COLUMNS = [
    ("size", "size"), ("mode", "mode"), ("faces", "faces"), ("total_s", "pipeline s"), ("cpu_s", "CPU s"), ("nets_s", "nets s"),
    ("overhead", "overhead"), ("peak_mb", "peak RSS MB"), ("base_mb", "RSS before MB"),
    ("run_mb", "run +MB"), ("load_mb", "load+warm-up peak MB"), ("nfaces", "faces"), ("mask", "mask"),
    ("breakdown", "per-network forward s"),
]


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.child:
        print("RESULT " + json.dumps(run_child(json.loads(args.child))), flush=True)
        return 0
    print(C.header(args.device))
    sizes = list(args.sizes) + ([2048] if args.include_2048 and 2048 not in args.sizes else [])
    try:
        weights: Path | None = C.seeded_weights_dir(args.weights_dir)
    except ImportError:  # safetensors missing (e.g. a bare PyTorch image): generate them in each child
        weights = None
    print(f"weights: seeded, {weights or 'in memory (no safetensors module)'}; masks: {args.mask}; inject face: {args.inject_face}; repeat: {args.repeat}; convs: {'direct' if args.exact_convs else 'winograd (CPU)'}; malloc: {args.malloc}; half: {args.half}")
    print("peak RSS = VmHWM of the child during the timed runs (reset after load + warm-up);")
    print("run +MB = peak minus RSS before the run; load+warm-up peak = VmHWM before the reset.\n", flush=True)
    results: list[dict[str, Any]] = []
    for size in sizes:
        for mode in args.modes:
            for faces in args.faces:
                res = run_config(args, size, mode, faces == "on", weights)
                results.append(res)
                print(f"  done {size} {mode} faces={faces}: "
                      + (res.get("error") or f"{res['total_s']:.2f} s, peak {res['peak_rss_mb']:.0f} MB")
                      + (f", CUDA peak {res['cuda_peak_mb']:.0f} MB" if "cuda_peak_mb" in res else "")
                      + f"  (load {C.load_average()})", flush=True)
                if args.json:  # after every configuration: a run cut short by a time limit keeps its results
                    args.json.write_text(json.dumps(results, indent=1))
    cols = COLUMNS + ([("cuda_mb", "CUDA peak MB")] if args.device.startswith("cuda") else [])
    print()
    print(C.fmt_table([row(r) for r in results], cols))
    loads: dict[str, float] = {}
    for r in results:
        for comp, s in r.get("load", {}).items():
            loads[comp] = min(s, loads.get(comp, s))
    if loads:
        print("\nModel load (build + safetensors + load_state_dict, best over children):")
        print(C.fmt_table([{"comp": k, "s": v} for k, v in sorted(loads.items())], [("comp", "component"), ("s", "s")]))
    print(f"\nload average at end: {C.load_average()}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
