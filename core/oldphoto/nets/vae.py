"""VAE generator ``GlobalGenerator_DCDCv2`` (global SPEC §6.1).

The same graph serves VAE_A (only its encoder runs: old photo -> latent) and VAE_B (only its decoder
runs: latent -> clean photo). The checkpoint holds both halves, so both are built and loaded strictly.
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import ResnetBlock, instance_norm


class VAEGenerator(nn.Module):
    def __init__(self, channels: int = 64) -> None:
        super().__init__()
        c = channels
        self.encoder = nn.Sequential(
            nn.ReflectionPad2d(3),
            nn.Conv2d(3, c, 7),
            instance_norm(c),
            nn.ReLU(True),
            nn.Conv2d(c, c, 4, stride=2, padding=1),
            instance_norm(c),
            nn.ReLU(True),
            nn.Conv2d(c, c, 4, stride=2, padding=1),
            instance_norm(c),
            nn.ReLU(True),
            ResnetBlock(c),
            ResnetBlock(c),
            ResnetBlock(c),
            ResnetBlock(c),
        )
        self.decoder = nn.Sequential(
            ResnetBlock(c),
            ResnetBlock(c),
            ResnetBlock(c),
            ResnetBlock(c),
            nn.ConvTranspose2d(c, c, 4, stride=2, padding=1),
            instance_norm(c),
            nn.ReLU(True),
            nn.ConvTranspose2d(c, c, 4, stride=2, padding=1),
            instance_norm(c),
            nn.ReLU(True),
            nn.ReflectionPad2d(3),
            nn.Conv2d(c, 3, 7),
            nn.Tanh(),
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(1,3,H,W) in [-1,1], H and W multiples of 4 -> latent (1,64,H/4,W/4)."""
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)
