"""The user's controls over a restoration (not in the official code), as pure numpy (no torch).

Why a stage of its own: ``strength`` and ``face_strength`` only mix images that the networks have
already made (the processed input, the global-stage result, the enhanced faces), so a front end that
kept a :class:`~oldphoto.pipeline.RestoreResult` can move them without running a network again.
:func:`compose` is that mix; ``Restorer.restore`` and ``RestoreResult.reblend`` both call it, so a
re-blend gives the same pixels as a fresh restore with the same values. ``scratch_threshold`` and
``mask_grow`` change what the networks see and therefore need a new restore.

The defaults (1, 1, the official 0.4, 0) skip every extra operation: results stay bit-identical to
the official pipeline.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from ..errors import InputError
from . import warpback
from .resize import resize_if_needed

SCRATCH_THRESHOLD = 0.4
"""The official detection threshold, ``oldphoto.stages.detect.THRESHOLD`` (a test checks they agree).
Repeated so that this module, and the CLI and web app that take their defaults from it, import no torch."""
MASK_GROW_MAX = 64
"""Largest dilation in pixels: wider than any scratch edge the detector misses, and it bounds the
O(radius x pixels) work of :func:`grow_mask`."""


@dataclass(frozen=True)
class Controls:
    """The values of the controls for one restoration."""

    strength: float = 1.0
    """Share of the global restoration kept: 0 = the processed input, 1 = the restored image."""
    face_strength: float = 1.0
    """Factor on each face's blending mask: 0 = faces as the global stage left them."""
    scratch_threshold: float = SCRATCH_THRESHOLD
    """Probability from which the U-Net's output counts as damage (official 0.4)."""
    mask_grow: int = 0
    """Pixels by which the detected or given scratch mask is dilated (a disk of that radius)."""
    color_strength: float = 1.0
    """Factor on the predicted chroma (Lab a, b) of the colour stage: 0 = the grey photo, 1 = DDColor's colours."""

    def note(self) -> str | None:
        """One line for ``RestoreResult.notes`` naming the values that differ from the defaults."""
        default = Controls()
        changed = [
            f"{name} {getattr(self, name):g} (default {getattr(default, name):g})"
            for name in ("strength", "face_strength", "scratch_threshold", "mask_grow", "color_strength")
            if getattr(self, name) != getattr(default, name)
        ]
        return f"Adjusted: {', '.join(changed)}." if changed else None


def _fraction(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputError(f"{name} must be a number between 0 and 1, not {value!r}.")
    v = float(value)
    if not 0.0 <= v <= 1.0:  # NaN fails this too
        raise InputError(f"{name} must be between 0 and 1 (got {v:g}).")
    return v


def check_controls(
    strength: Any = 1.0,
    face_strength: Any = 1.0,
    scratch_threshold: Any = SCRATCH_THRESHOLD,
    mask_grow: Any = 0,
    color_strength: Any = 1.0,
) -> Controls:
    """Validated :class:`Controls`; an :class:`InputError` names the allowed range of a bad value."""
    grow = mask_grow
    integral = isinstance(grow, (int, np.integer)) or (isinstance(grow, (float, np.floating)) and float(grow).is_integer())
    if isinstance(grow, bool) or not integral or not 0 <= grow <= MASK_GROW_MAX:
        raise InputError(f"mask_grow must be a whole number of pixels from 0 to {MASK_GROW_MAX} (got {grow!r}).")
    return Controls(
        strength=_fraction("strength", strength),
        face_strength=_fraction("face_strength", face_strength),
        scratch_threshold=_fraction("scratch_threshold", scratch_threshold),
        mask_grow=int(grow),
        color_strength=_fraction("color_strength", color_strength),
    )


def grow_mask(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Dilate a bool H x W mask by a disk of radius ``pixels`` (offsets with dx² + dy² <= r²).

    Written by hand because neither scipy nor OpenCV is a dependency: the disk is taken apart into
    rows, each row is a horizontal dilation by its half-width (prefix sums, O(pixels)), shifted up
    and down by its offset; r + 1 passes over the mask in all.
    """
    m = np.asarray(mask, dtype=bool)
    if pixels <= 0 or not m.any():
        return m.copy()
    h, w = m.shape
    counts = np.zeros((h, w + 1), np.int32)
    np.cumsum(m, axis=1, out=counts[:, 1:])
    cols = np.arange(w)
    out = np.zeros_like(m)
    for dy in range(min(pixels, h - 1) + 1):
        k = math.isqrt(pixels * pixels - dy * dy)
        row = (counts[:, np.minimum(cols + k + 1, w)] - counts[:, np.maximum(cols - k, 0)]) > 0
        out[dy:] |= row[: h - dy]
        if dy:
            out[: h - dy] |= row[dy:]
    return out


def blend_global(processed: np.ndarray, restored: np.ndarray, strength: float) -> np.ndarray:
    """``processed + strength * (restored - processed)``, rounded to uint8 (both H x W x 3 uint8)."""
    if processed.shape != restored.shape:
        raise ValueError(f"processed input {processed.shape} and restored image {restored.shape} differ in shape")
    if strength == 1.0:
        return restored
    if strength == 0.0:
        return processed
    p = processed.astype(np.float64)
    mixed = p + strength * (restored.astype(np.float64) - p)
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


def compose(
    processed: Image.Image | np.ndarray,
    restored: Image.Image | np.ndarray,
    faces: Sequence[Any],
    *,
    strength: float = 1.0,
    face_strength: float = 1.0,
    size: tuple[int, int] | None = None,
) -> Image.Image:
    """The final photo from a restoration's intermediates: global strength, then the faces, then ``size``.

    ``faces`` are ``oldphoto.stages.faces.FaceResult`` (their ``transform`` and ``enhanced``), made
    from the global-stage result; they are blended into the strength mix, whose colours their
    histogram matching then follows. ``size`` is the photo's own (w, h); the processing size is
    resized to it with the pipeline's Lanczos (``resize_if_needed``).
    """
    base = blend_global(np.asarray(processed), np.asarray(restored), strength)
    if faces:
        base = warpback.paste_faces(base, [(f.transform, f.enhanced) for f in faces], face_strength=face_strength)
    image = Image.fromarray(np.ascontiguousarray(base), "RGB")
    return image if size is None else resize_if_needed(image, tuple(size), Image.LANCZOS)
