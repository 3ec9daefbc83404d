"""Runner for the DDColor golden schema (``shared/reference/colorize/ddcolor/golden/index.json``).

Case kinds: ``network`` (DDColor called on a given grey RGB input; every intermediate the case holds
is compared block by block, each block fed from the golden input of that block where the set has it)
and ``end_to_end`` (the photo through ``oldphoto.imageio`` and ``oldphoto.stages.colorize`` as the
Restorer runs it, every pipeline array compared, then the PNG). Tolerances are the case's own
``tolerance`` entries; the defaults below (SPEC §10) apply where a case leaves one out.
"""

from __future__ import annotations

import re

import numpy as np
import torch
from PIL import Image

from ..stages import colorize
from . import CaseResult, Check, Context, absent, compare_float, compare_u8, require_one

DEFAULT_TOL = {
    "x_norm": 1e-5, "net_input": 1e-5, "orig_L": 1e-5, "resized_L": 1e-5,
    "cd_color_embed": 5e-4, "out_feat": 2e-3, "ab": 2e-3, "ab_net": 2e-3, "ab_up": 2e-3, "bgr_float": 1e-4,
}
FEATURE_TOL = 1e-4
FILE_COMPONENTS = {"ddcolor_paper_tiny": "ddcolor_paper_tiny", "ddcolor_modelscope": "ddcolor_modelscope",
                   "ddcolor_paper": "ddcolor_paper", "ddcolor_artistic": "ddcolor_artistic"}


def handles(case: dict, index: dict) -> bool:
    return index.get("model") == "ddcolor" and case.get("kind") in ("network", "end_to_end")


def handles_weight_check(data: dict) -> bool:
    return data.get("scheme") == "ddcolor-seeded-v1"


def _component(case: dict) -> str:
    text = str(case.get("network") or case.get("model") or "")
    m = re.search(r"file key '([A-Za-z0-9_]+)\.pth'", text)
    if m and m.group(1) in FILE_COMPONENTS:
        return FILE_COMPONENTS[m.group(1)]
    if "DDColor-T" in text:
        return "ddcolor_paper_tiny"
    if "DDColor-L" in text:
        return "ddcolor_modelscope"
    raise ValueError(f"cannot tell which DDColor model the case uses from {text!r}")


def _tol(case: dict, name: str) -> float:
    v = case.get("tolerance", {}).get(name)
    if isinstance(v, (int, float)):
        return float(v)
    return DEFAULT_TOL.get(name, FEATURE_TOL)


def check_weights(data: dict, ctx: Context, label: str) -> CaseResult:
    """sha256 of all tensors per manifest, and per tensor sum / first / last (SPEC §8)."""
    from ..seeded_color import state_dict_sha256
    from ..weights.manifests import load_manifest

    res = CaseResult(f"weights:{label}")
    seed = int(data["seed"])
    for file, info in data["manifests"].items():
        comp = FILE_COMPONENTS.get(file.rsplit(".", 1)[0])
        if comp is None:
            res.checks.append(Check(file, float("inf"), False, "no component for this file"))
            continue
        sd = ctx.state_dict(comp, seed)
        got = state_dict_sha256(load_manifest(comp), sd)
        want = info.get("sha256_all")
        res.checks.append(Check(f"{file} sha256_all", float(got != want), got == want, got[:16]))
        worst = 0.0
        for name, total, first, last in info.get("tensors", []):
            t = sd[name].double().flatten()
            for g, w in ((t.sum().item(), total), (t[0].item(), first), (t[-1].item(), last)):
                worst = max(worst, abs(g - w) / max(1.0, abs(w)))
        res.checks.append(Check(f"{file} per tensor", worst, worst <= 1e-6, f"max rel. deviation {worst:.2g}"))
    return res


def _seed(case: dict, ctx: Context) -> int:
    return int(case.get("weight_seed", ctx.index.get("weight_seed", 36)))


def run_case(case: dict, ctx: Context) -> list[Check]:
    if case["kind"] == "network":
        return _run_network(case, ctx)
    return _run_e2e(case, ctx)


