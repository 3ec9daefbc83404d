"""Building blocks shared by the Global networks (global SPEC §6)."""

from __future__ import annotations

import torch
from torch import nn


def instance_norm(channels: int) -> nn.InstanceNorm2d:
    """InstanceNorm2d(affine=False, track_running_stats=False): owns no tensors, per-image statistics."""
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


class ResnetBlock(nn.Module):
    """``x + [RP1, Conv3, IN, ReLU, RP1, Conv3, IN](x)`` — keys ``conv_block.1`` and ``conv_block.5`` (SPEC §6)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            instance_norm(channels),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            instance_norm(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


def conv_in_relu(cin: int, cout: int) -> list[nn.Module]:
    """3x3 stride-1 conv with zero padding 1, IN, ReLU (the mapping networks' plain blocks, SPEC §6.2)."""
    return [nn.Conv2d(cin, cout, 3, padding=1), instance_norm(cout), nn.ReLU(True)]


def mapping_head() -> list[nn.Module]:
    """64 -> 128 -> 256 -> 512 -> 512 conv blocks that open every mapping network (keys 0, 3, 6, 9)."""
    return [*conv_in_relu(64, 128), *conv_in_relu(128, 256), *conv_in_relu(256, 512), *conv_in_relu(512, 512)]


def mapping_tail() -> list[nn.Module]:
    """512 -> 512 -> 256 -> 128 blocks and the final 128 -> 64 conv (no norm, no activation)."""
    return [*conv_in_relu(512, 512), *conv_in_relu(512, 256), *conv_in_relu(256, 128), nn.Conv2d(128, 64, 3, padding=1)]
