"""Runner for the face golden schema (``shared/reference/face/golden/index.json``).

Case kinds: ``gen256_*`` / ``gen512_*`` (SPADE generator with seeded weights), ``warpback*`` (stage 2
alignment + stage 4 blending with given restored faces, every per-face intermediate compared) and
``e2e*`` (stage 2 -> our generator -> stage 4 chained). Acceptance numbers are read from each case's
``tolerance.recommended_acceptance`` text (the reference states them in words); the defaults below
are the values that text contained when this runner was written and are used only if a phrase
cannot be parsed.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np
import torch

from ..nets.face_gen import to_generator_input, to_uint8
from ..seeded_face import state_dict_sha256, tensor_sha256
from ..stages import align, warpback
from ..weights.manifests import load_manifest
from . import CaseResult, Check, Context, absent, compare_float, compare_u8, require_one

MANIFEST_COMPONENTS = {"Setting_9_epoch_100": "face_gen_256", "FaceSR_512": "face_gen_512"}
FACE_STAGES = ("stage3_face_enhancement", "stage2_alignment", "stage4_warp_back_blend")
_NUM = r"([0-9.]+(?:e-?[0-9]+)?)"


def handles(case: dict, index: dict) -> bool:
    stage = str(case.get("stage", ""))
    return any(s in stage for s in FACE_STAGES)


def _find(pattern: str, text: object, default: tuple[float, ...]) -> tuple[float, ...]:
    m = re.search(pattern, str(text))
    return tuple(float(g) for g in m.groups()) if m else default


def generator_tolerances(case: dict) -> dict[str, tuple[float, ...]]:
    acc = case.get("tolerance", {}).get("recommended_acceptance", {})
    return {
        "output": _find(rf"max abs diff <= {_NUM} and mean abs diff <= {_NUM}", acc.get("output"), (5e-5, 2e-6)),
        "output_u8": _find(rf"<= {_NUM} everywhere and <= {_NUM}%", acc.get("output_u8"), (1, 0.05)),
        "activations": _find(rf"<= {_NUM} \* \(1 \+ absmax", acc.get("activations"), (1e-4,)),
    }


def stage_tolerances(case: dict) -> dict[str, tuple[float, ...]]:
    acc = case.get("tolerance", {}).get("recommended_acceptance", {})
    u8 = next((v for k, v in acc.items() if k.startswith("uint8")), "")
    fl = next((v for k, v in acc.items() if k.startswith("float")), "")
    return {
        "similarity": _find(rf"max abs <= {_NUM}", acc.get("similarity params"), (1e-6,)),
        "uint8": _find(rf"\|d\| <= {_NUM} on <= {_NUM}%", u8, (1, 0.1)),
        "float": _find(rf"max abs <= {_NUM}", fl, (1e-3,)),
    }


# -- weights ---------------------------------------------------------------------------------------
def check_weights(data: dict, ctx: Context, label: str) -> CaseResult:
    """Per-tensor sha256 and the concatenated sha256 of scheme ``bopbtl-face-seeded-v1`` weights."""
    res = CaseResult(f"weights:{label}")
    if data.get("scheme") != "bopbtl-face-seeded-v1":
        res.error = f"unknown weights scheme {data.get('scheme')!r}"
        return res
    seed = int(data["seed"])
    manifest = load_manifest("face_gen_256")
    sd = ctx.state_dict("face_gen_256", seed)
    bad = [t["name"] for t in data["tensors"] if tensor_sha256(sd[t["name"]]) != t["sha256"]]
    res.checks.append(
        Check("per-tensor sha256", float(len(bad)), not bad and len(data["tensors"]) == len(sd),
              f"{len(bad)} of {len(data['tensors'])} differ" + (f" (first {bad[0]})" if bad else ""))
    )
    want = data["sha256_all_tensors_concatenated_in_manifest_order"]
    got = state_dict_sha256(manifest, sd)
    res.checks.append(Check("sha256 all tensors", float(got != want), got == want, got[:16]))
    same = load_manifest("face_gen_512").tensors == manifest.tensors
    res.checks.append(Check("FaceSR_512 tensor list", float(not same), same, "identical to Setting_9_epoch_100"))
    return res


# -- generator -------------------------------------------------------------------------------------
_OUT_CACHE: dict[tuple[str, int, str], torch.Tensor] = {}
_ACT_CACHE: dict[tuple[str, int, str], dict[str, torch.Tensor]] = {}


def _component(case: dict) -> str:
    stem = str(case["checkpoint_manifest"]).rsplit("/", 1)[-1].removesuffix(".json")
    return MANIFEST_COMPONENTS[stem]


def run_generator(ctx: Context, component: str, seed: int, crop: np.ndarray, *, activations: bool = True):
    """Tanh output and block activations of the seeded generator for one crop.

    Outputs are cached for the whole run (the e2e cases reuse the generator cases' crops; a 512 pass
    costs ~25 s on 2 CPU cores); activations only for the latest crop, since they are large.
    """
    key = (component, seed, hashlib.sha256(crop.tobytes()).hexdigest())
    if key not in _OUT_CACHE or (activations and key not in _ACT_CACHE):
        net = ctx.net(component, seed)
        acts: dict[str, torch.Tensor] = {}
        with torch.inference_mode():
            _OUT_CACHE[key] = net.run(to_generator_input(torch.from_numpy(crop)[None]), acts)
        _ACT_CACHE.clear()
        _ACT_CACHE[key] = acts
    return _OUT_CACHE[key], _ACT_CACHE.get(key, {})


def run_generator_case(case: dict, ctx: Context) -> list[Check]:
    tol = generator_tolerances(case)
    seed = int(case["weights"]["seed"])
    crop = ctx.load(case["inputs"]["input_u8"]["file"])
    outs = case["outputs"]
    require_one(outs, "output", "output_u8")
    checks: list[Check] = []
    x = to_generator_input(torch.from_numpy(crop)[None])
    if "input" in case["inputs"]:
        checks.append(compare_float("input", x.numpy(), ctx.load(case["inputs"]["input"]["file"]), 0.0))
    out, acts = run_generator(ctx, _component(case), seed, crop, activations="activations_first_channels" in outs)
    if "output" in outs:
        ref = ctx.load(outs["output"]["file"])
        d = np.abs(out.numpy().astype(np.float64) - ref)
        max_tol, mean_tol = tol["output"]
        checks.append(Check("output", float(d.max()), bool(d.max() <= max_tol and d.mean() <= mean_tol),
                            f"max {d.max():.3g} (<= {max_tol:g}), mean {d.mean():.3g} (<= {mean_tol:g})"))
    else:
        checks.append(absent("output"))
    if "output_u8" in outs:
        max_d, pct = tol["output_u8"]
        checks.append(compare_u8("output_u8", to_uint8(out)[0].numpy(), ctx.load(outs["output_u8"]["file"]),
                                 max_diff=int(max_d), max_frac=pct / 100))
    else:
        checks.append(absent("output_u8"))
    if "activations_first_channels" not in outs:
        checks.append(absent("activations_first_channels"))
    stats = case.get("activation_stats", {})
    for name, spec in outs.get("activations_first_channels", {}).items():
        a_ref = ctx.load(spec["file"])
        absmax = float(stats.get(name, {}).get("absmax", np.abs(a_ref).max()))
        got = acts[name][:, : a_ref.shape[1]].numpy()
        checks.append(compare_float(f"act_{name}", got, a_ref, tol["activations"][0] * (1 + absmax)))
    return checks


# -- alignment / warp-back / e2e -------------------------------------------------------------------
def lut_sensitivity(restored: np.ndarray, reference: np.ndarray) -> int:
    """How far the histogram-matching LUT can move an output value when its input face is off by one
    level on a few pixels (what the generator tolerance allows, checked by ``restored_face_k``).

    e2e with *our* generator faces: a value off by one moves to the neighbouring LUT entry (the largest
    step between adjacent entries), and the few changed pixels shift the source CDF, which can move an
    entry to the next populated reference level (the largest gap between populated levels). Observed:
    4 at 256 and 12-24 at 512 in the matched face, depending on thread count and conv algorithm. The
    chain checks bound the fraction of differing values by the stage tolerance and the size of a
    difference by this; the exact stage-4 comparison uses the reference's own restored faces.
    """
    luts = warpback.histogram_luts(restored, reference).astype(np.int16)
    step = int(np.abs(np.diff(luts, axis=1)).max())
    gap = 1
    for ch in range(reference.shape[-1]):
        levels = np.flatnonzero(np.bincount(reference[..., ch].ravel(), minlength=256))
        if levels.size > 1:
            gap = max(gap, int(np.diff(levels).max()))
    return max(step, gap)


def lut_shift_share(restored: np.ndarray, restored_ref: np.ndarray, reference: np.ndarray) -> float:
    """Share of the matched face's values that may differ from the official one when our generator's
    face is within its tolerance of the official face (``restored_face_k``).

    A value differs only where our face differs, or where its level goes through a histogram-LUT entry
    that our face's histogram moved: one level off on a few pixels can shift an entry, and then every
    pixel at that level changes, far more than the stage tolerance's share (seen on AVX2 kernels:
    0.41 % at 512 px). Counting exactly those values bounds the chain check without loosening it
    elsewhere.
    """
    ours = warpback.histogram_luts(restored, reference)
    official = warpback.histogram_luts(restored_ref, reference)
    moved = np.zeros(restored.shape, bool)
    for ch in range(restored.shape[-1]):
        moved[..., ch] = ours[ch][restored[..., ch]] != official[ch][restored[..., ch]]
    return float((moved | (restored != restored_ref)).mean())


def run_stage_case(case: dict, ctx: Context) -> list[Check]:
    require_one(case.get("outputs", {}), "final")
    tol = stage_tolerances(case)
    photo = ctx.load(case["inputs"]["photo"]["file"])
    size = int(case["options"]["crop_size"])
    u8_max, u8_pct = tol["uint8"]
    atol = tol["float"][0]

    def u8(name: str, got: np.ndarray, ref: np.ndarray, max_diff: int = int(u8_max)) -> Check:
        return compare_u8(name, got, ref, max_diff=max_diff, max_frac=u8_pct / 100)

    checks: list[Check] = []
    faces: list[tuple[np.ndarray, np.ndarray]] = []
    ours: list[tuple[np.ndarray, np.ndarray]] = []
    chain_max = int(u8_max)
    shifted: dict[int, float] = {}  # face index -> share of values a moved LUT entry may change
    e2e = case.get("seed") is not None and str(case["id"]).startswith("e2e")
    for face in case["faces"]:
        k = face["index"]
        files = face["files"]
        matrix = align.crop_transform(np.array(face["landmarks5_xy"], dtype=np.float64), size)
        checks.append(compare_float(f"T_{k}", matrix, np.array(face["similarity_crop_to_image"]), tol["similarity"][0]))
        checks.append(compare_float(f"T_inv_{k}", np.linalg.inv(matrix), np.array(face["inverse_image_to_crop"]),
                                    tol["similarity"][0] * 100))
        crop = align.aligned_crop(photo, matrix, size)
        if "stage2_crop" in files:
            checks.append(u8(f"stage2_crop_{k}", crop, ctx.load(files["stage2_crop"]["file"])))
        else:
            checks.append(absent(f"stage2_crop_{k}"))
        restored_ref = ctx.load(files["restored_face"]["file"]) if "restored_face" in files else None
        if e2e:
            component = "face_gen_512" if size == 512 else "face_gen_256"
            out, _ = run_generator(ctx, component, int(case["seed"]), crop, activations=False)
            restored = to_uint8(out)[0].numpy()
            if restored_ref is not None:
                # the generator cases' acceptance: |d| <= 1 on <= 0.05 % of values
                checks.append(compare_u8(f"restored_face_{k}", restored, restored_ref, max_diff=1, max_frac=0.0005))
            else:  # without the official faces only the chain (our faces blended) can be compared
                checks.append(absent(f"restored_face_{k}"))
            ours.append((matrix, restored))
            reference = align.aligned_reference(photo, matrix, size)
            chain_max = max(chain_max, lut_sensitivity(restored, reference))
            if restored_ref is not None:
                shifted[k] = lut_shift_share(restored, restored_ref, reference)
        elif restored_ref is None:  # warp-back cases: the official restored faces are this case's input
            raise ValueError(f"face {k}: restored_face, an input of this warp-back case, is not in this golden set")
        if restored_ref is not None:
            faces.append((matrix, restored_ref))

    final_ref = ctx.load(case["outputs"]["final"]["file"])
    if len(faces) == len(case["faces"]):  # the official faces blended: stage 4 compared step by step
        checks += _blend_checks(case, ctx, photo, faces, size, final_ref, u8, atol)
    else:
        checks.append(absent("final (blended from the official restored faces)"))

    if e2e:
        chain_debug: list[warpback.PasteDebug] = []
        chain_final = warpback.paste_faces(photo, ours, debug=chain_debug)
        for face, dbg in zip(case["faces"], chain_debug):
            if "matched_face" not in face["files"]:
                checks.append(absent(f"chain_matched_face_{face['index']}"))
                continue
            ref = ctx.load(face["files"]["matched_face"]["file"])
            share = u8_pct / 100 + shifted.get(face["index"], 0.0)
            checks.append(compare_u8(f"chain_matched_face_{face['index']}", dbg.matched, ref, max_diff=chain_max,
                                     max_frac=share))
        final_share = u8_pct / 100
        if len(faces) == len(case["faces"]):
            # the values our faces change in the photo (the official faces' paste is checked strictly above);
            # a moved LUT entry reaches the photo through the warp, so its share is measured, not guessed
            final_share += float((chain_final != warpback.paste_faces(photo, faces)).mean())
        checks.append(compare_u8("chain_final", chain_final, final_ref, max_diff=chain_max, max_frac=final_share))
    return checks


def _blend_checks(
    case: dict, ctx: Context, photo: np.ndarray, faces: list, size: int, final_ref: np.ndarray, u8, atol: float
) -> list[Check]:
    """Stage 4 with the official restored faces: every per-face intermediate the case holds, and the final."""
    checks: list[Check] = []
    debug: list[warpback.PasteDebug] = []
    final = warpback.paste_faces(photo, faces, debug=debug)
    for face, (matrix, _), dbg in zip(case["faces"], faces, debug):
        k = face["index"]
        u8_arrays = {
            "aligned_trunc_u8": lambda d=dbg: d.aligned_reference,
            "forward_mask": lambda d=dbg: d.forward_mask,
            "matched_face": lambda d=dbg: d.matched,
            "backward_mask": lambda d=dbg: d.backward_mask,
            "mask_eroded": lambda d=dbg: (d.eroded / 255.0).astype(np.uint8),
        }
        float_arrays = {
            "aligned_float": lambda m=matrix: align.crop_float(photo, m, size, preserve_range=True),
            "warped_back": lambda d=dbg: d.warped,
            "mask_blur": lambda d=dbg: d.alpha,
            "blended_after": lambda d=dbg: d.blended_after,
        }
        for name, spec in face["files"].items():
            if name in u8_arrays:
                checks.append(u8(f"{name}_{k}", u8_arrays[name](), ctx.load(spec["file"])))
            elif name in float_arrays:
                checks.append(compare_float(f"{name}_{k}", float_arrays[name](), ctx.load(spec["file"]), atol))
    checks.append(u8("final", final, final_ref))
    return checks


def run_case(case: dict, ctx: Context) -> list[Check]:
    """All checks of one face case (``handles`` said yes)."""
    if "stage3_face_enhancement" in str(case.get("stage", "")):
        return run_generator_case(case, ctx)
    return run_stage_case(case, ctx)
