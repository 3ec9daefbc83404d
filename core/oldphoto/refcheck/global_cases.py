"""Runner for the Global golden schema (``shared/reference/global/golden/index.json``).

Tolerances follow the index's ``tolerance_summary``: float outputs atol 1e-3, scratch-mode
(non-local) outputs and everything after the NL block 2e-3, float16-stored files +1e-3; PNGs differ
by at most 1 on at most 1% of values; masks exact except pixels whose logit lies within 1e-4 of the
threshold logit.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image

from ..stages import detect, restore
from . import CaseResult, Check, Context, absent, compare_float, compare_u8, require_one, tensor_stats_check

ATOL = 1e-3
ATOL_NL = 2e-3
LOGIT_BAND = 1e-4
COMPONENT_FILES = {
    "detection_FT_Epoch_latest": "detection_unet",
    "VAE_A_quality_G": "vae_a_quality",
    "VAE_B_quality_G": "vae_b_quality",
    "VAE_B_scratch_G": "vae_b_scratch",
    "mapping_quality": "mapping_quality",
    "mapping_scratch": "mapping_scratch",
    "mapping_Patch_Attention": "mapping_patch_attention",
}
STAGES = ("detect_full_size", "detect_scale_256", "quality", "scratch", "hr")


def handles(case: dict, index: dict) -> bool:
    return case.get("kind") == "network" or (case.get("kind") == "stage" and case.get("stage") in STAGES)


def handles_weight_check(data: dict) -> bool:
    return isinstance(data.get("manifests"), dict) and set(data["manifests"]) <= set(COMPONENT_FILES)


def check_weights(data: dict, ctx: Context, label: str) -> CaseResult:
    """Per tensor: float64 sum, first and last element (exp() may differ by 1 ulp between CPU kernels)."""
    return tensor_stats_check(data, ctx, label, COMPONENT_FILES)


def _seed(case: dict, ctx: Context) -> int:
    return int(case.get("weight_seed", ctx.index.get("weight_seed")))


def _net_getter(ctx: Context, seed: int):
    return lambda component: ctx.net(component, seed)


def _capture(module: torch.nn.Module, names: list[str]) -> tuple[dict[str, torch.Tensor], list]:
    got: dict[str, torch.Tensor] = {}
    hooks = []
    for name in names:
        sub = module.get_submodule(name)
        hooks.append(sub.register_forward_hook(lambda _m, _i, out, _n=name: got.__setitem__(_n, out)))
    return got, hooks


def run_network(case: dict, ctx: Context) -> list[Check]:
    seed = _seed(case, ctx)
    x = torch.from_numpy(ctx.load(case["inputs"]["x"]))
    require_one(case.get("outputs", {}), "logits", "out")
    if case["id"].startswith("det_unet") or "logits" in case.get("outputs", {}):
        out = ctx.net("detection_unet", seed)(x)
        return [compare_float("logits", out, ctx.load(case["outputs"]["logits"]), ATOL)]
    mode = case["mode"]
    m = torch.from_numpy(ctx.load(case["inputs"]["mask"])) if "mask" in case["inputs"] else None
    mapping = ctx.net(restore.MAPPING[mode], seed)
    inter = case.get("intermediates", {})
    wanted = {
        "before_NL_out": "before_NL",
        "NL_out": "NL",
        **{f"NL_scale_{k}_out": f"NL_scale_{k}" for k in (1, 2, 3)},
        **{f"res_block_{k}_out": f"res_block_{k}" for k in (1, 2)},
    }
    names = [wanted[k] for k in inter if k in wanted]
    got, hooks = _capture(mapping, names)
    try:
        z = ctx.net("vae_a_quality", seed).encode(x)
        zm = mapping(z, m)
        out = ctx.net(restore.DECODER[mode], seed).decode(zm)
    finally:
        for h in hooks:
            h.remove()
    values = {"z_A": z, "z_mapped": zm, **{k: got[v] for k, v in wanted.items() if v in got}}
    checks = []
    after_nl = mode == "scratch"
    for key, rel in inter.items():
        if key not in values:
            checks.append(Check(key, float("inf"), False, "intermediate not produced"))
            continue
        tol = ATOL_NL if after_nl and key in ("NL_out", "z_mapped") else ATOL
        checks.append(compare_float(key, values[key], ctx.load(rel), tol))
    checks.append(compare_float("out", out, ctx.load(case["outputs"]["out"]), ATOL_NL if after_nl else ATOL))
    return checks


def _png(ctx: Context, rel: str) -> np.ndarray:
    with Image.open(ctx.path(rel)) as im:
        return np.asarray(im.convert("RGB"))


def run_detect(case: dict, ctx: Context) -> list[Check]:
    seed = _seed(case, ctx)
    photo = Image.open(ctx.path(case["inputs"]["photo"])).convert("RGB")
    resized = detect.resize_full_size(photo) if case["stage"] == "detect_full_size" else detect.resize_scale_256(photo)
    out = case["outputs"]
    require_one(out, "mask_png", "unet_logits")
    det = detect.detect(ctx.net("detection_unet", seed), resized)
    checks = [
        compare_u8("resized_input_png", np.asarray(resized), _png(ctx, out["resized_input_png"]), max_diff=0)
        if "resized_input_png" in out else absent("resized_input_png"),
        compare_float("unet_input", det.unet_input, ctx.load(out["unet_input"]), ATOL)
        if "unet_input" in out else absent("unet_input"),
        compare_float("unet_logits", det.logits, ctx.load(out["unet_logits"]), ATOL)
        if "unet_logits" in out else absent("unet_logits"),
    ]
    if "mask_png" not in out:
        return checks + [absent("mask_png")]
    ref_mask = _png(ctx, out["mask_png"])[..., 0] > 127
    # pixels whose logit is within LOGIT_BAND of the threshold may flip under any other implementation
    logit_thr = math.log(detect.THRESHOLD / (1 - detect.THRESHOLD))
    near = _near_threshold(det.logits, ref_mask.shape, logit_thr)
    diff = det.mask != ref_mask
    unexplained = int((diff & ~near).sum())
    checks.append(
        Check(
            "mask_png",
            float(unexplained),
            det.mask.shape == ref_mask.shape and unexplained == 0,
            f"{int(diff.sum())} pixels differ, {unexplained} not within {LOGIT_BAND:g} of the threshold logit",
        )
    )
    return checks


def _near_threshold(logits: torch.Tensor, shape: tuple[int, int], thr: float) -> np.ndarray:
    band = ((logits - thr).abs() < LOGIT_BAND).float()
    up = torch.nn.functional.interpolate(band, shape, mode="nearest")
    return up[0, 0].numpy() > 0


def run_restore(case: dict, ctx: Context) -> list[Check]:
    seed = _seed(case, ctx)
    mode = case["stage"]
    out = case["outputs"]
    if mode == "quality":
        photo = Image.open(ctx.path(case["inputs"]["photo"])).convert("RGB")
        img = restore.resize_quality(photo)
        mask = None
    else:
        img = Image.open(ctx.path(case["inputs"]["image"])).convert("RGB")
        mask = _png(ctx, case["inputs"]["mask"])[..., 0] > 127
    require_one(out, "raw_output", "restored_image_png")
    x, m = restore.prepare(img, mask, mode)
    raw = restore.run_networks(x, m, mode, _net_getter(ctx, seed))
    tol = ATOL_NL if mode == "scratch" else ATOL
    checks = []
    if "raw_output" in out:
        ref_raw = ctx.load(out["raw_output"])
        ref_raw = ref_raw.reshape(raw.shape) if ref_raw.size == raw.numel() else ref_raw
        checks.append(compare_float("raw_output", raw, ref_raw, tol))
    else:
        checks.append(absent("raw_output"))
    pngs = {"restored_image_png": lambda: restore.to_uint8(raw), "input_image_png": lambda: restore.to_uint8(x)}
    if mode == "quality":  # the official quality path saves the resized photo; the others get it as input
        pngs["origin_png"] = lambda: np.asarray(img)
    for name, ours in pngs.items():
        if name not in out:
            checks.append(absent(name))
            continue
        exact = name == "origin_png"
        checks.append(compare_u8(name, ours(), _png(ctx, out[name]), **({"max_diff": 0} if exact else {})))
    return checks


def run_case(case: dict, ctx: Context) -> list[Check]:
    if case.get("kind") == "network":
        return run_network(case, ctx)
    if case["stage"].startswith("detect"):
        return run_detect(case, ctx)
    return run_restore(case, ctx)
