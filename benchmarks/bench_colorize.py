"""Official DDColor pipeline vs oldphoto's colour stage: time per photo, peak memory, equal output.

Both sides get the same seeded weights (``ddcolor-seeded-v1``, seed 36: the official side loads them
from a ``{'params': state_dict}`` .pth exactly like the released files, oldphoto from safetensors) and
the same photo (an official test image resized to about 1 MP and 12 MP, grey), on this CPU. Each
(side, model, photo) runs in a fresh process: load, one warm-up call on a small photo, then ``--repeat``
timed calls on the photo (best and median reported; the speed-up is best over best, as a single call on a
shared 2-core machine swings by 2x); the peak is VmHWM above the RSS after the warm-up
(``_common.reset_peak_rss``), over all timed calls.
Outputs are compared afterwards: the official PNG result vs oldphoto's (max |diff| and the share of
differing values, the golden tolerance is <= 1 level on <= 1 %).

The official code is ``piddnad/DDColor`` (``ddcolor.ColorizationPipeline``, ``build_ddcolor_model``)
from a git directory (``--official``, e.g. the one the ``fetch`` tool brings), run unchanged; its
only shim is a stub ``torchvision`` (``basicsr.utils`` imports ``make_grid`` at import time; torchvision
does not import beside this torch). Nothing here asserts on time.

    python benchmarks/bench_colorize.py                       # tiny + large, 1 MP + 12 MP
    python benchmarks/bench_colorize.py --models tiny --mp 1 --repeat 1  # the quick version
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

# a checkout of github.com/piddnad/DDColor (or a bare git directory of it); --official or OLDPHOTO_DDCOLOR_REPO
DEFAULT_OFFICIAL = Path(os.environ.get("OLDPHOTO_DDCOLOR_REPO", "DDColor"))
COMPONENTS = {"tiny": "ddcolor_paper_tiny", "large": "ddcolor_modelscope"}
COLORIZE_MODEL = {"tiny": "tiny", "large": "modelscope"}  # oldphoto's colorize_model for each architecture
SIZES = {1: (1224, 816), 12: (4240, 2832)}  # ~1.0 MP and ~12.0 MP, 3:2
STUB = '''"""Stand-in for torchvision: the official code imports make_grid at import time, never calls it."""
'''
STUB_UTILS = '''def make_grid(*args, **kwargs):
    raise NotImplementedError("torchvision stand-in (benchmarks/bench_colorize.py)")
'''


def official_tree(git_dir: Path, out: Path) -> Path:
    """A checkout of the official repository's HEAD (git archive) plus the torchvision stand-in."""
    tree = out / "ddcolor_official"
    if not (tree / "ddcolor" / "pipeline.py").is_file():
        tree.mkdir(parents=True, exist_ok=True)
        tar = out / "official.tar"
        subprocess.run(["git", "--git-dir", str(git_dir), "archive", "-o", str(tar), "HEAD"], check=True)
        with tarfile.open(tar) as tf:
            tf.extractall(tree, filter="data")
        tar.unlink()
        stub = tree / "_stubs" / "torchvision"
        stub.mkdir(parents=True, exist_ok=True)
        (stub / "__init__.py").write_text(STUB)
        (stub / "utils.py").write_text(STUB_UTILS)
    return tree


def weights(cache: Path, model: str) -> tuple[Path, Path]:
    """The seeded weights as the official .pth and as oldphoto's safetensors folder (made once)."""
    import torch

    from oldphoto.seeded import seeded_state_dict, write_seeded_weights

    comp = COMPONENTS[model]
    cache.mkdir(parents=True, exist_ok=True)
    pth = cache / f"{comp}.pth"
    if not pth.is_file():
        torch.save({"params": seeded_state_dict(comp)}, pth)
    write_seeded_weights(cache, [comp])
    return pth, cache


def photo(mp: int):
    import numpy as np

    w, h = SIZES[mp]
    return np.asarray(_common.test_photo(w, h, "old/d.png").convert("L").convert("RGB"))


