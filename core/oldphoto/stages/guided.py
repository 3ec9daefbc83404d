"""Guided colour for the product: a photo coloured after a reference photo, or from colour points.

The model math is in :mod:`oldphoto.stages.exemplar` (Deep Exemplar) and :mod:`oldphoto.stages.hints`
(SIGGRAPH17); this module adapts them to whole photos of any shape and checks the user's input.

Differences from the official code, on purpose:

* Reference: ``test.py`` centre-crops both images to 16:9 (768 x 432) and returns that crop. Here the
  whole photo runs at about the official pixel count with its own aspect ratio
  (:func:`exemplar.product_image_size`); the reference is centre-cropped to the photo's shape by the
  official crop rule and scaled to the same size (the networks need equal sizes). The predicted ab
  (after the official FGS filter) is resized bilinearly to the photo's size and combined with the
  photo's own full-resolution lightness. A 16:9 photo of 768 x 432 gets exactly the official output.
* Points: the official 256 x 256 path unchanged; points are given in photo pixels and mapped to the
  grid as the authors' tool maps clicks (``hints.grid_point``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from . import cielab, exemplar, hints

MIN_REFERENCE_SIDE = 16
REFERENCE_EXACT_PIXELS = 16_000_000
"""Above this a reference is first box-reduced (Pillow ``reduce``) by the smallest integer factor that
brings it under: the exact float64 resize of a 64 MP reference would hold ~3 GB. Below it (phone
photos and smaller) the official resize runs on the reference as given."""
STRIP_ROWS = 256
PROCESS_PIXELS = exemplar.OFFICIAL_IMAGE_SIZE[0] * exemplar.OFFICIAL_IMAGE_SIZE[1]
"""Deep Exemplar's processing size in pixels (the official 432 x 768); tests lower it for speed."""
HEX = re.compile(r"^#([0-9a-fA-F]{6})$")
GREY_REFERENCE_NOTE = (
    "The reference photo has no colour of its own (grey or toned in one hue), so there is little colour "
    "to transfer: the result stays close to grey. Use a colour reference photo."
)


@dataclass
class GuidedPrediction:
    """What a guided model predicted: a re-blend needs only this and the photo (like ``ColorPrediction``)."""

    model: str
    """"reference" (Deep Exemplar) or "points" (SIGGRAPH17)."""
    ab: np.ndarray
    """(2, h, w) float32 Lab a, b at the model's output size (resized to the photo's size on compose)."""
    lab_dtype: str = "float32"
    """Precision of the final Lab -> RGB: Deep Exemplar's official code converts in float64, SIGGRAPH17 in float32."""

    def compose(self, rgb: np.ndarray, color_strength: float = 1.0) -> np.ndarray:
        """The colour photo: the photo's own lightness with the predicted ab (x ``color_strength``), uint8.

        Both official codes quantise with a truncation (``(rgb * 255).astype(uint8)``), kept here.
        """
        h, w = rgb.shape[:2]
        ab = torch.from_numpy(np.ascontiguousarray(self.ab))[None]
        if ab.shape[-2:] != (h, w):
            ab = F.interpolate(ab, size=(h, w), mode="bilinear")
        ab = ab[0].numpy()
        if color_strength != 1.0:
            ab = ab * np.float32(color_strength)
        out = np.empty((h, w, 3), np.uint8)
        for r0 in range(0, h, STRIP_ROWS):  # float64 Lab of a whole 40 MP scan would need ~1 GB per copy
            r1 = min(h, r0 + STRIP_ROWS)
            L = cielab.rgb2lab(rgb[r0:r1])[..., 0].astype(np.float32)
            if self.lab_dtype == "float64":  # Deep Exemplar keeps L - 50 in float32 and adds 50 back
                L = (L - np.float32(50)) * np.float32(1.0) + np.float32(50)
            lab = np.concatenate([L[None], ab[:, r0:r1].astype(np.float32)], axis=0).transpose(1, 2, 0)
            rgb_f = cielab.lab2rgb(lab.astype(np.float64) if self.lab_dtype == "float64" else lab)
            out[r0:r1] = (np.clip(rgb_f, 0, 1) * 255).astype(np.uint8)
        if color_strength == 0.0:
            out[..., 0] = out[..., 1]
            out[..., 2] = out[..., 1]
        return out


# -- reference photo --------------------------------------------------------------------------------
def check_reference(ref: np.ndarray) -> None:
    h, w = ref.shape[:2]
    if min(h, w) < MIN_REFERENCE_SIDE:
        raise InputError(f"The reference photo is too small ({w}x{h}); it needs at least "
                         f"{MIN_REFERENCE_SIDE} pixels on each side.")


