"""SPADE face-enhancement generator (face SPEC section c), for the 256 and the 512 checkpoint.

Attribute names are the checkpoint tensor names of ``Setting_9_epoch_100`` / ``FaceSR_512``
(``manifests/*.json``), so ``load_state_dict(strict=True)`` of the official files works unchanged.
The network is inference-only: batch norm always uses its running statistics and spectral
normalisation uses the stored ``u``/``v`` vectors without power iteration, which is exactly what the
official code computes in ``eval()`` mode (SPEC c, "Spectral norm at inference", "Eval behaviour").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` initialised to zeros: every weight comes from a checkpoint, and torch's random
    kaiming init of the 92 M generator values would cost seconds per build for nothing."""

    def reset_parameters(self) -> None:
        nn.init.zeros_(self.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)


class SNConv2d(nn.Module):
    """Conv2d with spectral normalisation as stored by ``torch.nn.utils.spectral_norm`` (SPEC c).

    The checkpoint holds ``weight_orig``, ``weight_u`` and ``weight_v`` (no ``weight``). In eval the
    effective weight is ``weight_orig / sigma`` with ``sigma = u . (W v)``, W = weight_orig reshaped to
    (out, in*kh*kw); u and v are used as stored, so the result does not depend on call history.
    """

    def __init__(self, cin: int, cout: int, kernel: int, *, bias: bool = True) -> None:
        super().__init__()
        self.padding = kernel // 2
        if bias:
            self.bias = nn.Parameter(torch.zeros(cout))
        else:
            self.register_parameter("bias", None)
        self.weight_orig = nn.Parameter(torch.zeros(cout, cin, kernel, kernel))  # loaded from a checkpoint
        self.register_buffer("weight_u", torch.zeros(cout))
        self.register_buffer("weight_v", torch.zeros(cin * kernel * kernel))

    def effective_weight(self) -> Tensor:
        # Same operations as torch's SpectralNorm.compute_weight in eval (mv, dot, divide), in float32
        # also for a float16 network (``half``): sigma sums up to 9216 products.
        w = self.weight_orig.float()
        sigma = torch.dot(self.weight_u.float(), torch.mv(w.reshape(w.shape[0], -1), self.weight_v.float()))
        return (w / sigma).to(self.weight_orig.dtype)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.effective_weight(), self.bias, padding=self.padding)


class FrozenBatchNorm(nn.Module):
    """Affine-free batch norm in eval (SPEC c, SPADE): ``(x - running_mean) / sqrt(running_var + 1e-5)``.

    Stands in for the official SynchronizedBatchNorm2d(affine=False); on one device in eval that is
    exactly ``F.batch_norm`` with the running statistics, whatever the batch composition.
    """

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.int64))

    def forward(self, x: Tensor) -> Tensor:
        return F.batch_norm(x, self.running_mean, self.running_var, None, None, False, 0.0, self.eps)


