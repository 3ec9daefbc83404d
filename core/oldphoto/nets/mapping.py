"""Latent mapping networks (global SPEC §6.2–6.4; paper §3.2–3.3): translate the latent code of an
old photo (VAE_A space) into the latent space of clean photos (VAE_B)."""

from __future__ import annotations

import torch
from torch import nn

from .attention import NonLocalBlock2DWithMaskRes, PatchAttention
from .blocks import ResnetBlock, mapping_head, mapping_tail


class MappingQuality(nn.Module):
    """``Mapping_Model`` for unstructured degradation (no mask). Keys ``model.N``."""

    def __init__(self) -> None:
        super().__init__()
        self.model = nn.Sequential(*mapping_head(), *(ResnetBlock(512) for _ in range(6)), *mapping_tail())

    def forward(self, z: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.model(z)


class MappingScratch(nn.Module):
    """``Mapping_Model_with_mask``: conv head, partial non-local block fed the scratch mask, tail."""

    def __init__(self) -> None:
        super().__init__()
        self.before_NL = nn.Sequential(*mapping_head())
        self.NL = NonLocalBlock2DWithMaskRes(512)
        self.after_NL = nn.Sequential(*(ResnetBlock(512) for _ in range(6)), *mapping_tail())

    def forward(self, z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.after_NL(self.NL(self.before_NL(z), mask))


class MappingPatchAttention(nn.Module):
    """``Mapping_Model_with_mask_2`` (HR): three patch-attention scales (8, 4, 2) with res blocks between."""

    def __init__(self) -> None:
        super().__init__()
        self.before_NL = nn.Sequential(*mapping_head(), ResnetBlock(512), ResnetBlock(512))
        self.NL_scale_1 = PatchAttention(512, 8)
        self.res_block_1 = nn.Sequential(ResnetBlock(512), ResnetBlock(512))
        self.NL_scale_2 = PatchAttention(512, 4)
        self.res_block_2 = nn.Sequential(ResnetBlock(512), ResnetBlock(512))
        self.NL_scale_3 = PatchAttention(512, 2)
        self.after_NL = nn.Sequential(ResnetBlock(512), ResnetBlock(512), *mapping_tail())

    def forward(self, z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.before_NL(z)
        x = self.res_block_1(self.NL_scale_1(x, mask))
        x = self.res_block_2(self.NL_scale_2(x, mask))
        x = self.NL_scale_3(x, mask)
        return self.after_NL(x)
