"""Reference-based colour (Deep Exemplar, CVPR 2019): the image math around the three networks.

Pure functions, arrays in and out; the section numbers are those of
``reference/colorize/exemplar/SPEC.md``. The official single-photo path is::

    center_pad -> lab_tensor (L-50) -> half -> VGG features -> WarpNet -> warp_colour (correlation)
    -> colornet_input -> ColorVidNet -> upsample_ab (x2, x1.25) -> fgs_filter -> to_rgb_u8

:func:`colorize_official` chains them for a target/reference pair the way ``test.py`` does (refcheck
uses it); the product path differs only in the size it runs at (no 16:9 crop, see
:func:`product_image_size`).

Two dependencies pin behaviour that a re-implementation cannot reach bit for bit:

* the centre-pad resize is ``skimage.transform.resize`` (0.19-0.26), i.e. ``scipy.ndimage``'s
  Gaussian anti-aliasing and ``zoom(order=1, mode="mirror", grid_mode=True)`` in float64 followed by
  a truncation to uint8. Truncation turns last-bit differences into +-1 levels, and those flip
  argmax rows of the hard correlation softmax (SPEC §7.3: a numpy re-implementation changed 2-25
  rows and up to 26 % of the output bytes). So :func:`skimage_resize` calls scipy itself, with the
  exact arguments scikit-image passes (scipy, not scikit-image, is the dependency).
* the Fast Global Smoother is OpenCV contrib's ``ximgproc`` (SPEC §5.3), run single-threaded as the
  official code does; ``tests/test_guided_colour.py`` pins its output with golden fixtures.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from . import cielab

OFFICIAL_IMAGE_SIZE = (432, 768)  # (H, W) of test.py's --image_size default
TEMPERATURE = 1e-10
EPS = sys.float_info.epsilon
# The correlation softmax is computed for this many target positions at a time: the full N x N
# matrix grows with the square of the pixel count (5184^2 floats = 107 MB at the official size,
# 1.7 GB at twice that). Row blocks give each row exactly the same arithmetic.
CORRELATION_BLOCK_ELEMENTS = 1 << 24
FGS_LAMBDA = 500.0
FGS_SIGMA_COLOR = 4.0


# -- pre-processing (SPEC §3) ----------------------------------------------------------------------
def skimage_resize(img: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    """``skimage.transform.resize(img, out_hw, mode="reflect", preserve_range=True, anti_aliasing=True)``.

    float64 result, not clipped (SPEC §3.1). Downscaling first smooths with a Gaussian of sigma
    ``(factor - 1) / 2`` per axis (truncate 4, mirror edges); upscaling is not filtered.
    """
    from scipy import ndimage

    arr = np.asarray(img).astype(np.float64)
    out_shape = tuple(out_hw) + arr.shape[2:]
    factors = np.divide(arr.shape, out_shape)
    sigma = np.maximum(0, (factors - 1) / 2)
    filtered = ndimage.gaussian_filter(arr, sigma, cval=0, mode="mirror") if np.any(sigma > 0) else arr
    zoom = [1 / f for f in factors]
    return ndimage.zoom(filtered, zoom, order=1, mode="mirror", cval=0, grid_mode=True)


def center_pad(rgb: np.ndarray, size_hw: tuple[int, int] = OFFICIAL_IMAGE_SIZE) -> np.ndarray:
    """The official ``CenterPad`` (SPEC §3.1): scale to cover ``size_hw`` and centre-crop; uint8 HxWx3.

    Despite its name it never pads. The product does not use it (it keeps the whole photo, see
    :func:`product_image_size`); it is here for the official path and its golden data.
    """
    H, W = size_hw
    h0, w0 = rgb.shape[:2]
    ratio = H / W
    if h0 / w0 == ratio:
        if h0 == H:
            return rgb
        return skimage_resize(rgb, (int(h0 * H / h0), int(w0 * H / h0))).astype(np.uint8)
    if h0 / w0 > ratio:
        out = skimage_resize(rgb, (int(h0 * W / w0), int(w0 * W / w0)))
        s = (out.shape[0] - H) // 2
        out = out[s:s + H]
    else:
        out = skimage_resize(rgb, (H, int(w0 * H / h0)))
        s = (out.shape[1] - W) // 2
        out = out[:, s:s + W]
    return out.astype(np.uint8)


def product_image_size(h: int, w: int, pixels: int = OFFICIAL_IMAGE_SIZE[0] * OFFICIAL_IMAGE_SIZE[1]) -> tuple[int, int]:
    """The size the product runs the official pipeline at: the photo's own aspect ratio, ~``pixels``.

    Instead of test.py's 16:9 centre crop, the whole photo is scaled to about the official pixel
    count (432 x 768) and rounded to the sizes the networks accept (SPEC §4.6: network H mod 16 in
    {0, 8}, W mod 16 == 0, both >= 32, i.e. image H a multiple of 16, W of 32, at least 64). A 16:9
    photo gets exactly 432 x 768, the official size.
    """
    scale = (pixels / (h * w)) ** 0.5
    hh = max(64, int(round(h * scale / 16)) * 16)
    ww = max(64, int(round(w * scale / 32)) * 32)
    return hh, ww


def resize_to(rgb: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """The product's scaling: the centre-pad resize without the crop (same filter, same truncation)."""
    if rgb.shape[:2] == tuple(size_hw):
        return rgb
    return skimage_resize(rgb, size_hw).astype(np.uint8)


