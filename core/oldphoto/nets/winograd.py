"""Winograd F(4x4, 3x3) for the CPU's 3x3 stride-1 convolutions (issue 7: speed on CPU).

Why: the mapping networks, the VAEs and the face generator spend almost all their CPU time in 3x3
convolutions with 128-1024 channels, and oneDNN's direct algorithm already runs them at the machine's
float32 GEMM peak. Winograd's minimal filtering (Lavin & Gray, 2016) computes each 4x4 output tile
from a 6x6 input tile with 36 instead of 144 multiplications per channel pair, so the same
convolution is one batched GEMM of a quarter of the size plus cheap linear transforms.

It is exact arithmetic, not an approximation: only float32 rounding differs (about 1e-5 relative on a
512-channel layer, against 3e-7 for the direct algorithm). The golden cases of the reference data
still pass with it (``python -m oldphoto.refcheck``); ``Restorer(exact_convs=True)`` keeps oneDNN's
direct convolution for bit-level comparisons.

The swap keeps every parameter where it was (the class of an ``nn.Conv2d`` is changed to a subclass
with the same attributes), so state-dict names and strict loading are untouched.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# F(4x4, 3x3) with interpolation points 0, +-1, +-2, infinity (Lavin & Gray, 2016, section 4.2).
_BT = [
    [4, 0, -5, 0, 1, 0],
    [0, -4, -4, 1, 1, 0],
    [0, 4, -4, -1, 1, 0],
    [0, -2, -1, 2, 1, 0],
    [0, 2, -1, -2, 1, 0],
    [0, 4, 0, -5, 0, 1],
]
_G = [
    [1 / 4, 0, 0],
    [-1 / 6, -1 / 6, -1 / 6],
    [-1 / 6, 1 / 6, -1 / 6],
    [1 / 24, 1 / 12, 1 / 6],
    [1 / 24, -1 / 12, 1 / 6],
    [0, 0, 1],
]
_AT = [
    [1, 1, 1, 1, 1, 0],
    [0, 1, -1, 2, -2, 0],
    [0, 1, 1, 4, 4, 0],
    [0, 1, -1, 8, -8, 1],
]
M, A = 4, 6  # output tile, input tile
MIN_CHANNELS = 128  # below this the transforms cost more than the GEMM saves (measured: 128->64 is slower)
CHUNK_BYTES = 64 * 2**20  # transformed-input bytes per chunk of tile rows (bounded extra memory)



def _kron(m: list[list[float]]) -> torch.Tensor:
    """kron(m, m) in float32, on the CPU even when imported inside ``torch.device("meta")`` (network building)."""
    t = torch.tensor(m, dtype=torch.float64, device="cpu")
    return torch.kron(t, t).float()


_KB, _KA, _KG = _kron(_BT), _kron(_AT), _kron(_G)


def transform_weight(weight: torch.Tensor) -> torch.Tensor:
    """G w G^T for every (out, in) filter as one (36, 9) x (9, K*C) product: (36, out, in)."""
    k, c = weight.shape[:2]
    return torch.matmul(_KG.to(weight.device), weight.detach().reshape(k * c, 9).t()).reshape(A * A, k, c)


def conv3x3_valid(
    x: torch.Tensor,
    u: torch.Tensor,
    bias: torch.Tensor | None,
    chunk_bytes: int = CHUNK_BYTES,
    padding: tuple[int, int] = (0, 0),
) -> torch.Tensor:
    """A 3x3 stride-1 convolution of a (1, C, H, W) map with transformed weights u and zero ``padding``.

    Tile rows are processed in chunks so that the transformed input (2.25x the input's size) never
    exists for the whole map at once. The input transform B^T d B of every 6x6 tile is one depthwise
    stride-4 convolution with the 36 kron(B^T, B^T) filters: oneDNN does it in one pass over the map,
    with the same sums in the same order as the (36, 36) matrix product over gathered tiles that it
    replaces (bit-identical, measured), but without the strided gather (~40 % less time per layer).
    """
    ph, pw = padding
    _, c, hp, wp = x.shape
    hp, wp = hp + 2 * ph, wp + 2 * pw
    k = u.shape[1]
    h, w = hp - 2, wp - 2
    th, tw = -(-h // M), -(-w // M)
    # one pad: the conv's own zero padding plus zeros up to whole tiles
    x = F.pad(x, (pw, tw * M + 2 - wp + pw, ph, th * M + 2 - hp + ph))[0].unsqueeze(1)  # (C, 1, H', W')
    kb, ka = _KB.to(x.device).view(A * A, 1, A, A), _KA.to(x.device)
    out = torch.empty(1, k, h, w, dtype=x.dtype, device=x.device)
    rows = max(1, chunk_bytes // (A * A * c * tw * x.element_size()))
    for r0 in range(0, th, rows):
        r1 = min(th, r0 + rows)
        t = (r1 - r0) * tw
        v = F.conv2d(x[:, :, r0 * M : r1 * M + 2], kb, stride=M)  # (C, 36, r, tw)
        m = torch.bmm(u, v.view(c, A * A, t).transpose(0, 1))  # (36, K, T); bmm reads the strided view
        del v
        y = torch.matmul(ka, m.view(A * A, k * t)).view(M, M, k, r1 - r0, tw)
        del m
        y = y.permute(2, 3, 0, 4, 1).reshape(k, (r1 - r0) * M, tw * M)
        o0, o1 = r0 * M, min(h, r1 * M)
        out[0, :, o0:o1].copy_(y[:, : o1 - o0, :w])
    if bias is not None:
        out.add_(bias.view(1, -1, 1, 1))
    return out


def applies(x: torch.Tensor) -> bool:
    """Whether Winograd serves this input: CPU float32, one image, not spatially constant."""
    return x.device.type == "cpu" and x.dtype == torch.float32 and x.shape[0] == 1 and not spatially_constant(x)


class WinogradConv2d(nn.Conv2d):
    """An ``nn.Conv2d`` (same parameters) that runs F(4x4, 3x3) on CPU float32, one image at a time."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not applies(x):
            return super().forward(x)
        return conv3x3_valid(x, transform_weight(self.weight), self.bias, padding=self.padding)  # type: ignore[arg-type]


# Where Winograd is used (component -> submodules; "" = all). Not on the way into the attention:
# the scratch path's masked, renormalised softmax amplifies rounding of its input (two golden scratch
# cases leave the tolerance with Winograd in before_NL) and the HR path takes an argmax over
# similarities. After the attention (the non-local block's res blocks, after_NL) errors stay ~2e-4 on
# the golden photos, the same as the direct algorithm's (atol 2e-3).
FAST_PARTS: dict[str, tuple[str, ...]] = {
    "mapping_quality": ("",),
    "mapping_scratch": ("NL.res_block", "after_NL"),
    "mapping_patch_attention": ("after_NL",),
    "face_gen_256": ("",),
    "face_gen_512": ("",),
    # DDColor: the pixel decoder's 3x3 convs (896 -> 512 at 1/8, 448 -> 256 at 1/4: 0.36 -> 0.24 s at
    # 512 px). Golden cases: decoder outputs within 3.1e-5 (atol 1e-4), ab within 6.3e-4 (atol 2e-3).
    **{c: ("decoder.layers",) for c in ("ddcolor_modelscope", "ddcolor_paper", "ddcolor_artistic",
                                        "ddcolor_paper_tiny")},
}


def spatially_constant(x: torch.Tensor) -> bool:
    """True when every channel holds one value (e.g. the non-local output under an all-hole mask).

    The direct algorithm maps such an input to an exactly constant output, which the next instance
    norm turns into exact zeros; Winograd's position-dependent rounding would leave ~1e-7 noise that
    the norm (variance ~0) blows up to O(1). Such inputs therefore take the direct path.
    """
    flat = x.reshape(x.shape[0] * x.shape[1], -1)
    n = flat.shape[1]
    probe = flat[:, [0, n // 3, n // 2, n - 1]]  # a cheap necessary condition first (most maps fail it)
    if not torch.equal(probe, probe[:, :1].expand_as(probe)):
        return False
    lo, hi = torch.aminmax(flat, dim=1)
    return bool(torch.equal(lo, hi))


def eligible(m: nn.Module) -> bool:
    return (
        isinstance(m, nn.Conv2d)
        and type(m).forward is nn.Conv2d.forward  # a class with its own forward (or Winograd's) is kept
        and m.kernel_size == (3, 3)
        and m.stride == (1, 1)
        and m.dilation == (1, 1)
        and m.groups == 1
        and m.padding_mode == "zeros"
        and m.padding in ((0, 0), (1, 1))
        and min(m.in_channels, m.out_channels) >= MIN_CHANNELS
    )


def use_winograd(module: nn.Module) -> int:
    """Switch every eligible 3x3 convolution of ``module`` to Winograd; returns how many.

    ``nn.Conv2d`` layers change class; a convolution that computes its weight (DDColor's spectral-norm
    ``SNConv2d``) opts in with a ``winograd`` flag and its ``kernel_shape()`` (out, in, kh, kw).
    """
    n = 0
    for m in module.modules():
        if eligible(m):
            m.__class__ = WinogradConv2d
            n += 1
        elif hasattr(m, "winograd") and callable(getattr(m, "kernel_shape", None)):
            k, c, kh, kw = m.kernel_shape()
            if (kh, kw) == (3, 3) and min(k, c) >= MIN_CHANNELS:
                m.winograd = True
                n += 1
    return n