def worker(args: argparse.Namespace) -> None:
    """One side, one model, one photo, in this process: warm up, one timed call, print a JSON line."""
    import numpy as np
    import torch
    from PIL import Image

    torch.set_grad_enabled(False)
    rgb = photo(args.mp)
    small = np.ascontiguousarray(rgb[:200, :300])
    pth, wdir = weights(args.cache, args.model)
    if args.side == "official":
        tree = official_tree(args.official, args.cache)
        sys.path[:0] = [str(tree / "_stubs"), str(tree)]
        from ddcolor import ColorizationPipeline, DDColor, build_ddcolor_model

        net = build_ddcolor_model(DDColor, model_path=str(pth), input_size=args.size, model_size=args.model,
                                  device=torch.device("cpu"))
        pipe = ColorizationPipeline(net, input_size=args.size, device=torch.device("cpu"))
        run = lambda x: np.ascontiguousarray(pipe.process(np.ascontiguousarray(x[:, :, ::-1]))[:, :, ::-1])  # noqa: E731
    else:
        from oldphoto.pipeline import Restorer

        if args.size != 512:
            raise SystemExit("oldphoto runs DDColor at the official 512 px only")
        restorer = Restorer(device="cpu", weights_dir=wdir)
        run = lambda x: np.asarray(restorer.colorize(x, colorize_model=COLORIZE_MODEL[args.model]).image)  # noqa: E731
    run(small)  # warm: weights loaded, kernels chosen
    _common.reset_peak_rss()
    base = _common.proc_status_kib("VmRSS")
    times = []
    for _ in range(max(1, args.repeat)):
        t = time.perf_counter()
        out = run(rgb)
        times.append(time.perf_counter() - t)
    peak = _common.proc_status_kib("VmHWM") - base
    dest = args.cache / f"out_{args.side}_{args.model}_{args.mp}mp.png"
    Image.fromarray(out).save(dest)
    print(json.dumps({"seconds": min(times), "median_s": statistics.median(times), "peak_mb": peak / 1024,
                      "rss_mb": base / 1024, "out": str(dest)}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", choices=sorted(COMPONENTS), default=["tiny", "large"])
    p.add_argument("--mp", nargs="+", type=int, choices=sorted(SIZES), default=[1, 12], help="photo sizes (MP)")
    p.add_argument("--repeat", type=int, default=3, help="timed calls per side (best and median reported)")
    p.add_argument("--size", type=int, default=512, help="network input size (official default 512)")
    p.add_argument("--official", type=Path, default=DEFAULT_OFFICIAL, help="git directory of piddnad/DDColor")
    p.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "oldphoto-bench-colorize")
    p.add_argument("--worker", nargs=3, metavar=("SIDE", "MODEL", "MP"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        args.side, args.model, mp = args.worker
        args.mp = int(mp)
        worker(args)
        return
    if not (args.official / "HEAD").exists() and not (args.official / ".git").exists():
        raise SystemExit(f"--official {args.official}: not a git directory of piddnad/DDColor")
    import numpy as np
    from PIL import Image

    print(_common.header("cpu"))
    print(f"official: {args.official} (HEAD), photos: {', '.join(f'{m} MP {SIZES[m]}' for m in args.mp)}")
    rows = []
    for model in args.models:
        weights(args.cache, model)
        for mp in args.mp:
            res = {}
            for side in ("official", "oldphoto"):
                cmd = [sys.executable, __file__, "--worker", side, model, str(mp), "--size", str(args.size),
                       "--official", str(args.official), "--cache", str(args.cache),
                       "--repeat", str(args.repeat)]
                done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ})
                if done.returncode:
                    raise SystemExit(f"{side} {model} {mp} MP failed:\n{done.stderr[-3000:]}")
                res[side] = json.loads(done.stdout.strip().splitlines()[-1])
            a = np.asarray(Image.open(res["official"]["out"])).astype(int)
            b = np.asarray(Image.open(res["oldphoto"]["out"])).astype(int)
            d = np.abs(a - b)
            rows.append({
                "model": model, "photo": f"{mp} MP", "official_s": res["official"]["seconds"],
                "oldphoto_s": res["oldphoto"]["seconds"],
                "official_med": res["official"]["median_s"], "oldphoto_med": res["oldphoto"]["median_s"],
                "speedup": res["official"]["seconds"] / res["oldphoto"]["seconds"],
                "official_peak_mb": res["official"]["peak_mb"], "oldphoto_peak_mb": res["oldphoto"]["peak_mb"],
                "max_diff": int(d.max()), "differ_pct": f"{100 * float((d > 0).mean()):.3f}",
            })
            print(_common.fmt_table(rows[-1:], COLUMNS), flush=True)
    print()
    print(_common.fmt_table(rows, COLUMNS))
    print(f"load average at end: {_common.load_average()}")


COLUMNS = [
    ("model", "model"), ("photo", "photo"), ("official_s", "official best s"), ("official_med", "median"),
    ("oldphoto_s", "oldphoto best s"), ("oldphoto_med", "median"),
    ("speedup", "speed-up"), ("official_peak_mb", "official peak MB"), ("oldphoto_peak_mb", "oldphoto peak MB"),
    ("max_diff", "max |diff|"), ("differ_pct", "% values differ"),
]

if __name__ == "__main__":
    main()
