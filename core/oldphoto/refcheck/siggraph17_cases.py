"""Runner for the SIGGRAPH17 golden schema (``shared/reference/colorize/siggraph17/golden/index.json``).

Network cases feed the stored ``input_A`` (and hints) to the network and compare the output and every
stored block; end-to-end cases run oldphoto's own pre-processing, hint encoding, network and
post-processing from the input image file. Each array is compared at the case's own ``tolerance``
(the index's suggested acceptance); the PNG at <= 1 level on <= 0.5 % of the RGB values.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from ..stages import hints as H
from . import CaseResult, Check, Context, absent, compare_float, compare_u8, require_one, tensor_stats_check

DEFAULT_TOL = {"out_reg": 1e-5, "out": 1e-3, "out_ab": 1e-3, "ab_up": 1e-3, "rgb": 1e-4, "tens_orig_l": 1e-4,
               "tens_rs_l": 1e-4, "input_B": 1e-3, "mask_B": 0.0}
BLOCK_TOL = 1e-4
COMPONENT = "siggraph17"
SCHEME = "siggraph17-seeded-v1"


def handles(case: dict, index: dict) -> bool:
    return str(index.get("model", "")).startswith("siggraph17")


def handles_weight_check(data: dict) -> bool:
    return data.get("scheme") == SCHEME


def check_weights(data: dict, ctx: Context, label: str) -> CaseResult:
    return tensor_stats_check(data, ctx, label, {"siggraph17-df00044c": COMPONENT})


def _tol(case: dict, name: str) -> float:
    tol = case.get("tolerance", {}).get(name)
    return float(tol) if isinstance(tol, (int, float)) else DEFAULT_TOL.get(name, BLOCK_TOL)


def _t(ctx: Context, rel: str) -> torch.Tensor:
    return torch.from_numpy(ctx.load(rel))


def load_image(path) -> np.ndarray:
    """``load_img``: the file's array; a 2-D (grey) image tiled to 3 channels (§4.1)."""
    arr = np.asarray(Image.open(path))
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    return arr[..., :3]


def run_network(case: dict, ctx: Context) -> list[Check]:
    net = ctx.net(COMPONENT, int(case.get("weight_seed", ctx.index.get("weight_seed"))))
    ins = case["inputs"]
    outputs = case.get("outputs", {})
    require_one(outputs, "out", "out_reg")
    l = _t(ctx, ins["input_A"])
    ab = _t(ctx, ins["input_B"]) if "input_B" in ins else None
    mask = _t(ctx, ins["mask_B"]) if "mask_B" in ins else None
    cap: dict[str, torch.Tensor] = {}
    out = net(l, ab, mask, capture=cap)
    got = {"out": out, **cap}
    checks = []
    for name, rel in {**outputs, **case.get("intermediates", {})}.items():
        if name not in got:
            checks.append(Check(name, float("inf"), False, "no such output in oldphoto's network"))
            continue
        checks.append(compare_float(name, got[name], ctx.load(rel), _tol(case, name)))
    return checks


def run_end_to_end(case: dict, ctx: Context) -> list[Check]:
    net = ctx.net(COMPONENT, int(case.get("weight_seed", ctx.index.get("weight_seed"))))
    ins, outs = case["inputs"], case.get("outputs", {})
    require_one(outs, "png", "rgb", "out_ab")
    rgb_in = load_image(ctx.path(ins["image"]))
    l_orig, l_rs = H.preprocess(rgb_in)
    checks: list[Check] = []
    for name, got in (("tens_orig_l", l_orig), ("tens_rs_l", l_rs)):
        checks.append(compare_float(name, got, ctx.load(ins[name]), _tol(case, name)) if name in ins else absent(name))
    grid_hints = [H.GridHint(int(h["x"]), int(h["y"]), tuple(h["rgb"]), int(h.get("w", H.DEFAULT_HALF_WIDTH)))
                  for h in case.get("hints") or []]
    ab_in = mask = None
    if grid_hints:
        ab_in, mask = H.encode_hints(l_rs, grid_hints)
        for name, got in (("input_B", ab_in), ("mask_B", mask)):
            checks.append(compare_float(name, got, ctx.load(ins[name]), _tol(case, name)) if name in ins
                          else absent(name))
        for i, (h, rec) in enumerate(zip(grid_hints, case.get("hint_encoding") or [])):
            snapped = H.snap_colour(h.rgb, float(l_rs[0, 0, h.y, h.x]))
            want = np.asarray(rec["snapped_rgb"])
            err = float(np.abs(snapped.astype(int) - want).max())
            checks.append(Check(f"hint{i}_snapped_rgb", err, err == 0, f"{snapped.tolist()} vs {want.tolist()}"))
    out_ab = net(l_rs, ab_in, mask)
    ab_up = H.upsample_ab(out_ab, tuple(l_orig.shape[-2:]))
    rgb = H.to_rgb(l_orig, ab_up)
    for name, got in (("out_ab", out_ab), ("ab_up", ab_up), ("rgb", rgb)):
        checks.append(compare_float(name, got, ctx.load(outs[name]), _tol(case, name)) if name in outs else absent(name))
    if "png" in outs:
        ref = np.asarray(Image.open(ctx.path(outs["png"])).convert("RGB"))
        checks.append(compare_u8("png", H.to_u8(rgb), ref, max_diff=1, max_frac=0.005))
    else:
        checks.append(absent("png"))
    return checks


def run_case(case: dict, ctx: Context) -> list[Check]:
    if case.get("kind") == "network":
        return run_network(case, ctx)
    if case.get("kind") == "end_to_end":
        return run_end_to_end(case, ctx)
    raise ValueError(f"unknown case kind {case.get('kind')!r}")
