"""RetinaFace with a ResNet-50 trunk (face SPEC section e), written without torchvision.

The official pipeline detects faces with dlib, which cannot be installed here; we use the RetinaFace
model of PyPI ``retinaface-pytorch`` 0.0.8 (``resnet50_2020-07-20``) instead, whose five landmarks are
in the official order (SPEC e). Attribute names reproduce that package's module tree -- a
torchvision ResNet-50 as ``body`` (up to layer4, no ``fc``), ``fpn``, ``ssh1..3`` and the 1x1 heads --
so its state dict loads strictly (456 tensors, ``manifests/retinaface_resnet50_2020-07-20.json``).

``forward`` returns the raw head outputs ``(loc N x P x 4, conf N x P x 2 logits, landmarks N x P x 10)``
in prior order (level 8, 16, 32; row-major cells; 2 anchors per cell); decoding lives in
``oldphoto.stages.face_detect``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` initialised to zeros: the weights always come from a checkpoint, so torch's
    random init (about a second for 27 M values on a small CPU) would be wasted."""

    def reset_parameters(self) -> None:
        nn.init.zeros_(self.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)


class Bottleneck(nn.Module):
    """torchvision ResNet-50 v1.5 bottleneck (stride on the 3x3 conv), eval batch norm."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: bool = False) -> None:
        super().__init__()
        self.conv1 = Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = (
            nn.Sequential(Conv2d(inplanes, planes * 4, 1, stride=stride, bias=False), nn.BatchNorm2d(planes * 4))
            if downsample
            else None
        )

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = self.downsample(x) if self.downsample is not None else x
        return F.relu(out + identity)


class ResNet50Body(nn.Module):
    """ResNet-50 trunk returning layer2/3/4 (strides 8/16/32; 512/1024/2048 channels).

    Stands in for ``IntermediateLayerGetter(resnet50(), {"layer2": 1, "layer3": 2, "layer4": 3})``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.layer1 = self._layer(64, 64, 3, 1)
        self.layer2 = self._layer(256, 128, 4, 2)
        self.layer3 = self._layer(512, 256, 6, 2)
        self.layer4 = self._layer(1024, 512, 3, 2)

    @staticmethod
    def _layer(inplanes: int, planes: int, blocks: int, stride: int) -> nn.Sequential:
        layers = [Bottleneck(inplanes, planes, stride, downsample=True)]
        layers += [Bottleneck(planes * 4, planes) for _ in range(blocks - 1)]
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> list[Tensor]:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.max_pool2d(x, 3, stride=2, padding=1)
        c2 = self.layer2(self.layer1(x))
        c3 = self.layer3(c2)
        c4 = self.layer4(c3)
        return [c2, c3, c4]


def conv_bn(cin: int, cout: int, kernel: int, relu: bool) -> nn.Sequential:
    """``Sequential(conv (no bias), BN[, ReLU])``: keys ``<name>.0.weight`` and ``<name>.1.*``.

    The package uses LeakyReLU with slope 0 (out_channels 256 > 64), i.e. a plain ReLU.
    """
    layers: list[nn.Module] = [Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False), nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class FPN(nn.Module):
    """Feature pyramid: 1x1 laterals, nearest top-down upsampling, 3x3 merges (SPEC e)."""

    def __init__(self, in_channels: tuple[int, int, int] = (512, 1024, 2048), out_channels: int = 256) -> None:
        super().__init__()
        self.output1 = conv_bn(in_channels[0], out_channels, 1, relu=True)
        self.output2 = conv_bn(in_channels[1], out_channels, 1, relu=True)
        self.output3 = conv_bn(in_channels[2], out_channels, 1, relu=True)
        self.merge1 = conv_bn(out_channels, out_channels, 3, relu=True)
        self.merge2 = conv_bn(out_channels, out_channels, 3, relu=True)

    def forward(self, feats: list[Tensor]) -> list[Tensor]:
        o1 = self.output1(feats[0])
        o2 = self.output2(feats[1])
        o3 = self.output3(feats[2])
        o2 = self.merge2(o2 + F.interpolate(o3, size=o2.shape[-2:], mode="nearest"))
        o1 = self.merge1(o1 + F.interpolate(o2, size=o1.shape[-2:], mode="nearest"))
        return [o1, o2, o3]


class SSH(nn.Module):
    """Single-stage headless context module: 3x3, 5x5 (two 3x3) and 7x7 (three 3x3) branches.

    Names keep the package's spelling, including the lowercase ``conv7x7_3``.
    """

    def __init__(self, cin: int = 256, cout: int = 256) -> None:
        super().__init__()
        self.conv3X3 = conv_bn(cin, cout // 2, 3, relu=False)
        self.conv5X5_1 = conv_bn(cin, cout // 4, 3, relu=True)
        self.conv5X5_2 = conv_bn(cout // 4, cout // 4, 3, relu=False)
        self.conv7X7_2 = conv_bn(cout // 4, cout // 4, 3, relu=True)
        self.conv7x7_3 = conv_bn(cout // 4, cout // 4, 3, relu=False)

    def forward(self, x: Tensor) -> Tensor:
        c3 = self.conv3X3(x)
        c5_1 = self.conv5X5_1(x)
        c5 = self.conv5X5_2(c5_1)
        c7 = self.conv7x7_3(self.conv7X7_2(c5_1))
        return F.relu(torch.cat([c3, c5, c7], dim=1))


class _Head(nn.Module):
    """1x1 conv head; output reshaped to N x (H*W*anchors) x ``per_anchor``."""

    def __init__(self, cin: int, per_anchor: int, anchors: int = 2) -> None:
        super().__init__()
        self.per_anchor = per_anchor
        self.conv1x1 = Conv2d(cin, anchors * per_anchor, 1)

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv1x1(x).permute(0, 2, 3, 1).contiguous()
        return out.view(out.shape[0], -1, self.per_anchor)


class RetinaFace(nn.Module):
    """RetinaFace-ResNet50 of ``retinaface-pytorch`` (``resnet50_2020-07-20``), SPEC e.

    Input: N x 3 x H x W RGB, ImageNet-normalised. Output: raw ``(loc, conf logits, landmarks)``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.body = ResNet50Body()
        self.fpn = FPN()
        self.ssh1 = SSH()
        self.ssh2 = SSH()
        self.ssh3 = SSH()
        self.ClassHead = nn.ModuleList([_Head(256, 2) for _ in range(3)])
        self.BboxHead = nn.ModuleList([_Head(256, 4) for _ in range(3)])
        self.LandmarkHead = nn.ModuleList([_Head(256, 10) for _ in range(3)])

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        fpn = self.fpn(self.body(x))
        feats = [self.ssh1(fpn[0]), self.ssh2(fpn[1]), self.ssh3(fpn[2])]
        loc = torch.cat([self.BboxHead[i](f) for i, f in enumerate(feats)], dim=1)
        conf = torch.cat([self.ClassHead[i](f) for i, f in enumerate(feats)], dim=1)
        ldm = torch.cat([self.LandmarkHead[i](f) for i, f in enumerate(feats)], dim=1)
        return loc, conf, ldm