def _resize_bilinear(x: Tensor, size: tuple[int, int]) -> Tensor:
    """``F.interpolate`` bilinear, align_corners False, no antialias; identity at the same size."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x  # the interpolation weights are exactly 0/1 there, so this is bit-identical
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class SPADE(nn.Module):
    """SPADE(C) (SPEC c): normalised x modulated by ``1 + gamma`` and ``beta`` from the degraded image."""

    def __init__(self, channels: int, label_nc: int = 3, hidden: int = 128) -> None:
        super().__init__()
        self.param_free_norm = FrozenBatchNorm(channels)
        self.mlp_shared = nn.Sequential(Conv2d(label_nc, hidden, 3, padding=1), nn.ReLU())
        self.mlp_gamma = Conv2d(hidden, channels, 3, padding=1)
        self.mlp_beta = Conv2d(hidden, channels, 3, padding=1)

    def forward(self, x: Tensor, degraded: Tensor) -> Tensor:
        normalized = self.param_free_norm(x)
        cond = _resize_bilinear(degraded, (x.shape[-2], x.shape[-1]))
        actv = self.mlp_shared(cond)
        gamma = self.mlp_gamma(actv)
        beta = self.mlp_beta(actv)
        return normalized * (1 + gamma) + beta


class SPADEResnetBlock(nn.Module):
    """SPADE residual block fin -> fout (SPEC c); learned 1x1 bias-free shortcut when fin != fout."""

    def __init__(self, fin: int, fout: int) -> None:
        super().__init__()
        fmid = min(fin, fout)
        self.learned_shortcut = fin != fout
        self.conv_0 = SNConv2d(fin, fmid, 3)
        self.conv_1 = SNConv2d(fmid, fout, 3)
        if self.learned_shortcut:
            self.conv_s = SNConv2d(fin, fout, 1, bias=False)
        self.norm_0 = SPADE(fin)
        self.norm_1 = SPADE(fmid)
        if self.learned_shortcut:
            self.norm_s = SPADE(fin)

    def forward(self, x: Tensor, degraded: Tensor) -> Tensor:
        x_s = self.conv_s(self.norm_s(x, degraded)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, degraded), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, degraded), 0.2))
        return x_s + dx


BLOCK_NAMES = ("head_0", "G_middle_0", "G_middle_1", "up_0", "up_1", "up_2", "up_3")


class SPADEGenerator(nn.Module):
    """Progressive SPADE generator, ngf 64, ``normal`` upsampling (SPEC c), for S = 256 or 512.

    Input: N x 3 x S x S in [-1, 1] (``2 * u8 / 255 - 1``); output: tanh image of the same size. The
    same tensor is both the latent start (bilinear thumbnail at S/32 through ``fc``) and the SPADE
    condition of every block, so the whole network is deterministic (no random z).
    """

    def __init__(self, size: int = 256, ngf: int = 64) -> None:
        super().__init__()
        if size % 32:
            raise ValueError(f"face generator size must be a multiple of 32, got {size}")
        self.size = size
        self.latent_hw = size // 32
        self.fc = Conv2d(3, 16 * ngf, 3, padding=1)
        self.head_0 = SPADEResnetBlock(16 * ngf, 16 * ngf)
        self.G_middle_0 = SPADEResnetBlock(16 * ngf, 16 * ngf)
        self.G_middle_1 = SPADEResnetBlock(16 * ngf, 16 * ngf)
        self.up_0 = SPADEResnetBlock(16 * ngf, 8 * ngf)
        self.up_1 = SPADEResnetBlock(8 * ngf, 4 * ngf)
        self.up_2 = SPADEResnetBlock(4 * ngf, 2 * ngf)
        self.up_3 = SPADEResnetBlock(2 * ngf, 1 * ngf)
        self.conv_img = Conv2d(ngf, 3, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.run(x)

    def run(self, x: Tensor, activations: dict[str, Tensor] | None = None) -> Tensor:
        """The forward pass; when ``activations`` is a dict, every block output is stored in it."""
        if x.shape[-2:] != (self.size, self.size):
            raise ValueError(f"expected a {self.size}x{self.size} input, got {tuple(x.shape)}")

        def keep(name: str, t: Tensor) -> Tensor:
            if activations is not None:
                activations[name] = t
            return t

        h = _resize_bilinear(x, (self.latent_hw, self.latent_hw))
        h = keep("fc", self.fc(h))
        h = keep("head_0", self.head_0(h, x))
        h = F.interpolate(h, scale_factor=2, mode="nearest")
        h = keep("G_middle_0", self.G_middle_0(h, x))
        h = keep("G_middle_1", self.G_middle_1(h, x))
        for name in ("up_0", "up_1", "up_2", "up_3"):
            h = F.interpolate(h, scale_factor=2, mode="nearest")
            h = keep(name, getattr(self, name)(h, x))
        h = keep("conv_img", self.conv_img(F.leaky_relu(h, 0.2)))
        return torch.tanh(h)


def to_generator_input(crop_u8: Tensor) -> Tensor:
    """SPEC c: ``ToTensor`` + ``Normalize(0.5, 0.5)`` = ``2 * float32(u8 / 255) - 1``; N x S x S x 3 u8 -> NCHW."""
    x = crop_u8.permute(0, 3, 1, 2).to(torch.float32) / 255.0
    return (x - 0.5) / 0.5


def to_uint8(out: Tensor) -> Tensor:
    """SPEC c: torchvision ``save_image((g + 1) / 2)`` = floor(clamp(v * 255 + 0.5, 0, 255)); NCHW -> NHWC u8."""
    v = (out + 1) / 2
    return v.mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