def lab_tensor(rgb_u8: np.ndarray) -> torch.Tensor:
    """RGB2Lab + ToTensor + Normalize (SPEC §3.1): (1,3,H,W) float32 holding (L - 50, a, b)."""
    lab = torch.from_numpy(cielab.rgb2lab(rgb_u8).transpose(2, 0, 1).copy()).float()
    lab[0] -= 50
    return lab.unsqueeze(0)


def half(x: torch.Tensor) -> torch.Tensor:
    """Network size (SPEC §3.2): bilinear x0.5, align_corners False."""
    return F.interpolate(x, scale_factor=0.5, mode="bilinear")


def gray_to_vgg(ia_l: torch.Tensor) -> torch.Tensor:
    """``gray2rgb_batch`` (SPEC §3.3): (L-50 + 50) / 100 repeated to 3 channels."""
    x = (ia_l * 1.0 + 50) / 100
    return torch.cat((x, x, x), dim=1)


RGB_FROM_XYZ_ROUNDED = torch.tensor(
    [[3.24048134, -0.96925495, 0.05564664], [-1.53715152, 1.87599, -0.20404134], [-0.49853633, 0.04155593, 1.05731107]],
    dtype=torch.float64,
)


def lab_to_vgg(ib_lab: torch.Tensor) -> torch.Tensor:
    """``tensor_lab2rgb(cat(L + 50, a, b))`` (SPEC §3.4), float32 with the official rounded matrix."""
    t = ib_lab.permute(0, 2, 3, 1)
    L, a, b = t[..., 0:1] + 50, t[..., 1:2], t[..., 2:3]
    y = (L + 16.0) / 116.0
    x = (a / 500.0) + y
    z = y - (b / 200.0)
    z = torch.where(z < 0, torch.zeros_like(z), z)
    xyz = torch.cat((x, y, z), dim=3)
    mask = xyz > 0.2068966
    xyz = torch.where(mask, torch.pow(xyz, 3.0), (xyz - 16.0 / 116.0) / 7.787)
    xyz = xyz * torch.tensor([0.95047, 1.0, 1.08883], dtype=xyz.dtype)
    rgb = torch.mm(xyz.reshape(-1, 3), RGB_FROM_XYZ_ROUNDED.to(xyz.dtype)).view(t.shape[0], t.shape[1], t.shape[2], 3)
    rgb = rgb.permute(0, 3, 1, 2)
    mask = rgb > 0.0031308
    rgb = torch.where(mask, 1.055 * torch.pow(rgb.clamp_min(0.0031308), 1 / 2.4) - 0.055, rgb * 12.92)
    return rgb.clamp(0, 1).contiguous()


