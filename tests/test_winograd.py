"""Winograd F(4x4, 3x3) convolutions (oldphoto.nets.winograd): same function as the direct algorithm
to float32 rounding, same parameters and state-dict names, used only where the policy says."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from oldphoto.nets import instantiate
from oldphoto.nets.winograd import (
    FAST_PARTS,
    WinogradConv2d,
    conv3x3_valid,
    spatially_constant,
    transform_weight,
    use_winograd,
)
from oldphoto.seeded import seeded_state_dict


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).abs().max() / b.double().abs().max())


@pytest.mark.parametrize("size", [(1, 1), (3, 5), (4, 4), (13, 22), (17, 8)])
@pytest.mark.parametrize("chunk_bytes", [1, 1 << 30], ids=["one-tile-row-chunks", "whole"])
@pytest.mark.parametrize("padding", [(0, 0), (1, 1), (1, 0)])
def test_valid_conv_matches_direct(size, chunk_bytes, padding):
    torch.manual_seed(0)
    h, w = size
    x = torch.randn(1, 24, h + 2, w + 2)
    weight, bias = torch.randn(40, 24, 3, 3) * 0.1, torch.randn(40)
    ref = F.conv2d(x.double(), weight.double(), bias.double(), padding=padding)
    out = conv3x3_valid(x, transform_weight(weight), bias, chunk_bytes=chunk_bytes, padding=padding)
    assert out.shape == ref.shape
    assert _rel_err(out, ref) < 2e-5


@pytest.mark.parametrize("padding", [0, 1])
def test_swapped_module_keeps_parameters_and_function(padding):
    torch.manual_seed(1)
    conv = nn.Conv2d(128, 128, 3, padding=padding).eval()
    keys = {k: v.clone() for k, v in conv.state_dict().items()}
    x = torch.randn(1, 128, 19, 26)
    with torch.no_grad():
        ref = conv(x)
        assert use_winograd(conv) == 1
        assert isinstance(conv, WinogradConv2d)
        out = conv(x)
    assert conv.state_dict().keys() == keys.keys()
    assert all(torch.equal(conv.state_dict()[k], v) for k, v in keys.items())
    assert not torch.equal(out, ref)  # really another algorithm ...
    assert _rel_err(out, ref) < 2e-5  # ... computing the same function


def test_narrow_strided_and_grouped_convs_are_left_alone():
    net = nn.Sequential(
        nn.Conv2d(64, 64, 3, padding=1), nn.Conv2d(128, 128, 3, stride=2), nn.Conv2d(128, 128, 1),
        nn.Conv2d(128, 128, 3, groups=2), nn.Conv2d(128, 128, 3, padding=1, padding_mode="reflect"),
        nn.Conv2d(128, 256, 3, padding=1),
    )
    assert use_winograd(net) == 1
    assert [type(m) is WinogradConv2d for m in net] == [False] * 5 + [True]


def test_constant_input_stays_exactly_constant():
    """An all-hole mask makes the non-local output constant; the instance norm that follows divides by
    its variance, so the conv must give the direct algorithm's exactly constant result there."""
    conv = nn.Conv2d(128, 128, 3).eval()
    use_winograd(conv)
    x = torch.full((1, 128, 14, 14), 0.37)
    with torch.no_grad():
        out = conv(x)
        ref = F.conv2d(x, conv.weight, conv.bias)
    assert torch.equal(out, ref)
    assert torch.equal(out.amax(dim=(2, 3)), out.amin(dim=(2, 3)))


def test_constant_check_is_exact_beyond_its_probe():
    """The quick probe (a few positions) only rules maps out; a map equal at the probe is scanned."""
    x = torch.full((1, 3, 9, 9), 2.0)
    assert spatially_constant(x)
    x[0, 1, 4, 5] = 2.5  # not one of the probed positions
    assert not spatially_constant(x)
    x[0, 1, 4, 5] = 2.0
    x[0, 2, 0, 0] = -1.0  # a probed position
    assert not spatially_constant(x)


@pytest.mark.parametrize("component", ["mapping_quality", "mapping_scratch"])
def test_instantiate_applies_the_policy_and_loads_strictly(component):
    sd = seeded_state_dict(component, 36)
    fast = instantiate(component, sd, fast_convs=True)
    exact = instantiate(component, sd, fast_convs=False)
    assert fast.state_dict().keys() == exact.state_dict().keys() == sd.keys()
    swapped = {n for n, m in fast.named_modules() if isinstance(m, WinogradConv2d)}
    assert swapped
    assert not any(isinstance(m, WinogradConv2d) for m in exact.modules())
    parts = FAST_PARTS[component]
    assert all(any(n == p or n.startswith(p + ".") or not p for p in parts) for n in swapped)
    if component == "mapping_scratch":  # never on the way into the attention
        assert not any(n.startswith("before_NL") for n in swapped)
        assert any(n.startswith("NL.res_block") for n in swapped)


def test_restorer_uses_winograd_on_cpu_unless_exact(tmp_path):
    from oldphoto import Restorer
    from oldphoto.seeded import write_seeded_weights

    write_seeded_weights(tmp_path, ["mapping_quality"])
    fast = Restorer(device="cpu", weights_dir=tmp_path).net("mapping_quality")
    exact = Restorer(device="cpu", weights_dir=tmp_path, exact_convs=True).net("mapping_quality")
    assert any(isinstance(m, WinogradConv2d) for m in fast.modules())
    assert not any(isinstance(m, WinogradConv2d) for m in exact.modules())
    z = torch.randn(1, 64, 20, 24)
    with torch.no_grad():
        assert _rel_err(fast(z), exact(z)) < 1e-4


def test_conv_subclasses_with_their_own_forward_are_left_alone():
    class Custom(nn.Conv2d):
        def forward(self, x):
            return super().forward(x) * 2

    class ZeroInit(nn.Conv2d):  # like the face/RetinaFace convs: only the initialisation differs
        def reset_parameters(self):
            nn.init.zeros_(self.weight)

    net = nn.Sequential(Custom(128, 128, 3), ZeroInit(128, 128, 3))
    assert use_winograd(net) == 1
    assert type(net[0]) is Custom and type(net[1]) is WinogradConv2d
    assert use_winograd(net) == 0  # already switched
