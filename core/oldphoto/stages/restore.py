"""Global restoration in latent space (global SPEC §5–§6): VAE_A encoder -> mapping -> VAE_B decoder."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .resize import resize_if_needed, round_to

Mode = Literal["quality", "scratch", "hr"]

MAPPING = {"quality": "mapping_quality", "scratch": "mapping_scratch", "hr": "mapping_patch_attention"}
DECODER = {"quality": "vae_b_quality", "scratch": "vae_b_scratch", "hr": "vae_b_scratch"}
HR_DILATION = 3  # cv2.dilate(3x3, iterations=3) == one 7x7 max filter


def components_for_mode(mode: Mode) -> list[str]:
    return ["vae_a_quality", MAPPING[mode], DECODER[mode]]


def resize_quality(img: Image.Image) -> Image.Image:
    """``--test_mode Full``: sides to the nearest multiple of 4 with Pillow BILINEAR (SPEC §5.2)."""
    w, h = img.size
    return resize_if_needed(img, (round_to(w, 4), round_to(h, 4)), Image.BILINEAR)


def to_tensor(img: Image.Image) -> torch.Tensor:
    """ToTensor + Normalize(0.5, 0.5): uint8 -> float32 /255 -> [-1, 1], (1,3,H,W)."""
    a = torch.from_numpy(np.asarray(img.convert("RGB"), dtype=np.uint8).copy())
    t = a.permute(2, 0, 1).float().div(255)
    return t.sub(0.5).div(0.5)[None]


def dilate(mask: np.ndarray, radius: int = HR_DILATION) -> np.ndarray:
    """Square max filter of size 2r+1; pixels outside the image are ignored (like cv2.dilate)."""
    t = torch.from_numpy(mask.astype(np.float32))[None, None]
    k = 2 * radius + 1
    return (F.max_pool2d(t, k, stride=1, padding=radius)[0, 0] > 0).numpy()


def paint_holes(img: Image.Image, mask: np.ndarray) -> Image.Image:
    """Scratched pixels become pure white (SPEC §5.3 step 3 with a 0/255 mask)."""
    a = np.asarray(img.convert("RGB")).copy()
    a[mask] = 255
    return Image.fromarray(a, "RGB")


def prepare(img: Image.Image, mask: np.ndarray | None, mode: Mode) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Network input (and mask tensor) for one image, exactly as Global/test.py builds them."""
    if mode == "quality":
        return to_tensor(img), None
    if mask is None:
        raise ValueError(f"mode {mode!r} needs a mask")
    if mask.shape != (img.height, img.width):
        raise ValueError(f"mask shape {mask.shape} does not match image {img.size}")
    if mode == "hr":
        mask = dilate(mask)
    x = to_tensor(paint_holes(img, mask))
    m = torch.from_numpy(mask.astype(np.float32))[None, None]
    return x, m


def run_networks(
    x: torch.Tensor,
    m: torch.Tensor | None,
    mode: Mode,
    net: Callable[[str], torch.nn.Module],
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    from ..nets import param_dtype

    encoder, mapping, decoder = net("vae_a_quality"), net(MAPPING[mode]), net(DECODER[mode])
    x = x.to(device, param_dtype(encoder))
    m = m.to(device) if m is not None else None  # float32 0/1: the attention blocks cast what they need
    z = encoder.encode(x)
    z = mapping(z.to(param_dtype(mapping)), m)
    return decoder.decode(z.to(param_dtype(decoder)))


def restore(
    img: Image.Image,
    mask: np.ndarray | None,
    *,
    mode: Mode,
    net: Callable[[str], torch.nn.Module],
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Tanh output (1,3,H,W) in [-1, 1] for an image already at the network's size."""
    if img.width % 4 or img.height % 4:
        raise ValueError("image sides must be multiples of 4 (use resize_quality / resize_full_size)")
    x, m = prepare(img, mask, mode)
    return run_networks(x, m, mode, net, device).float().cpu()


def to_uint8(out: torch.Tensor) -> np.ndarray:
    """torchvision ``save_image((out+1)/2, normalize=True)`` as the official code saves (SPEC §5.4).

    The result is min-max stretched per image; reproduced op for op in float32 for bit-exact PNGs.
    """
    t = (out[0].float() + 1.0) / 2.0
    lo, hi = float(t.min()), float(t.max())
    t = t.clamp(lo, hi)
    t = (t - lo) / max(hi - lo, 1e-5)
    return t.mul(255).add_(0.5).clamp_(0, 255).permute(1, 2, 0).to(torch.uint8).numpy()


def to_image(out: torch.Tensor) -> Image.Image:
    return Image.fromarray(to_uint8(out), "RGB")
