"""Deep Exemplar-based Colorization (Zhang et al., CVPR 2019): the three networks used at inference.

Attribute names are the checkpoint tensor names of ``reference/colorize/exemplar/manifests``
(``vgg19_conv.pth``, ``nonlocal_net_iter_76000.pth``, ``colornet_iter_76000.pth``), so the official
files load strictly. Architecture: exemplar SPEC §4.1 (VGG19), §4.3 (WarpNet), §4.5 (ColorVidNet).

The correlation of WarpNet (the N x N cosine-similarity matrix and its softmax) is not part of the
module: it lives in :func:`oldphoto.stages.exemplar.warp_colour`, which computes it in row blocks
so that memory stays bounded at large network sizes. :meth:`WarpNet.forward` returns the centred,
normalised theta/phi features that feed it.
"""

from __future__ import annotations

import sys

import torch
import torch.nn.functional as F
from torch import nn

EPS = sys.float_info.epsilon  # the official code adds Python's float epsilon to every L2 norm


def _conv(i: int, o: int, *, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(i, o, 3, 1, dilation, dilation)


class VGG19Caffe(nn.Module):
    """Caffe-converted VGG-19 convolutions (``data/vgg19_conv.pth``; SPEC §4.1, §3.5).

    :meth:`forward` takes RGB in [0, 1] and applies the Caffe pre-processing itself (BGR, mean
    subtraction, x255). It stops after conv5_2: the official forward also runs conv5_3/conv5_4 and
    pool5 but discards them, so skipping them changes no output. conv5_3/5_4 stay as attributes so
    the checkpoint loads strictly.
    """

    MEAN_BGR = (0.40760392, 0.45795686, 0.48501961)
    BLOCKS = ((1, 2), (2, 2), (3, 4), (4, 4), (5, 4))

    def __init__(self) -> None:
        super().__init__()
        chans = {1: 64, 2: 128, 3: 256, 4: 512, 5: 512}
        prev = 3
        for block, n in self.BLOCKS:
            for j in range(1, n + 1):
                setattr(self, f"conv{block}_{j}", _conv(prev, chans[block]))
                prev = chans[block]

    @classmethod
    def preprocess(cls, rgb: torch.Tensor) -> torch.Tensor:
        """``vgg_preprocess``: RGB [0,1] -> BGR minus the Caffe means, x255 (same op order)."""
        bgr = torch.cat((rgb[:, 2:3], rgb[:, 1:2], rgb[:, 0:1]), dim=1)
        mean = torch.tensor(cls.MEAN_BGR, dtype=bgr.dtype, device=bgr.device).view(1, 3, 1, 1)
        return (bgr - mean) * 255

    def forward(self, rgb: torch.Tensor) -> dict[str, torch.Tensor]:
        """ReLU outputs ``r12, r22, r32, r42, r52`` (relu of conv1_2 ... conv5_2)."""
        x = self.preprocess(rgb)
        out: dict[str, torch.Tensor] = {}
        for block, n in self.BLOCKS:
            if block > 1:
                x = F.max_pool2d(x, 2, 2)
            last = 2 if block == 5 else n
            for j in range(1, last + 1):
                x = F.relu(getattr(self, f"conv{block}_{j}")(x))
                if j == 2:
                    out[f"r{block}2"] = x
        return out


def _branch(cin: int, mid: int, *, stride2: bool = False, up_mid: bool = False, up_end: bool = False) -> nn.Sequential:
    """One WarpNet branch; layer indices match the checkpoint keys (``.1``, ``.3``, ``.5``/``.6``, ...)."""
    layers: list[nn.Module] = [
        nn.ReflectionPad2d(1), nn.Conv2d(cin, mid, 3, 1, 0), nn.InstanceNorm2d(mid), nn.PReLU(),
    ]
    if up_mid:
        layers.append(nn.Upsample(scale_factor=2))
    layers += [
        nn.ReflectionPad2d(1), nn.Conv2d(mid, 64, 3, 2 if stride2 else 1, 0), nn.InstanceNorm2d(64), nn.PReLU(),
    ]
    if up_end:
        layers.append(nn.Upsample(scale_factor=2))
    return nn.Sequential(*layers)


class ResidualBlock(nn.Module):
    """``o = IN(conv2(RP(p(IN(conv1(RP(x))))))); x = p(o + x)`` with one PReLU ``p`` used twice (§4.3)."""

    def __init__(self, c: int = 256) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, 1, 0)
        self.prelu = nn.PReLU()
        self.conv2 = nn.Conv2d(c, c, 3, 1, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.instance_norm(self.conv1(F.pad(x, (1, 1, 1, 1), mode="reflect")), eps=1e-5)
        out = F.instance_norm(self.conv2(F.pad(self.prelu(out), (1, 1, 1, 1), mode="reflect")), eps=1e-5)
        return self.prelu(out + x)


class WarpNet(nn.Module):
    """The non-local warping network's feature part (``nonlocal_net_iter_76000.pth``; SPEC §4.3)."""

    def __init__(self) -> None:
        super().__init__()
        self.layer2_1 = _branch(128, 128, stride2=True)
        self.layer3_1 = _branch(256, 128)
        self.layer4_1 = _branch(512, 256, up_end=True)
        self.layer5_1 = _branch(512, 256, up_mid=True, up_end=True)
        self.layer = nn.Sequential(ResidualBlock(), ResidualBlock(), ResidualBlock())
        self.theta = nn.Conv2d(256, 256, 1)
        self.phi = nn.Conv2d(256, 256, 1)

    def features(
        self, r22n: torch.Tensor, r32n: torch.Tensor, r42n: torch.Tensor, r52n: torch.Tensor,
        capture: dict[str, torch.Tensor] | None = None, prefix: str = "",
    ) -> torch.Tensor:
        """Branch outputs concatenated and refined by the residual blocks (one image)."""
        f2, f3, f4, f5 = self.layer2_1(r22n), self.layer3_1(r32n), self.layer4_1(r42n), self.layer5_1(r52n)
        if capture is not None:
            capture.update({f"{prefix}feature2_1": f2, f"{prefix}feature3_1": f3,
                            f"{prefix}feature4_1": f4, f"{prefix}feature5_1": f5})
        if f5.shape[2] != f2.shape[2] or f5.shape[3] != f2.shape[3]:
            f5 = F.pad(f5, (0, 0, 1, 1), "replicate")  # one row top and bottom (216 = 13*16 + 8 rows)
        out = self.layer(torch.cat((f2, f3, f4, f5), 1))
        if capture is not None:
            capture[f"{prefix}features"] = out
        return out

    @staticmethod
    def centred(x: torch.Tensor) -> torch.Tensor:
        """(1,256,h,w) -> (1,256,N): centred over positions, divided by the per-position L2 norm + eps."""
        x = x.view(x.shape[0], x.shape[1], -1)
        x = x - x.mean(dim=-1, keepdim=True)
        return torch.div(x, torch.norm(x, 2, 1, keepdim=True) + EPS)

    def forward(
        self, a: tuple[torch.Tensor, ...], b: tuple[torch.Tensor, ...], capture: dict[str, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised VGG features (r22, r32, r42, r52) of target ``a`` and reference ``b`` -> theta_n, phi_n."""
        fa = self.features(*a, capture=capture, prefix="A_")
        fb = self.features(*b, capture=capture, prefix="B_")
        return self.centred(self.theta(fa)), self.centred(self.phi(fb))


class ColorVidNet(nn.Module):
    """The colour network (``colornet_iter_76000.pth``; SPEC §4.5): 7 channels in, ab in (-128, 128) out.

    The official constructor replaces its BatchNorm/ConvTranspose layers by InstanceNorm and
    ``Sequential(nearest x2, conv)``; only the replacements are modelled (``conv8_1.1`` etc.).
    """

    def __init__(self, ic: int = 7) -> None:
        super().__init__()
        self.conv1_1 = nn.Sequential(_conv(ic, 32), nn.ReLU(), _conv(32, 64))
        self.conv1_2 = _conv(64, 64)
        self.conv1_2norm_ss = nn.Conv2d(64, 64, 1, 2, bias=False, groups=64)
        self.conv2_1 = _conv(64, 128)
        self.conv2_2 = _conv(128, 128)
        self.conv2_2norm_ss = nn.Conv2d(128, 128, 1, 2, bias=False, groups=128)
        self.conv3_1 = _conv(128, 256)
        self.conv3_2 = _conv(256, 256)
        self.conv3_3 = _conv(256, 256)
        self.conv3_3norm_ss = nn.Conv2d(256, 256, 1, 2, bias=False, groups=256)
        self.conv4_1 = _conv(256, 512)
        self.conv4_2 = _conv(512, 512)
        self.conv4_3 = _conv(512, 512)
        for k in (5, 6):
            for j in (1, 2, 3):
                setattr(self, f"conv{k}_{j}", _conv(512, 512, dilation=2))
        self.conv7_1 = _conv(512, 512)
        self.conv7_2 = _conv(512, 512)
        self.conv7_3 = _conv(512, 512)
        self.conv8_1 = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), _conv(512, 256))
        self.conv3_3_short = _conv(256, 256)
        self.conv8_2 = _conv(256, 256)
        self.conv8_3 = _conv(256, 256)
        self.conv9_1 = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), _conv(256, 128))
        self.conv2_2_short = _conv(128, 128)
        self.conv9_2 = _conv(128, 128)
        self.conv10_1 = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), _conv(128, 128))
        self.conv1_2_short = _conv(64, 128)
        self.conv10_2 = _conv(128, 128)
        self.conv10_ab = nn.Conv2d(128, 2, 1, 1)

    def forward(self, x: torch.Tensor, capture: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        r = F.relu

        def norm(t: torch.Tensor) -> torch.Tensor:
            return F.instance_norm(t, eps=1e-5)

        c12 = r(self.conv1_2(r(self.conv1_1(x))))
        n1 = norm(c12)
        c22 = r(self.conv2_2(r(self.conv2_1(self.conv1_2norm_ss(n1)))))
        n2 = norm(c22)
        c33 = r(self.conv3_3(r(self.conv3_2(r(self.conv3_1(self.conv2_2norm_ss(n2)))))))
        n3 = norm(c33)
        n4 = norm(r(self.conv4_3(r(self.conv4_2(r(self.conv4_1(self.conv3_3norm_ss(n3))))))))
        n5 = norm(r(self.conv5_3(r(self.conv5_2(r(self.conv5_1(n4)))))))
        n6 = norm(r(self.conv6_3(r(self.conv6_2(r(self.conv6_1(n5)))))))
        n7 = norm(r(self.conv7_3(r(self.conv7_2(r(self.conv7_1(n6)))))))
        c81 = r(self.conv8_1(n7) + self.conv3_3_short(n3))
        n8 = norm(r(self.conv8_3(r(self.conv8_2(c81)))))
        c91 = r(self.conv9_1(n8) + self.conv2_2_short(n2))
        n9 = norm(r(self.conv9_2(c91)))
        c101 = r(self.conv10_1(n9) + self.conv1_2_short(n1))
        c102 = F.leaky_relu(self.conv10_2(c101), 0.2)
        pre = self.conv10_ab(c102)
        if capture is not None:
            capture.update({"conv4_3norm": n4, "conv7_3norm": n7, "conv10_ab": pre})
        return torch.tanh(pre) * 128
