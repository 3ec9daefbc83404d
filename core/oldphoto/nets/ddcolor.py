"""DDColor (Kang et al., ICCV 2023): ConvNeXt encoder, pixel decoder, query-based colour decoder.

colorize SPEC §4 (``reference/colorize/ddcolor/SPEC.md``). Attribute names equal the checkpoint's
tensor names (manifests ``ddcolor_paper_tiny.json`` / ``ddcolor_large.json``), so the official
state dicts load strictly. Input: (1, 3, H, W) grey RGB in [0, 1] (H, W multiples of 32); output:
(1, 2, H, W) Lab a and b, unbounded.

Spectral norm (SPEC §4.6): the official layers are ``torch.nn.utils.spectral_norm`` in eval mode,
which divide ``weight_orig`` by ``sigma = u . (W v)`` with the stored ``u`` and ``v`` and never update
them. :class:`SNConv2d` does exactly that (same tensor names, same ops), without the training-time
power iteration that eval never runs.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..progress import tick
from . import winograd
from .convnext import SIZES, Encoder

NUM_QUERIES = 100
HIDDEN = 256
NUM_LAYERS = 9
NUM_LEVELS = 3


class SNConv2d(nn.Module):
    """Conv2d under eval-mode spectral norm: weight = weight_orig / dot(u, weight_orig.reshape(out, -1) @ v)."""

    def __init__(self, cin: int, cout: int, kernel_size: int, *, padding: int = 0, bias: bool = False) -> None:
        super().__init__()
        if bias:
            self.bias = nn.Parameter(torch.zeros(cout))
        else:
            self.bias = None
        self.weight_orig = nn.Parameter(torch.empty(cout, cin, kernel_size, kernel_size))
        self.register_buffer("weight_u", torch.empty(cout))
        self.register_buffer("weight_v", torch.empty(cin * kernel_size * kernel_size))
        self.padding = padding

    winograd = False
    """Set by :func:`~oldphoto.nets.winograd.use_winograd` (CPU, ``fast_convs``) for the wide 3x3 convs."""

    def weight(self) -> torch.Tensor:
        w = self.weight_orig
        sigma = torch.dot(self.weight_u, torch.mv(w.reshape(w.shape[0], -1), self.weight_v))
        return w / sigma

    def kernel_shape(self) -> tuple[int, int, int, int]:
        return tuple(self.weight_orig.shape)  # type: ignore[return-value]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tick()
        if self.winograd and winograd.applies(x):
            pad = (self.padding, self.padding)
            return winograd.conv3x3_valid(x, winograd.transform_weight(self.weight()), self.bias, padding=pad)
        return F.conv2d(x, self.weight(), self.bias, padding=self.padding)


class Blur(nn.Module):
    """ReplicationPad2d((1, 0, 1, 0)) then AvgPool2d(2, stride 1) (SPEC §4.3)."""

    def __init__(self) -> None:
        super().__init__()
        self.pad = nn.ReplicationPad2d((1, 0, 1, 0))
        self.blur = nn.AvgPool2d(2, stride=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blur(self.pad(x))


class PixelShuffleICNR(nn.Module):
    """``up = Blur(PixelShuffle(ReLU(conv(x))))``; ``conv`` = Sequential(SNConv 1x1 [, BN]) (keys ``conv.0/1``)."""

    def __init__(self, cin: int, cout: int, scale: int, *, bn: bool, bias: bool) -> None:
        super().__init__()
        layers: list[nn.Module] = [SNConv2d(cin, cout * scale * scale, 1, bias=bias)]
        if bn:
            layers.append(nn.BatchNorm2d(cout * scale * scale))
        self.conv = nn.Sequential(*layers)
        self.shuf = nn.PixelShuffle(scale)
        self.blur = Blur()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blur(self.shuf(F.relu(self.conv(x))))


class UnetBlockWide(nn.Module):
    """Up-sample ``up_in`` (PixelShuffleICNR), concat the BN'd skip, ReLU, SNConv 3x3 -> ReLU -> BN."""

    def __init__(self, up_in_c: int, x_in_c: int, n_out: int) -> None:
        super().__init__()
        self.shuf = PixelShuffleICNR(up_in_c, n_out, 2, bn=True, bias=False)
        self.bn = nn.BatchNorm2d(x_in_c)
        self.conv = nn.Sequential(SNConv2d(n_out + x_in_c, n_out, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(n_out))

    def forward(self, up_in: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        up = self.shuf(up_in)
        return self.conv(F.relu(torch.cat([up, self.bn(skip)], dim=1)))


def sine_position(h: int, w: int, *, device: torch.device | None = None) -> torch.Tensor:
    """DETR's normalised sine position encoding of an h x w map, channel-major (256, h*w) (SPEC §4.4)."""
    ones = torch.ones((1, h, w), dtype=torch.float32, device=device)
    y_embed = ones.cumsum(1, dtype=torch.float32)
    x_embed = ones.cumsum(2, dtype=torch.float32)
    scale = 2 * math.pi
    y_embed = y_embed / (y_embed[:, -1:, :] + 1e-6) * scale
    x_embed = x_embed / (x_embed[:, :, -1:] + 1e-6) * scale
    n = HIDDEN // 2
    dim_t = torch.arange(n, dtype=torch.float32, device=device)
    dim_t = 10000 ** (2 * (dim_t // 2) / n)
    pos_x = x_embed[:, :, :, None] / dim_t
    pos_y = y_embed[:, :, :, None] / dim_t
    pos_x = torch.stack((pos_x[:, :, :, 0::2].sin(), pos_x[:, :, :, 1::2].cos()), dim=4).flatten(3)
    pos_y = torch.stack((pos_y[:, :, :, 0::2].sin(), pos_y[:, :, :, 1::2].cos()), dim=4).flatten(3)
    return torch.cat((pos_y, pos_x), dim=3)[0].reshape(h * w, -1).t().contiguous()


def attention(mha: nn.MultiheadAttention, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """``mha(query, key, value)[0]`` for (L, 1, E) inputs without masks, as its slow path computes it.

    Same ops in the same order as ``F.multi_head_attention_forward`` (three projections with the row
    blocks of ``in_proj_weight``, q scaled by sqrt(1/head_dim) before ``q @ k^T``, softmax, ``@ v``,
    heads concatenated, ``out_proj``), but with the heads laid out contiguously: torch's version
    hands ``bmm`` a strided (S, heads, d) view, which on the CPU falls back to one small copy per
    row (0.13 M copies per DDColor pass at 512 px, ~40 % of the colour decoder's time). Rounding
    can differ in the last bits (BLAS blocking); golden cases: queries within 1e-5.
    """
    e = mha.embed_dim
    w, b = mha.in_proj_weight, mha.in_proj_bias
    k = F.linear(key[:, 0], w[e : 2 * e], b[e : 2 * e]).t()
    v = F.linear(value[:, 0], w[2 * e :], b[2 * e :]).t()
    return _attend(mha, query, k, v)


def cross_attention(
    mha: nn.MultiheadAttention, query: torch.Tensor, key_t: torch.Tensor, value_t: torch.Tensor
) -> torch.Tensor:
    """:func:`attention` with the memory given channel-major, (E, S), as the pixel decoder makes it.

    The key and value projections are then ``W @ memory``, whose (E, S) result is already each
    head's (d, S) block: no transposing copies of the up to 16384 x 256 keys and values per layer,
    and ``q @ k^T`` reads k as stored (colour decoder 0.43 -> 0.3 s at 512 px). The same products as
    :func:`attention`, rounded per BLAS blocking.
    """
    e = mha.embed_dim
    w, b = mha.in_proj_weight, mha.in_proj_bias
    k = torch.addmm(b[e : 2 * e, None], w[e : 2 * e], key_t)
    v = torch.addmm(b[2 * e :, None], w[2 * e :], value_t)
    return _attend(mha, query, k, v)


def _attend(mha: nn.MultiheadAttention, query: torch.Tensor, k_t: torch.Tensor, v_t: torch.Tensor) -> torch.Tensor:
    """The rest of :func:`attention` from the projected keys and values, both (E, S) channel-major.

    One head at a time: a head's (L, S) scores are 6.5 MB at the 128 x 128 level, all eight 52 MB, so
    scores, softmax and ``@ v`` stay in cache (bit-identical to the batched form, half its time).
    """
    e = mha.embed_dim
    h = mha.num_heads
    d = e // h
    q = F.linear(query[:, 0], mha.in_proj_weight[:e], mha.in_proj_bias[:e])
    q = q.view(-1, h, d).transpose(0, 1).contiguous() * math.sqrt(1.0 / float(d))
    k3, v3 = k_t.reshape(h, d, -1), v_t.reshape(h, d, -1)
    o = torch.empty_like(q)
    for i in range(h):
        torch.mm(torch.softmax(torch.mm(q[i], k3[i]), dim=-1), v3[i].t(), out=o[i])
    o = o.transpose(0, 1).reshape(-1, e)
    return F.linear(o, mha.out_proj.weight, mha.out_proj.bias).unsqueeze(1)


class CrossAttentionLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.multihead_attn = nn.MultiheadAttention(HIDDEN, 8)
        self.norm = nn.LayerNorm(HIDDEN)

    def forward(self, tgt, memory_t, pos_t, query_pos):
        """``memory_t`` and ``pos_t`` channel-major, (256, S) (:func:`cross_attention`)."""
        t2 = cross_attention(self.multihead_attn, tgt + query_pos, memory_t + pos_t, memory_t)
        return self.norm(tgt + t2)


class SelfAttentionLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(HIDDEN, 8)
        self.norm = nn.LayerNorm(HIDDEN)

    def forward(self, tgt, query_pos):
        q = k = tgt + query_pos
        t2 = attention(self.self_attn, q, k, tgt)
        return self.norm(tgt + t2)


class FFNLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear1 = nn.Linear(HIDDEN, 2048)
        self.linear2 = nn.Linear(2048, HIDDEN)
        self.norm = nn.LayerNorm(HIDDEN)

    def forward(self, tgt):
        return self.norm(tgt + self.linear2(F.relu(self.linear1(tgt))))


class MLP(nn.Module):
    def __init__(self, n: int = 3) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(HIDDEN, HIDDEN) for _ in range(n))

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = F.relu(layer(x)) if i < len(self.layers) - 1 else layer(x)
        return x


class MultiScaleColorDecoder(nn.Module):
    """9 post-norm transformer layers over 100 colour queries, levels cycled 0, 1, 2 (SPEC §4.4)."""

    def __init__(self, in_channels: tuple[int, ...] = (512, 512, 256)) -> None:
        super().__init__()
        self.transformer_self_attention_layers = nn.ModuleList(SelfAttentionLayer() for _ in range(NUM_LAYERS))
        self.transformer_cross_attention_layers = nn.ModuleList(CrossAttentionLayer() for _ in range(NUM_LAYERS))
        self.transformer_ffn_layers = nn.ModuleList(FFNLayer() for _ in range(NUM_LAYERS))
        self.decoder_norm = nn.LayerNorm(HIDDEN)
        self.query_feat = nn.Embedding(NUM_QUERIES, HIDDEN)
        self.query_embed = nn.Embedding(NUM_QUERIES, HIDDEN)
        self.level_embed = nn.Embedding(NUM_LEVELS, HIDDEN)
        self.input_proj = nn.ModuleList(nn.Conv2d(c, HIDDEN, 1) for c in in_channels)
        self.color_embed = MLP()

    def queries(self, levels: list[torch.Tensor], layer_outputs: list[torch.Tensor] | None = None) -> torch.Tensor:
        """The decoder_norm output, (1, 100, 256); ``layer_outputs`` collects each layer's (100, 1, 256)."""
        src, pos = [], []
        for i, x in enumerate(levels):
            pos.append(sine_position(x.shape[2], x.shape[3], device=x.device).to(x.dtype))
            src.append(self.input_proj[i](x)[0].flatten(1) + self.level_embed.weight[i][:, None])  # (256, S)
        query_pos = self.query_embed.weight.unsqueeze(1)
        output = self.query_feat.weight.unsqueeze(1)
        for i in range(NUM_LAYERS):
            tick()
            lv = i % NUM_LEVELS
            output = self.transformer_cross_attention_layers[i](output, src[lv], pos[lv], query_pos)
            output = self.transformer_self_attention_layers[i](output, query_pos)
            output = self.transformer_ffn_layers[i](output)
            if layer_outputs is not None:
                layer_outputs.append(output)
        return self.decoder_norm(output).transpose(0, 1)

    def forward(self, levels: list[torch.Tensor], img_features: torch.Tensor) -> torch.Tensor:
        color_embed = self.color_embed(self.queries(levels))
        return torch.einsum("bqc,bchw->bqhw", color_embed, img_features)


class DuelDecoder(nn.Module):
    """Pixel decoder (three UnetBlockWide + last_shuf) and the colour decoder (SPEC §4.3, §4.4)."""

    def __init__(self, dims: tuple[int, ...]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            [UnetBlockWide(dims[3], dims[2], 512), UnetBlockWide(512, dims[1], 512), UnetBlockWide(512, dims[0], 256)]
        )
        self.last_shuf = PixelShuffleICNR(256, 256, 4, bn=False, bias=True)
        self.color_decoder = MultiScaleColorDecoder()

    def pixel(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        """[out0, out1, out2, out3] from the encoder features F0..F3."""
        out0 = self.layers[0](feats[3], feats[2])
        out1 = self.layers[1](out0, feats[1])
        out2 = self.layers[2](out1, feats[0])
        return [out0, out1, out2, self.last_shuf(out2)]

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        out = self.pixel(feats)
        return self.color_decoder(out[:3], out[3])


class DDColor(nn.Module):
    """The whole network; ``size`` is "tiny" (ConvNeXt-T) or "large" (ConvNeXt-L)."""

    def __init__(self, size: str) -> None:
        super().__init__()
        _, dims = SIZES[size]
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        self.encoder = Encoder(size)
        self.decoder = DuelDecoder(dims)
        self.refine_net = nn.Sequential(nn.Sequential(SNConv2d(NUM_QUERIES + 3, 2, 1, bias=True)))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """ab = refine_net(cat(einsum(color_embed, img_features), x)), computed in the order of :meth:`head`."""
        if x.shape[2] % 32 or x.shape[3] % 32:
            raise ValueError(f"DDColor needs sides that are multiples of 32, not {tuple(x.shape[2:])}")
        x = self.normalize(x)
        feats = self.encoder(x)
        dec = self.decoder
        out0 = dec.layers[0](feats[3], feats[2])
        out1 = dec.layers[1](out0, feats[1])
        out2 = dec.layers[2](out1, feats[0])
        color_embed = dec.color_decoder.color_embed(dec.color_decoder.queries([out0, out1, out2]))
        return self.head(out2, color_embed, x)

    HEAD_ROWS = 8
    """Rows of ``out2`` (1/4 scale) per block of :meth:`head`: 8 x 128 px of the 4096-channel map = 16 MB."""

    def head(self, out2: torch.Tensor, color_embed: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The last_shuf -> einsum -> refine_net tail, reassociated; the same linear maps as the official one.

        Officially ``img_features = Blur(PS4(ReLU(conv(out2))))`` (256 channels at full size),
        ``out_feat = einsum(color_embed, img_features)`` (100 channels at full size) and
        ``ab = W1 @ out_feat + W2 @ x + b`` (refine_net's 1x1 conv split at channel 100). Blur and the
        pixel shuffle act on each channel alone and the rest is linear per pixel, so
        ``W1 @ out_feat = Blur(PS4(M @ ReLU(conv(out2))))`` with ``M = W1 @ color_embed`` (2 x 256)
        applied to each of the 16 sub-pixels' 256 channels. Why: the official order makes four
        full-size maps of 100-256 channels (1 GB at 512 px) and ~13 GFLOP of einsum; this one keeps 2
        channels at full size and runs the 4096-channel map in row blocks, as two plain GEMMs: the
        conv's output channels are reordered sub-pixel major so ``M`` meets each sub-pixel's channels
        as one contiguous (256, pixels) slab (0.45 -> 0.22 s at 512 px against 1x1 convolutions).
        Only float32 rounding differs (the sums are reassociated): ab within ~2e-5 of the official
        on the golden cases.
        """
        tail = self.decoder.last_shuf
        w = self.refine_net[0][0].weight()  # (2, 103, 1, 1)
        m = w[:, :NUM_QUERIES, 0, 0] @ color_embed[0]  # (2, 256)
        r = tail.shuf.upscale_factor
        sub = r * r
        conv = tail.conv[0]
        wt = conv.weight()[:, :, 0, 0]  # (256 * sub, 256), output channel c * sub + s
        c = wt.shape[0] // sub
        wt = wt.view(c, sub, -1).transpose(0, 1).reshape(sub * c, -1)  # now s * 256 + c
        bias = conv.bias.view(c, sub).t().reshape(-1, 1)
        _, _, hh, ww = out2.shape
        feats = out2[0].contiguous().view(out2.shape[1], hh * ww)
        ab = torch.empty(sub, 2, hh * ww, dtype=out2.dtype, device=out2.device)
        step = self.HEAD_ROWS * ww
        for p0 in range(0, hh * ww, step):
            tick()
            h = torch.addmm(bias, wt, feats[:, p0 : p0 + step]).relu_()  # (sub * 256, pixels)
            ab[:, :, p0 : p0 + step] = torch.matmul(m, h.view(sub, c, -1))
        # pixel shuffle: sub-pixel s = i * r + j of (row, col) lands at (row * r + i, col * r + j)
        y = ab.view(r, r, 2, hh, ww).permute(2, 3, 0, 4, 1).reshape(1, 2, hh * r, ww * r)
        y = tail.blur(y)
        return y + F.conv2d(x, w[:, NUM_QUERIES:], self.refine_net[0][0].bias)


def ddcolor_tiny() -> DDColor:
    return DDColor("tiny")


def ddcolor_large() -> DDColor:
    return DDColor("large")
