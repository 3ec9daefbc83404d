"""DDColor's networks against the official op order, block by block, on inputs the golden set does not have.

The CPU layout work in ``nets/convnext.py`` (channels-last stream, the MLP in pieces of pixels),
``nets/ddcolor.py`` (channel-major cross-attention one head at a time, the reassociated tail) and
``nets/onednn_linear.py`` (oneDNN's fused linear) must compute the official functions: each is
compared here with a plain transcription of the official code, on sizes that exercise the piece
boundaries. The golden comparison with the official code itself is tests/test_colorize_refcheck.py.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from oldphoto.nets import convnext, ddcolor, onednn_linear
from oldphoto.nets.onednn_linear import linear


@pytest.fixture(autouse=True)
def _no_grad():
    with torch.no_grad():
        yield


def _close(got: torch.Tensor, want: torch.Tensor, rel: float = 1e-5) -> None:
    scale = max(1.0, want.abs().max().item())
    err = (got - want).abs().max().item()
    assert err <= rel * scale, f"max |diff| {err:.3g} (scale {scale:.3g})"


@pytest.mark.parametrize("act", ["none", "relu", "gelu"])
def test_linear_is_f_linear_then_the_activation(act):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 37, 96, generator=g)
    w = torch.randn(384, 96, generator=g) / 10
    b = torch.randn(384, generator=g)
    want = {"none": lambda y: y, "relu": F.relu, "gelu": F.gelu}[act](F.linear(x, w, b))
    got = linear(x, w, b, act)
    assert got.shape == want.shape
    _close(got, want)
    _close(linear(x.transpose(0, 1), w, b, act), want.transpose(0, 1))  # a strided input
    if act == "gelu":  # the erf GELU, not the tanh one (they differ by ~1e-3 around |x| ~ 2)
        assert (got - F.gelu(F.linear(x, w, b), approximate="tanh")).abs().max() > 1e-4


def test_linear_falls_back_off_the_fused_path(monkeypatch):
    g = torch.Generator().manual_seed(2)
    x, w, b = torch.randn(5, 8, generator=g), torch.randn(16, 8, generator=g), torch.randn(16, generator=g)
    if onednn_linear._OP is not None and torch.backends.mkldnn.is_available():
        assert onednn_linear.fused(x, w)
    assert not onednn_linear.fused(x.double(), w.double())
    with torch.enable_grad():
        wg = w.clone().requires_grad_(True)
        assert not onednn_linear.fused(x, wg)
        y = linear(x, wg, b, "relu")
        y.sum().backward()  # autograd still works on the fallback
        assert wg.grad is not None
    with torch.backends.mkldnn.flags(enabled=False):
        assert not onednn_linear.fused(x, w)
        assert torch.equal(linear(x, w, b, "gelu"), F.gelu(F.linear(x, w, b)))
    monkeypatch.setattr(onednn_linear, "_OP", None)
    assert torch.equal(linear(x, w, b), F.linear(x, w, b))


def _official_block(blk: convnext.Block, x: torch.Tensor) -> torch.Tensor:
    """ConvNeXt ``Block.forward`` of the official code (drop path off), NCHW."""
    y = blk.dwconv(x).permute(0, 2, 3, 1)
    y = blk.norm(y)
    y = blk.pwconv2(F.gelu(blk.pwconv1(y)))
    return x + (blk.gamma * y).permute(0, 3, 1, 2)


@pytest.mark.parametrize("rows", [convnext.Block.MLP_ROWS, 100])
def test_convnext_block_is_the_official_block(monkeypatch, rows):
    monkeypatch.setattr(convnext.Block, "MLP_ROWS", rows)
    torch.manual_seed(3)
    blk = convnext.Block(48)
    for p in blk.parameters():
        p.data.normal_(0, 0.2)
    x = torch.randn(1, 48, 37, 41)  # 1517 pixels: pieces of 1024 or 100 with a short last one
    want = _official_block(blk, x)
    _close(blk(x), want)
    _close(blk(x.contiguous(memory_format=torch.channels_last)), want)


def test_cross_attention_is_multihead_attention():
    torch.manual_seed(4)
    mha = nn.MultiheadAttention(ddcolor.HIDDEN, 8).eval()
    for p in mha.parameters():
        p.data.normal_(0, 0.1)
    query = torch.randn(100, 1, ddcolor.HIDDEN)
    memory = torch.randn(300, 1, ddcolor.HIDDEN)
    pos = torch.randn(300, 1, ddcolor.HIDDEN)
    want = mha(query, memory + pos, memory)[0]
    got = ddcolor.cross_attention(mha, query, (memory + pos)[:, 0].t().contiguous(), memory[:, 0].t().contiguous())
    _close(got, want)
    _close(ddcolor.attention(mha, query, query, query), mha(query, query, query)[0])


def test_sine_position_is_detr_channel_major():
    h, w = 5, 7
    got = ddcolor.sine_position(h, w)
    assert got.shape == (ddcolor.HIDDEN, h * w)
    # DETR's PositionEmbeddingSine(normalize=True) at one pixel, written out
    import math

    y, x = 2, 3
    ye, xe = (y + 1) / (h + 1e-6) * 2 * math.pi, (x + 1) / (w + 1e-6) * 2 * math.pi
    n = ddcolor.HIDDEN // 2
    dim_t = torch.tensor([10000 ** (2 * (i // 2) / n) for i in range(n)], dtype=torch.float64)
    py, px = ye / dim_t, xe / dim_t
    py = torch.stack([py[0::2].sin(), py[1::2].cos()], 1).flatten()
    px = torch.stack([px[0::2].sin(), px[1::2].cos()], 1).flatten()
    _close(got[:, y * w + x].double(), torch.cat([py, px]), rel=1e-5)


def test_head_is_the_official_tail(monkeypatch):
    """last_shuf -> einsum with the colour embedding -> refine_net, as the official forward orders it."""
    from oldphoto.seeded import seeded_state_dict

    net = ddcolor.ddcolor_tiny()
    net.load_state_dict(seeded_state_dict("ddcolor_paper_tiny"), strict=True)
    net.eval()
    torch.manual_seed(5)
    out2 = torch.randn(1, 256, 10, 12).relu()
    embed = torch.randn(1, ddcolor.NUM_QUERIES, 256)
    x = torch.randn(1, 3, 40, 48)
    img = net.decoder.last_shuf(out2)
    want = net.refine_net(torch.cat([torch.einsum("bqc,bchw->bqhw", embed, img), x], 1))
    monkeypatch.setattr(ddcolor.DDColor, "HEAD_ROWS", 3)  # 10 rows: blocks of 3, 3, 3, 1
    got = net.head(out2, embed, x)
    assert got.shape == want.shape == (1, 2, 40, 48)
    _close(got, want, rel=2e-5)


def test_decoder_convs_run_winograd_only_where_asked():
    """``fast_convs`` (the CPU default) puts the pixel decoder's wide 3x3 spectral-norm convs on Winograd:
    the same convolution within float32 rounding; exact_convs / other devices keep the direct one."""
    from oldphoto.nets import instantiate
    from oldphoto.seeded import seeded_state_dict

    sd = seeded_state_dict("ddcolor_paper_tiny")
    fast = instantiate("ddcolor_paper_tiny", sd, fast_convs=True)
    exact = instantiate("ddcolor_paper_tiny", sd, fast_convs=False)
    on = sorted(n for n, m in fast.named_modules() if getattr(m, "winograd", False))
    assert on == [f"decoder.layers.{i}.conv.0" for i in range(3)]
    assert not any(getattr(m, "winograd", False) for m in exact.modules())
    torch.manual_seed(6)
    conv_fast = fast.get_submodule("decoder.layers.1.conv.0")
    conv_exact = exact.get_submodule("decoder.layers.1.conv.0")
    x = torch.randn(1, conv_fast.kernel_shape()[1], 13, 19)
    want = conv_exact(x)
    got = conv_fast(x)
    assert not torch.equal(got, want)  # really another algorithm ...
    _close(got, want, rel=2e-5)  # ... for the same convolution
    two = torch.cat([x, x])
    assert torch.equal(conv_fast(two), conv_exact(two))  # a batch of two: the direct path
