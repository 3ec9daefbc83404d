"""ConvNeXt encoder of DDColor (colorize SPEC §4.2), T and L sizes.

Attribute names equal the checkpoint's (``encoder.arch.downsample_layers.0.0.weight``, ...). The
forward returns the four hooked features ``F_i = norm_i(stage_i output)`` that the official code
captures with forward hooks; the un-normalised stream continues to the next stage. The final
``norm`` LayerNorm is kept for strict loading but not computed: its result is discarded by the
official code and cannot influence the output (SPEC §2.2, §7.8).
"""

from __future__ import annotations

import torch
from torch import nn

from ..progress import tick
from .onednn_linear import linear

SIZES = {
    "tiny": ((3, 3, 9, 3), (96, 192, 384, 768)),
    "large": ((3, 3, 27, 3), (192, 384, 768, 1536)),
}


class LayerNormChannelsFirst(nn.Module):
    """The hand-written channels-first LayerNorm of ConvNeXt, in the official op order (SPEC §4.2)."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class Block(nn.Module):
    """dwconv 7x7 -> LayerNorm (channels last) -> Linear 4C -> GELU -> Linear C -> gamma; residual.

    The official op sequence, laid out for the CPU's caches: the stream is kept channels-last, so the
    two permutes are views (the official NCHW stream copies twice per block), and everything after
    the depthwise conv is per pixel, so it runs in pieces of ``MLP_ROWS`` pixels: the 4C hidden map
    of a stage-0 block at 512 px is 50 MB whole but 3 MB a piece, which stays in cache between the
    two GEMMs and GELU (stage 0: 105 -> 62 ms a block on 2 AVX-512 cores; the large model's encoder
    2.2 -> 2.0 s). Per-pixel work in pieces changes no value beyond BLAS blocking (< 1e-6 here).
    """

    MLP_ROWS = 1024

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x.contiguous(memory_format=torch.channels_last)).permute(0, 2, 3, 1)
        n, h, w, c = y.shape
        pixels = y.reshape(-1, c)
        out = torch.empty_like(pixels)
        for r0 in range(0, pixels.shape[0], self.MLP_ROWS):
            piece = self.norm(pixels[r0 : r0 + self.MLP_ROWS])
            piece = linear(piece, self.pwconv1.weight, self.pwconv1.bias, "gelu")
            piece = linear(piece, self.pwconv2.weight, self.pwconv2.bias)
            torch.mul(self.gamma, piece, out=out[r0 : r0 + self.MLP_ROWS])
        return x + out.view(n, h, w, c).permute(0, 3, 1, 2)


class ConvNeXt(nn.Module):
    def __init__(self, size: str) -> None:
        super().__init__()
        depths, dims = SIZES[size]
        self.downsample_layers = nn.ModuleList(
            [nn.Sequential(nn.Conv2d(3, dims[0], kernel_size=4, stride=4), LayerNormChannelsFirst(dims[0]))]
            + [
                nn.Sequential(LayerNormChannelsFirst(dims[i - 1]), nn.Conv2d(dims[i - 1], dims[i], 2, stride=2))
                for i in range(1, 4)
            ]
        )
        self.stages = nn.ModuleList(nn.Sequential(*(Block(dims[i]) for _ in range(depths[i]))) for i in range(4))
        for i in range(4):
            setattr(self, f"norm{i}", LayerNormChannelsFirst(dims[i]))
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)  # computed by the official code, result unused

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for i in range(4):
            x = self.downsample_layers[i](x).contiguous(memory_format=torch.channels_last)  # see Block
            for block in self.stages[i]:
                tick()
                x = block(x)
            feats.append(getattr(self, f"norm{i}")(x))
        return feats


class Encoder(nn.Module):
    """The official ``Encoder`` wrapper: the ConvNeXt is its attribute ``arch``."""

    def __init__(self, size: str) -> None:
        super().__init__()
        self.arch = ConvNeXt(size)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.arch(x)