def feature_normalize(x: torch.Tensor) -> torch.Tensor:
    """Per position: x / (L2 norm over channels + float epsilon) (SPEC §4.2)."""
    return torch.div(x, torch.norm(x, 2, 1, keepdim=True) + EPS)


# -- the correlation (SPEC §4.3, second half) -------------------------------------------------------
@dataclass
class Warp:
    y: torch.Tensor  # (1,3,H,W) reference Lab of the matched 4x4 block, nearest x4
    similarity: torch.Tensor  # (1,1,H,W)
    argmax: torch.Tensor  # (N,) index of the best reference block per target block (diagnostics)
    y_feat: torch.Tensor = field(repr=False)  # (1,3,fh,fw) before the x4
    sim_feat: torch.Tensor = field(repr=False)


def warp_colour(
    theta_n: torch.Tensor, phi_n: torch.Tensor, ib_lab: torch.Tensor, *,
    temperature: float = TEMPERATURE, block_elements: int = CORRELATION_BLOCK_ELEMENTS,
) -> Warp:
    """``f = theta^T phi``, max and softmax(f / T) over reference positions, times the 4x4-mean colours.

    Computed for a block of target rows at a time (each row's arithmetic is the official one), so
    memory is O(block x N) instead of O(N^2). With T = 1e-10 each row is one-hot in float32.
    """
    _, _, H, W = ib_lab.shape
    fh, fw = int(H / 4), int(W / 4)
    b_lab = F.avg_pool2d(ib_lab, 4).view(1, 3, -1).permute(0, 2, 1)[0]  # (N_B, 3)
    theta_t = theta_n[0].permute(1, 0)  # (N_A, 256)
    phi = phi_n[0]  # (256, N_B)
    n_a, n_b = theta_t.shape[0], phi.shape[1]
    rows = max(1, block_elements // max(1, n_b))
    ys, sims, idx = [], [], []
    for s in range(0, n_a, rows):
        f = torch.matmul(theta_t[s:s + rows], phi)
        m, i = torch.max(f, -1)
        sims.append(m)
        idx.append(i)
        ys.append(torch.matmul(F.softmax(f / temperature, dim=-1), b_lab))
    y_feat = torch.cat(ys).permute(1, 0).contiguous().view(1, 3, fh, fw)
    sim_feat = torch.cat(sims).view(1, 1, fh, fw)
    up = torch.nn.Upsample(scale_factor=4)
    return Warp(up(y_feat), up(sim_feat), torch.cat(idx), y_feat, sim_feat)


def colornet_input(ia_l: torch.Tensor, warp: Warp) -> torch.Tensor:
    """(1,7,H,W): L-50, warped ab, similarity, zeros for the previous frame (a still photo; SPEC §4.4)."""
    return torch.cat((ia_l, warp.y[:, 1:3], warp.similarity, torch.zeros_like(warp.y)), dim=1)


# -- post-processing (SPEC §5) ---------------------------------------------------------------------
def upsample_ab(ab: torch.Tensor) -> torch.Tensor:
    """Bilinear x2 back to image size, then the fixed chroma gain x1.25."""
    return F.interpolate(ab, scale_factor=2, mode="bilinear") * 1.25


def fgs_guide(l_large: torch.Tensor) -> np.ndarray:
    """uint8 guide from the full-size L-50 (1,1,H,W): ``(L + 50) * 255 / 100`` in float32, truncated."""
    return ((l_large[0, 0] * 1.0 + 50) * 255 / 100).numpy().astype(np.uint8)


def fgs_filter(ab_up: np.ndarray, guide: np.ndarray) -> np.ndarray:
    """OpenCV contrib's Fast Global Smoother on the a and b planes (lambda 500, sigma 4; SPEC §5.3).

    Run with OpenCV's thread count at 0 (one stripe), as the official ``utils/util.py`` sets it at
    import; the previous setting is restored afterwards.
    """
    import cv2

    ab_up = np.asarray(ab_up, dtype=np.float32)
    guide = np.ascontiguousarray(guide, dtype=np.uint8)
    threads = cv2.getNumThreads()
    cv2.setNumThreads(0)
    try:
        fgs = cv2.ximgproc.createFastGlobalSmootherFilter(guide, FGS_LAMBDA, FGS_SIGMA_COLOR)
        planes = [fgs.filter(np.ascontiguousarray(ab_up[0, c])) for c in range(ab_up.shape[1])]
    finally:
        cv2.setNumThreads(threads)
    return np.stack(planes)[None]


def to_rgb_u8(l_large: torch.Tensor, ab_filtered: np.ndarray) -> np.ndarray:
    """``batch_lab2rgb_transpose_mc`` (SPEC §5.4): float64 lab2rgb of (L, ab), x255, truncated; HxWx3."""
    L = (l_large[0, 0] * 1.0 + 50).numpy()
    lab = np.concatenate([L[None], np.asarray(ab_filtered, dtype=np.float32)[0]], axis=0)
    rgb = cielab.lab2rgb(lab.transpose(1, 2, 0).astype(np.float64))
    return (np.clip(rgb, 0, 1) * 255).astype(np.uint8)


# -- the chain ---------------------------------------------------------------------------------------
@dataclass
class ExemplarNets:
    vgg: Callable
    warpnet: Callable
    colornet: Callable


@dataclass
class ExemplarResult:
    rgb_u8: np.ndarray  # HxWx3 at image size
    ab_predict: torch.Tensor  # (1,2,h,w) network size
    ab_filtered: np.ndarray  # (1,2,H,W)
    warp: Warp
    l_large: torch.Tensor  # (1,1,H,W) L-50 at image size
    extras: dict[str, torch.Tensor] = field(default_factory=dict)


def reference_features(nets: ExemplarNets, ib_lab: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Normalised VGG features (r22..r52) of the reference at network size (computed once per reference)."""
    feats = nets.vgg(lab_to_vgg(ib_lab))
    return tuple(feature_normalize(feats[k]) for k in ("r22", "r32", "r42", "r52"))


def colorize_sized(
    nets: ExemplarNets, target_u8: np.ndarray, ref_u8: np.ndarray, *,
    block_elements: int = CORRELATION_BLOCK_ELEMENTS, check: Callable[[], None] | None = None,
) -> ExemplarResult:
    """Colour a target after a reference, both already at the image size (HxWx3 uint8, same shape).

    Only the target's lightness is used. ``check`` is called between the heavy steps (cancellation).
    """
    if target_u8.shape != ref_u8.shape:
        raise ValueError(f"target {target_u8.shape} and reference {ref_u8.shape} must have the same size")
    tick = check or (lambda: None)
    ia_large = lab_tensor(target_u8)
    ib_large = lab_tensor(ref_u8)
    ia_l = half(ia_large)[:, 0:1]
    ib_lab = half(ib_large)
    b_feats = reference_features(nets, ib_lab)
    tick()
    a_raw = nets.vgg(gray_to_vgg(ia_l))
    a_feats = tuple(feature_normalize(a_raw[k]) for k in ("r22", "r32", "r42", "r52"))
    tick()
    theta_n, phi_n = nets.warpnet(a_feats, b_feats)
    warp = warp_colour(theta_n, phi_n, ib_lab, block_elements=block_elements)
    tick()
    ab = nets.colornet(colornet_input(ia_l, warp))
    tick()
    l_large = ia_large[:, 0:1]
    ab_f = fgs_filter(upsample_ab(ab).numpy(), fgs_guide(l_large))
    return ExemplarResult(to_rgb_u8(l_large, ab_f), ab, ab_f, warp, l_large)


def colorize_official(
    nets: ExemplarNets, target_u8: np.ndarray, ref_u8: np.ndarray, image_size: tuple[int, int] = OFFICIAL_IMAGE_SIZE,
    **kw,
) -> ExemplarResult:
    """``test.py`` for one photo: centre-pad both images to ``image_size`` (16:9 crop), then colour."""
    return colorize_sized(nets, center_pad(target_u8, image_size), center_pad(ref_u8, image_size), **kw)
