"""Global networks: strict loading of official-layout weights, and the bounded-memory attention."""

import pytest
import torch

from oldphoto.errors import WeightsError
from oldphoto.nets import build
from oldphoto.nets.attention import NonLocalBlock2DWithMaskRes, PatchAttention
from oldphoto.seeded import seeded_state_dict
from oldphoto.weights import check_structure

GLOBAL = ["detection_unet", "vae_a_quality", "vae_b_quality", "vae_b_scratch", "mapping_quality",
          "mapping_scratch", "mapping_patch_attention"]


@pytest.mark.parametrize("component", GLOBAL)
def test_state_dict_names_and_shapes_equal_manifest(component):
    net = build(component)
    sd = net.state_dict()
    check_structure(component, sd)  # raises on any difference
    net.load_state_dict(seeded_state_dict(component), strict=True)


def test_structure_check_names_the_problem():
    sd = seeded_state_dict("vae_a_quality")
    sd.pop("encoder.1.bias")
    sd["encoder.4.weight"] = torch.zeros(1)
    sd["extra.weight"] = torch.zeros(1)
    with pytest.raises(WeightsError) as err:
        check_structure("vae_a_quality", sd)
    msg = str(err.value)
    assert "encoder.1.bias" in msg and "extra.weight" in msg and "encoder.4.weight" in msg


def _reference_nl(block: NonLocalBlock2DWithMaskRes, x, mask):
    """The official formulation with the full N x N matrices (SPEC §7.1), for comparison."""
    import torch.nn.functional as F

    from oldphoto.nets.attention import valid_keys

    b, c, h, w = x.shape
    g = block.g(x).view(1, c, -1).permute(0, 2, 1)
    th = block.theta(x).view(1, c, -1).permute(0, 2, 1)
    ph = block.phi(x).view(1, c, -1)
    f = torch.softmax(torch.matmul(th, ph), dim=2)
    v = valid_keys(mask, (h, w))
    f = v.view(1, 1, -1).repeat(1, h * w, 1) * f
    f = F.normalize(f, p=1, dim=2)
    y = torch.matmul(f, g).permute(0, 2, 1).reshape(1, c, h, w)
    wy = block.res_block(block.W(y))
    return v * x + (1 - v) * wy


def test_chunked_non_local_equals_full_matrix():
    torch.manual_seed(0)
    block = NonLocalBlock2DWithMaskRes(32).eval()
    x = torch.randn(1, 32, 12, 20)
    mask = (torch.rand(1, 1, 48, 80) > 0.8).float()
    with torch.no_grad():
        ref = _reference_nl(block, x, mask)
        block.block_bytes = 8 * 240 * 7  # 7 query rows per block: blocks do not divide N
        chunked = block(x, mask)
        block.block_bytes = 1 << 30
        whole = block(x, mask)
    assert torch.allclose(chunked, ref, atol=1e-5)
    assert torch.allclose(whole, ref, atol=1e-5)
    assert not torch.equal(chunked, x)  # holes really changed


def test_chunked_patch_attention_equals_unchunked():
    torch.manual_seed(1)
    pa = PatchAttention(16, patch_size=2).eval()
    z = torch.randn(1, 16, 16, 24)
    mask = torch.zeros(1, 1, 64, 96)
    mask[..., 10:40, 20:70] = 1
    with torch.no_grad():
        pa.block_bytes = 1 << 30
        whole = pa(z, mask)
        pa.block_bytes = 8 * 3  # a handful of query rows per block
        chunked = pa(z, mask)
    assert torch.equal(whole, chunked)


def test_patch_attention_all_masked_is_a_clear_error():
    from oldphoto.errors import InputError

    pa = PatchAttention(8, patch_size=2).eval()
    with torch.no_grad(), pytest.raises(InputError, match="covers every region"):
        pa(torch.randn(1, 8, 4, 4), torch.ones(1, 1, 16, 16))