def shrink_reference(ref, notes: list[str]):
    """A PIL reference over ``REFERENCE_EXACT_PIXELS`` box-reduced by an integer factor (with a note)."""
    w, h = ref.size
    k = 1
    while -(-w // k) * -(-h // k) > REFERENCE_EXACT_PIXELS:  # reduce() keeps partial boxes
        k += 1
    if k == 1:
        return ref
    notes.append(f"The reference photo is very large ({w}x{h}); it was first reduced {k}x (box filter) to save memory.")
    return ref.reduce(k)


def reference_notes(ref: np.ndarray, photo_hw: tuple[int, int], is_grey: Callable[[object], bool]) -> list[str]:
    from PIL import Image

    notes = []
    if is_grey(Image.fromarray(ref, "RGB")):
        notes.append(GREY_REFERENCE_NOTE)
    rh, rw = ref.shape[:2]
    ph, pw = photo_hw
    if abs(rw / rh - pw / ph) > 0.02 * (pw / ph):
        notes.append("The reference photo has another shape than the photo: its middle part of the photo's shape "
                     "was used.")
    return notes


def colorize_reference(
    nets: exemplar.ExemplarNets, photo: np.ndarray, ref: np.ndarray, *, check: Callable[[], None] | None = None,
) -> GuidedPrediction:
    """Deep Exemplar on a whole photo (any shape) after ``ref``; see the module docstring."""
    check_reference(ref)
    size = exemplar.product_image_size(*photo.shape[:2], PROCESS_PIXELS)
    target = exemplar.resize_to(photo, size)
    reference = exemplar.center_pad(ref, size)
    res = exemplar.colorize_sized(nets, target, reference, check=check)
    return GuidedPrediction("reference", res.ab_filtered[0].astype(np.float32), "float64")


# -- colour points ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Point:
    """A checked colour point: the photo pixel (column, row) that holds it, and its colour."""

    x: int
    y: int
    rgb: tuple[int, int, int]
    colour: str


def parse_colour(value: object, label: str) -> tuple[tuple[int, int, int], str]:
    if isinstance(value, str) and HEX.match(value.strip()):
        v = value.strip()
        return (int(v[1:3], 16), int(v[3:5], 16), int(v[5:7], 16)), v.lower()
    raise InputError(f"{label} has a bad colour {value!r}: write it as #rrggbb, e.g. #3a6ea5.")


def check_points(points: Sequence[object] | None, size: tuple[int, int]) -> tuple[list[Point], list[str]]:
    """Validate ``[(x, y, "#rrggbb"), ...]`` in photo pixels (``size`` = (W, H)); one-line InputErrors.

    Points on the same pixel with different colours: the later one wins (as in the authors' tool,
    where a later patch overwrites an earlier one), with a note.
    """
    if points is None:
        return [], []
    if isinstance(points, (str, bytes)) or not isinstance(points, Sequence):
        raise InputError("hints must be a list of (x, y, '#rrggbb') colour points.")
    w, h = size
    out: list[Point] = []
    notes: list[str] = []
    seen: dict[tuple[float, float], int] = {}
    for i, p in enumerate(points, start=1):
        label = f"Colour point {i}"
        if not isinstance(p, (Sequence, np.ndarray)) or isinstance(p, (str, bytes)) or len(p) != 3:
            raise InputError(f"{label} must be (x, y, '#rrggbb'), got {p!r}.")
        x, y, colour = p
        try:
            xf, yf = float(x), float(y)
        except (TypeError, ValueError):
            raise InputError(f"{label} has a non-numeric position ({x!r}, {y!r}).") from None
        if not (np.isfinite(xf) and np.isfinite(yf)) or not (0 <= xf < w and 0 <= yf < h):
            raise InputError(f"{label} at ({x}, {y}) is outside the photo ({w}x{h} pixels; x from 0 to {w - 1}, "
                             f"y from 0 to {h - 1}).")
        rgb, hexv = parse_colour(colour, f"{label} at ({x}, {y})")
        key = (int(xf), int(yf))  # the pixel the position falls in
        if key in seen and out[seen[key]].colour != hexv:
            notes.append(f"Colour points {seen[key] + 1} and {i} are on the same pixel ({key[0]}, {key[1]}) with "
                         f"different colours; the later one ({hexv}) is used.")
        seen[key] = len(out)
        out.append(Point(key[0], key[1], rgb, hexv))
    return out, notes


def colorize_points(
    net, photo: np.ndarray, points: Sequence[Point], *, mask_convention: str = "0/1",
) -> GuidedPrediction:
    """SIGGRAPH17 on the photo (squashed to 256 x 256, as the official code) with the points as hints."""
    h, w = photo.shape[:2]
    _l_orig, l_rs = hints.preprocess(photo)
    grid = [hints.GridHint(*hints.grid_point(p.x, p.y, w, h), p.rgb) for p in points]
    ab_in, mask = hints.encode_hints(l_rs, grid, mask_convention)
    out = net(l_rs, ab_in, mask)
    return GuidedPrediction("points", out[0].float().numpy(), "float32")
