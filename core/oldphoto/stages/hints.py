"""Colour points (SIGGRAPH17 user-guided colourisation): pre/post-processing and the hint encoding.

Pure functions; section numbers are those of ``reference/colorize/siggraph17/SPEC.md``. The image
path is richzhang/colorization's ``demo_release.py`` (§3-§7); the hint encoding is the authors'
interactive tool's (§6.2): each point becomes a square patch on the 256 x 256 network grid whose
colour is the user's colour snapped to the photo's lightness at that point.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from . import cielab

GRID = 256
DEFAULT_HALF_WIDTH = 2  # 5 x 5 patches, the tool's default brush (§6.2.3)
SNAP_ITERATIONS = 20
MASK_CONVENTIONS = {"0/1": 0.0, "centred": 0.5}  # value subtracted from the 0/1 mask (§6.4)


@dataclass(frozen=True)
class GridHint:
    """A point on the 256 x 256 grid: column ``x``, row ``y``, user colour, patch half-width ``w``."""

    x: int
    y: int
    rgb: tuple[int, int, int]
    w: int = DEFAULT_HALF_WIDTH


def resize_256(rgb_u8: np.ndarray) -> np.ndarray:
    """Pillow BICUBIC to 256 x 256 (§4.2.1), horizontal pass first as in the Pillow 12 the golden data used.

    Pillow 13 may run the vertical pass first (see ``stages/resize.py``); asking for the two
    single-axis passes explicitly keeps the Pillow 10-12 order on every Pillow.
    """
    img = Image.fromarray(np.ascontiguousarray(rgb_u8, dtype=np.uint8), "RGB")
    w, h = img.size
    if w != GRID:
        img = img.resize((GRID, h), Image.Resampling.BICUBIC)
    if h != GRID:
        img = img.resize((GRID, GRID), Image.Resampling.BICUBIC)
    return np.asarray(img)


def lightness(rgb_u8: np.ndarray) -> torch.Tensor:
    """(1,1,H,W) float32 L of an RGB uint8 image (float64 rgb2lab, then cast; §4.2.2-3)."""
    return torch.from_numpy(cielab.rgb2lab(rgb_u8)[..., 0].copy()).float()[None, None]


def preprocess(rgb_u8: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """``preprocess_img``: (L at the photo's size, L of the 256 x 256 resized photo). Colour is discarded."""
    return lightness(rgb_u8), lightness(resize_256(rgb_u8))


def grid_point(col: float, row: float, width: int, height: int) -> tuple[int, int]:
    """A photo pixel (column, row) on the grid by truncation (§6.2.1): ``min(255, floor(c * 256 / W))``."""
    return min(GRID - 1, int(np.floor(col * GRID / width))), min(GRID - 1, int(np.floor(row * GRID / height)))


def snap_colour(rgb: tuple[int, int, int], l_point: float) -> np.ndarray:
    """The tool's ``snap_ab`` (§6.2.2): the user's colour at the photo's lightness, pulled into sRGB; uint8 RGB."""
    lab = cielab.rgb2lab(np.asarray(rgb, dtype=np.uint8)[None, None])[0, 0]
    for _ in range(SNAP_ITERATIONS):
        lab[0] = l_point
        prev = lab
        out = np.clip(cielab.lab2rgb(lab[None, None]), 0, 1)
        lab = cielab.rgb2lab(out)[0, 0]
        if np.sum(np.abs(lab - prev)) < 1:
            break
    return np.round(np.clip(cielab.lab2rgb(lab[None, None])[0, 0], 0, 1) * 255).astype(np.uint8)


def encode_hints(
    l_rs: torch.Tensor, hints: list[GridHint], mask_convention: str = "0/1",
) -> tuple[torch.Tensor, torch.Tensor]:
    """``input_B`` (1,2,256,256) ab in Lab units and ``mask_B`` (1,1,256,256) (§6.2.3-4, §6.4).

    Patches are drawn in order (a later one overwrites an earlier one), clipped at the borders.
    ``mask_convention``: "0/1" (the official code and the golden data) or "centred" (-0.5/+0.5, the
    PyTorch retrain's convention); which one the real checkpoint wants is a per-checkpoint setting.
    """
    if mask_convention not in MASK_CONVENTIONS:
        raise ValueError(f"mask convention must be one of {sorted(MASK_CONVENTIONS)}, not {mask_convention!r}")
    _, _, gh, gw = l_rs.shape
    hint_img = np.zeros((gh, gw, 3), np.uint8)
    mask = np.zeros((gh, gw), bool)
    for h in hints:
        snapped = snap_colour(h.rgb, float(l_rs[0, 0, h.y, h.x]))
        r0, r1 = max(0, h.y - h.w), min(gh - 1, h.y + h.w)
        c0, c1 = max(0, h.x - h.w), min(gw - 1, h.x + h.w)
        hint_img[r0:r1 + 1, c0:c1 + 1] = snapped
        mask[r0:r1 + 1, c0:c1 + 1] = True
    ab = cielab.rgb2lab(hint_img)[..., 1:3]
    input_b = torch.from_numpy(ab.transpose(2, 0, 1).copy()).float()[None]
    mask_b = torch.from_numpy(mask * 1.0).float()[None, None] - MASK_CONVENTIONS[mask_convention]
    return input_b, mask_b


def upsample_ab(out_ab: torch.Tensor, size_hw: tuple[int, int]) -> torch.Tensor:
    """ab back to the photo's size: torch bilinear, no antialias, skipped at 256 x 256 (§7.1)."""
    if tuple(out_ab.shape[-2:]) == tuple(size_hw):
        return out_ab
    return F.interpolate(out_ab, size=tuple(size_hw), mode="bilinear")


def to_rgb(l_orig: torch.Tensor, ab_up: torch.Tensor) -> np.ndarray:
    """float32 HxWx3 RGB in [0, 1]: the photo's own L with the network's ab, scikit-image lab2rgb (§7.2)."""
    lab = torch.cat((l_orig, ab_up), dim=1)[0].numpy().transpose(1, 2, 0)
    return cielab.lab2rgb(lab)


def to_u8(rgb: np.ndarray) -> np.ndarray:
    """``plt.imsave``'s quantisation: ``(rgb * 255)`` truncated (§7.3)."""
    return (rgb * 255).astype(np.uint8)
