"""SIGGRAPH 2017 user-guided colourisation network (``siggraph17-df00044c.pth``; siggraph17 SPEC §5).

Attribute names are the checkpoint's tensor names (``SIGGRAPHGenerator`` of richzhang/colorization).
Differences from the official forward that change no number (SPEC §5 quirks 3-4): the duplicated
tail is computed once, and the classification head ``model_class`` is kept only so the file loads
strictly (the official forward never uses it).
"""

from __future__ import annotations

import torch
from torch import nn


def _block(cin: int, cout: int, n: int, *, dilation: int = 1, lead_relu: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = [nn.ReLU()] if lead_relu else []
    for i in range(n):
        layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3, 1, dilation, dilation), nn.ReLU()]
    return nn.Sequential(*layers, nn.BatchNorm2d(cout))


class SIGGRAPHGenerator(nn.Module):
    """``forward(L, ab_hints, mask)`` -> ab in Lab units; H and W must be multiples of 8 (quirk 5)."""

    def __init__(self) -> None:
        super().__init__()
        self.model1 = _block(4, 64, 2)
        self.model2 = _block(64, 128, 2)
        self.model3 = _block(128, 256, 3)
        self.model4 = _block(256, 512, 3)
        self.model5 = _block(512, 512, 3, dilation=2)
        self.model6 = _block(512, 512, 3, dilation=2)
        self.model7 = _block(512, 512, 3)
        self.model8up = nn.Sequential(nn.ConvTranspose2d(512, 256, 4, 2, 1))
        self.model3short8 = nn.Sequential(nn.Conv2d(256, 256, 3, 1, 1))
        self.model8 = _block(256, 256, 2, lead_relu=True)
        self.model9up = nn.Sequential(nn.ConvTranspose2d(256, 128, 4, 2, 1))
        self.model2short9 = nn.Sequential(nn.Conv2d(128, 128, 3, 1, 1))
        self.model9 = _block(128, 128, 1, lead_relu=True)
        self.model10up = nn.Sequential(nn.ConvTranspose2d(128, 128, 4, 2, 1))
        self.model1short10 = nn.Sequential(nn.Conv2d(64, 128, 3, 1, 1))
        self.model10 = nn.Sequential(nn.ReLU(), nn.Conv2d(128, 128, 3, 1, 1), nn.LeakyReLU(0.2))
        self.model_class = nn.Sequential(nn.Conv2d(256, 529, 1))
        self.model_out = nn.Sequential(nn.Conv2d(128, 2, 1), nn.Tanh())

    @staticmethod
    def normalised_input(l: torch.Tensor, ab: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``cat((L - 50) / 100, ab / 110, mask)`` in this op order (SPEC §5 normalisation)."""
        return torch.cat(((l - 50) / 100, ab / 110, mask), dim=1)

    def forward(
        self, l: torch.Tensor, ab: torch.Tensor | None = None, mask: torch.Tensor | None = None,
        capture: dict[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        h, w = l.shape[-2:]
        if h % 8 or w % 8:
            raise ValueError(f"SIGGRAPH17 network input must be a multiple of 8 on each side, got {h}x{w}")
        if ab is None:
            ab = torch.cat((l * 0, l * 0), dim=1)
        if mask is None:
            mask = l * 0
        x0 = self.normalised_input(l, ab, mask)
        c1 = self.model1(x0)
        c2 = self.model2(c1[:, :, ::2, ::2])
        c3 = self.model3(c2[:, :, ::2, ::2])
        c4 = self.model4(c3[:, :, ::2, ::2])
        c5 = self.model5(c4)
        c6 = self.model6(c5)
        c7 = self.model7(c6)
        u8 = self.model8up(c7) + self.model3short8(c3)
        c8 = self.model8(u8)
        u9 = self.model9up(c8) + self.model2short9(c2)
        c9 = self.model9(u9)
        u10 = self.model10up(c9) + self.model1short10(c1)
        c10 = self.model10(u10)
        reg = self.model_out(c10)
        if capture is not None:
            capture.update({
                "model1_in": x0, "conv1_2": c1, "conv2_2": c2, "conv3_3": c3, "conv4_3": c4, "conv5_3": c5,
                "conv6_3": c6, "conv7_3": c7, "conv8_up": u8, "conv8_3": c8, "conv9_up": u9, "conv9_3": c9,
                "conv10_up": u10, "conv10_2": c10, "out_reg": reg, "model_class_out": self.model_class(c8),
            })
        return reg * 110

    def extra_repr(self) -> str:
        return "input (L, ab hints, mask) -> ab x110"