def _run_network(case: dict, ctx: Context) -> list[Check]:
    outs = case.get("outputs", {})
    inter = case.get("intermediates", {})
    require_one(outs, "ab")
    net = ctx.net(_component(case), _seed(case, ctx))
    x = torch.from_numpy(ctx.load(case["inputs"]["x"]))
    ref = {k: ctx.load(v) for k, v in {**inter, **outs}.items()}
    checks: list[Check] = []

    def cmp(name: str, got) -> None:
        if name in ref:
            checks.append(compare_float(name, got, ref[name], _tol(case, name)))
        else:
            checks.append(absent(name))

    inner = getattr(net, "_net", net)  # OnDevice: blocks are called on the CPU-side copy below
    xn = inner.normalize(x)
    cmp("x_norm", xn)
    feats = inner.encoder(xn)
    for i, f in enumerate(feats):
        cmp(f"enc_norm{i}", f)
    # each decoder block from golden inputs where the set has them, so a block is judged alone
    g = lambda name, mine: torch.from_numpy(ref[name]) if name in ref else mine  # noqa: E731
    fs = [g(f"enc_norm{i}", feats[i]) for i in range(4)]
    dec = inner.decoder
    out0 = dec.layers[0](fs[3], fs[2])
    cmp("dec_out0", out0)
    out1 = dec.layers[1](g("dec_out0", out0), fs[1])
    cmp("dec_out1", out1)
    out2 = dec.layers[2](g("dec_out1", out1), fs[0])
    cmp("dec_out2", out2)
    out3 = dec.last_shuf(g("dec_out2", out2))
    cmp("dec_out3", out3)
    layers: list[torch.Tensor] = []
    levels = [g("dec_out0", out0), g("dec_out1", out1), g("dec_out2", out2)]
    queries = dec.color_decoder.queries(levels, layers)
    if "cd_layer_outputs" in ref:
        cmp("cd_layer_outputs", torch.stack([t[:, 0] for t in layers]))
    else:
        checks.append(absent("cd_layer_outputs"))
    cmp("cd_queries", queries)
    embed = dec.color_decoder.color_embed(g("cd_queries", queries))
    cmp("cd_color_embed", embed)
    out_feat = torch.einsum("bqc,bchw->bqhw", g("cd_color_embed", embed), g("dec_out3", out3))
    cmp("out_feat", out_feat)
    cmp("ab", net(x))  # the whole network, end to end
    return checks


def _run_e2e(case: dict, ctx: Context) -> list[Check]:
    from .. import imageio

    outs = case.get("outputs", {})
    inter = case.get("intermediates", {})
    require_one(outs, "output_png", "bgr_float")
    net = ctx.net(_component(case), _seed(case, ctx))
    size = int(case["input_size"])
    rgb = np.asarray(imageio.load_rgb(ctx.path(case["inputs"]["photo"])))
    checks: list[Check] = []

    def cmp(name: str, got) -> None:
        if name in inter or name in outs:
            checks.append(compare_float(name, got, ctx.load({**inter, **outs}[name]), _tol(case, name)))
        else:
            checks.append(absent(name))

    cmp("orig_L", colorize.lightness(rgb)[:, :, None])
    x = colorize.network_input(rgb, size)
    cmp("net_input", x)
    if "resized_L" in inter:
        import cv2

        resized = cv2.resize(colorize.to_float(rgb), (size, size))
        cmp("resized_L", cv2.cvtColor(resized, cv2.COLOR_RGB2Lab)[:, :, :1])
    ab = net(torch.from_numpy(x))[0].numpy()
    cmp("ab_net", ab[None])
    h, w = rgb.shape[:2]
    cmp("ab_up", colorize.upsample_ab(ab, h, w))
    out = colorize.compose(rgb, ab)
    if "bgr_float" in outs:
        import cv2

        lab = np.concatenate([colorize.lightness(rgb)[:, :, None], colorize.upsample_ab(ab, h, w)], axis=2)
        cmp("bgr_float", cv2.cvtColor(lab, cv2.COLOR_Lab2BGR))
    if "output_png" in outs:
        ref = np.asarray(Image.open(ctx.path(outs["output_png"])).convert("RGB"))
        checks.append(compare_u8("output_png", out, ref))
    return checks
