"""Scratch detection (global SPEC §4): grayscale U-Net at short side 256, sigmoid >= 0.4."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .resize import resize_if_needed, round_to

THRESHOLD = 0.4


def resize_full_size(img: Image.Image) -> Image.Image:
    """``full_size``: both sides to the nearest multiple of 16 (Pillow BICUBIC); what run.py uses."""
    w, h = img.size
    return resize_if_needed(img, (round_to(w, 16), round_to(h, 16)), Image.BICUBIC)


def resize_scale_256(img: Image.Image) -> Image.Image:
    """``scale_256``: short side 256, long side scaled, both rounded to multiples of 16 (BICUBIC)."""
    w, h = img.size
    if w < h:
        nw, nh = 256.0, h / w * 256
    else:
        nw, nh = w / h * 256, 256.0
    return resize_if_needed(img, (round_to(nw, 16), round_to(nh, 16)), Image.BICUBIC)


def unet_input(img: Image.Image) -> torch.Tensor:
    """RGB -> Pillow integer luma -> float32 L/255 -> [-1, 1], shape (1,1,H,W)."""
    lum = np.asarray(img.convert("L"), dtype=np.float32)
    x = torch.from_numpy(lum / np.float32(255.0))
    return ((x - 0.5) / 0.5)[None, None]


def unet_size(h: int, w: int) -> tuple[int, int]:
    """The U-Net always runs at short side 256 (long side rounded to 16), even in ``full_size`` mode."""
    if h < w:
        return 256, round_to(w / h * 256, 16)
    return round_to(h / w * 256, 16), 256


@dataclass
class Detection:
    mask: np.ndarray
    """bool HxW at the resized image's size (True = scratch)."""
    logits: torch.Tensor
    """Raw U-Net output at the U-Net's size (before sigmoid)."""
    unet_input: torch.Tensor


def detect(
    net: torch.nn.Module, img: Image.Image, *, device: torch.device | str = "cpu", threshold: float = THRESHOLD
) -> Detection:
    """Run the U-Net on an image whose sides are multiples of 16 (see :func:`resize_full_size`).

    ``threshold`` applies to the sigmoid probability (official: 0.4); lower marks more as damage.
    """
    w, h = img.size
    x = unet_input(img)
    size = unet_size(h, w)
    if size != (h, w):
        x = F.interpolate(x, size, mode="bilinear", align_corners=False)
    logits = net(x.to(device)).float()
    p = torch.sigmoid(logits)
    if p.shape[2:] != (h, w):
        p = F.interpolate(p, (h, w), mode="nearest")
    mask = (p >= threshold)[0, 0].cpu().numpy()
    return Detection(mask=mask, logits=logits.cpu(), unet_input=x)


def detect_mask(
    net: torch.nn.Module, img: Image.Image, *, device: torch.device | str = "cpu", threshold: float = THRESHOLD
) -> np.ndarray:
    return detect(net, img, device=device, threshold=threshold).mask


def mask_to_png(mask: np.ndarray) -> Image.Image:
    """The mask as a 0/255 RGB image, as users expect to see it.

    (The official save_image min-max stretch turns an all-ones mask black; we do not copy that.)
    """
    return Image.fromarray(np.where(mask, 255, 0).astype(np.uint8), "L").convert("RGB")
