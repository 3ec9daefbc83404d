"""Guided colour: oldphoto's Deep Exemplar and SIGGRAPH17 next to the official code, same CPU, same weights.

    .venv/bin/python benchmarks/bench_colorize_guided.py --exemplar-repo DIR [--colorization-repo DIR] [--repeat 3]

``--exemplar-repo``: a checkout of zhangmozhe/Deep-Exemplar-based-Video-Colorization (its ``models/``
and ``utils/`` are imported; nothing of it is copied here). ``--colorization-repo``: a checkout of
richzhang/colorization (``colorizers/siggraph17.py``). Without them only oldphoto's figures print.

Both implementations get the same seeded weights (reference SPECs, seed 36) and the same inputs, and
run alternately in this one process (the machine may be shared: separate runs would compare the
neighbours). Timed: the network part at the official sizes, i.e. for Deep Exemplar Lab inputs at
216x384 -> ab (VGG19 of target and reference, WarpNet, correlation softmax, ColorVidNet; the
official ``frame_colorization`` with ``temperature=1e-10``) and for SIGGRAPH17 one 256x256 forward with
hints. Peak memory: the rise of the process's VmHWM (reset before each run) over its RSS before it.
The largest difference between the two outputs is printed so the comparison is of the same result.

Import shims for the official Deep Exemplar code, none on the computed path: ``torchvision`` (does
not import beside this torch), ``matplotlib``, ``skimage`` (only imported by ``utils/util.py``), and
``models.vgg19_gray`` (loads the unused 575 MB grey VGG at import; exemplar SPEC §2).
"""

from __future__ import annotations

import argparse
import sys
import time
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402


def _stub(name: str, **attrs) -> None:
    mod = types.ModuleType(name)
    mod.__dict__.update(attrs)
    sys.modules.setdefault(name, mod)


def official_exemplar(repo: Path):
    for name in ("torchvision", "torchvision.models", "torchvision.utils", "matplotlib", "matplotlib.pyplot",
                 "skimage", "skimage.color", "skimage.io"):
        _stub(name)
    sys.modules["torchvision"].models = sys.modules["torchvision.models"]
    sys.modules["torchvision"].utils = sys.modules["torchvision.utils"]
    _stub("models.vgg19_gray", vgg19_gray=object, vgg19_gray_new=object)
    sys.path.insert(0, str(repo))
    from models.ColorVidNet import ColorVidNet  # type: ignore[import-not-found]
    from models.FrameColor import frame_colorization  # type: ignore[import-not-found]
    from models.NonlocalNet import VGG19_pytorch, WarpNet  # type: ignore[import-not-found]

    from oldphoto.seeded import seeded_state_dict

    vgg, warp, colornet = VGG19_pytorch(), WarpNet(1), ColorVidNet(7)
    for net, comp in ((vgg, "exemplar_vgg19"), (warp, "exemplar_nonlocal"), (colornet, "exemplar_colornet")):
        net.load_state_dict(seeded_state_dict(comp, 36))
        net.eval()
    for p in vgg.parameters():
        p.requires_grad_(False)
    return vgg, warp, colornet, frame_colorization


def official_siggraph(repo: Path):
    sys.path.insert(0, str(repo))
    from colorizers.siggraph17 import SIGGRAPHGenerator  # type: ignore[import-not-found]

    from oldphoto.seeded import seeded_state_dict

    net = SIGGRAPHGenerator()
    net.load_state_dict(seeded_state_dict("siggraph17", 36))
    return net.eval()


def measure(fn) -> tuple[float, float, object]:
    before = C.proc_status_kib("VmRSS")
    C.reset_peak_rss()
    t0 = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t0
    return dt, (C.proc_status_kib("VmHWM") - before) / 1024, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--exemplar-repo", type=Path)
    ap.add_argument("--colorization-repo", type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    import numpy as np
    import torch

    from oldphoto.nets import instantiate
    from oldphoto.seeded import seeded_state_dict
    from oldphoto.stages import exemplar as X
    from oldphoto.stages import hints as H

    torch.set_grad_enabled(False)
    print(C.header())
    photo = np.asarray(C.test_photo(768, 432, "old/a.png").convert("L").convert("RGB"))
    ref = np.asarray(C.test_photo(768, 432, "old/b.png").convert("RGB"))
    ia = X.half(X.lab_tensor(photo))
    ib = X.half(X.lab_tensor(ref))
    nets = X.ExemplarNets(*(instantiate(c, seeded_state_dict(c, 36))
                            for c in ("exemplar_vgg19", "exemplar_nonlocal", "exemplar_colornet")))

    def ours_exemplar():
        ia_l = ia[:, 0:1]
        b = X.reference_features(nets, ib)
        a = nets.vgg(X.gray_to_vgg(ia_l))
        theta, phi = nets.warpnet(tuple(X.feature_normalize(a[k]) for k in ("r22", "r32", "r42", "r52")), b)
        return nets.colornet(X.colornet_input(ia_l, X.warp_colour(theta, phi, ib)))

    runs: dict[str, list] = {"exemplar oldphoto": [], "exemplar official": []}
    off = official_exemplar(args.exemplar_repo) if args.exemplar_repo else None

    def official_run():
        vgg, warp, colornet, frame_colorization = off
        feats_b = vgg(X.lab_to_vgg(ib), ["r12", "r22", "r32", "r42", "r52"], preprocess=True)
        ab, _, _ = frame_colorization(ia, ib, torch.zeros_like(ia), feats_b, vgg, warp, colornet,
                                      feature_noise=0, temperature=1e-10)
        return ab.detach()

    for _ in range(args.repeat):
        runs["exemplar oldphoto"].append(measure(ours_exemplar))
        if off:
            runs["exemplar official"].append(measure(official_run))

    sig = instantiate("siggraph17", seeded_state_dict("siggraph17", 36))
    l_orig, l_rs = H.preprocess(photo)
    pts = [H.GridHint(40, 60, (200, 40, 40)), H.GridHint(200, 120, (40, 90, 200), 3)]
    ab_hint, mask = H.encode_hints(l_rs, pts)
    sig_off = official_siggraph(args.colorization_repo) if args.colorization_repo else None
    runs.update({"siggraph17 oldphoto": [], "siggraph17 official": []})
    for _ in range(args.repeat):
        runs["siggraph17 oldphoto"].append(measure(lambda: sig(l_rs, ab_hint, mask)))
        if sig_off is not None:
            runs["siggraph17 official"].append(measure(lambda: sig_off(l_rs, ab_hint, mask).detach()))

    print(f"\n{'run':22s} {'best s':>8s} {'median s':>9s} {'peak MiB':>9s}")
    best = {}
    for name, rs in runs.items():
        if not rs:
            print(f"{name:22s} {'(not run: no checkout given)':>30s}")
            continue
        ts = sorted(r[0] for r in rs)
        best[name] = ts[0]
        print(f"{name:22s} {ts[0]:8.3f} {ts[len(ts) // 2]:9.3f} {max(r[1] for r in rs):9.1f}")
    for model in ("exemplar", "siggraph17"):
        o, f = runs[f"{model} oldphoto"], runs[f"{model} official"]
        if f:
            diff = float((o[-1][2] - f[-1][2]).abs().max())
            print(f"{model}: official / oldphoto time = {best[f'{model} official'] / best[f'{model} oldphoto']:.2f}x, "
                  f"max |ab difference| = {diff:.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
