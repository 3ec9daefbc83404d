"""Scratch-detection U-Net (global SPEC §4.2): depth 4, wf 6, BN, LeakyReLU(0.2), anti-aliased
down-sampling, bilinear up-sampling, reflection padding. Input (1,1,H,W) with H, W multiples of 16."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _lrelu() -> nn.LeakyReLU:
    return nn.LeakyReLU(0.2, True)


class BlurDownsample(nn.Module):
    """Anti-aliased stride-2 down-sampling: reflect pad 1, depthwise [1,2,1]x[1,2,1]/16 filter.

    The filter is a persistent buffer named ``filt`` because the official checkpoint stores it.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        # outer([1,2,1],[1,2,1]) / 16, exact in float32, made on the CPU even when the net is built on
        # the meta device: a meta-device op here imports torch's Python meta kernels (~1.5-2 s of a
        # cold start). The checkpoint's tensor replaces it on loading anyway.
        k = torch.tensor([1.0, 2.0, 1.0], dtype=torch.float64, device="cpu")
        filt = (torch.outer(k, k) / 16.0).to(torch.float32)
        self.register_buffer("filt", filt[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), self.filt, stride=2, groups=x.shape[1])


class ConvBlock(nn.Module):
    """2 x [RP1, Conv3, BN, LeakyReLU] (keys ``block.1/2/5/6``)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3), nn.BatchNorm2d(cout), _lrelu(),
            nn.ReflectionPad2d(1), nn.Conv2d(cout, cout, 3), nn.BatchNorm2d(cout), _lrelu(),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class UpBlock(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.up = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            nn.ReflectionPad2d(1),
            nn.Conv2d(cin, cout, 3),
        )
        self.conv_block = ConvBlock(cin, cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv_block(torch.cat([self.up(x), skip], 1))


class ScratchUNet(nn.Module):
    def __init__(self, depth: int = 4, wf: int = 6) -> None:
        super().__init__()
        c0 = 2**wf
        self.first = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(1, c0, 7), _lrelu())
        chans = [c0 * 2**i for i in range(depth + 1)]  # 64, 128, 256, 512, 1024
        self.down_sample = nn.ModuleList(
            nn.Sequential(
                nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3), nn.BatchNorm2d(c), _lrelu(), BlurDownsample(c)
            )
            for c in chans[:-1]
        )
        self.down_path = nn.ModuleList(ConvBlock(chans[i], chans[i + 1]) for i in range(depth))
        self.up_path = nn.ModuleList(UpBlock(chans[i + 1], chans[i]) for i in reversed(range(depth)))
        self.last = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(c0, 1, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised grayscale (1,1,H,W) in [-1,1] -> logits (1,1,H,W) (sigmoid not applied)."""
        x = self.first(x)
        skips = []
        for down, path in zip(self.down_sample, self.down_path):
            skips.append(x)
            x = path(down(x))
        for up, skip in zip(self.up_path, reversed(skips)):
            x = up(x, skip)
        return self.last(x)
