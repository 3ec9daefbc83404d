"""CUDA against the CPU: the same seeded networks give the same photo (run by benchmarks/gpu_check.sh).

Skipped without a GPU (this project's CI has none). The CPU result is today's float32 default path;
on CUDA PyTorch lets cuDNN use TF32 by default, so these tests check what a GPU user actually gets
against the refcheck tolerances for uint8 outputs (|d| <= 1 on <= 1 % of values, here with one
more level of slack for the whole pipeline's chained rounding). Weights come from
``seeded_state_dict`` in memory: a bare PyTorch image may lack the safetensors module.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from oldphoto import Restorer
from oldphoto.refcheck import compare_u8
from oldphoto.seeded import seeded_state_dict

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here")


def _photo(w: int = 96, h: int = 80) -> np.ndarray:
    rng = np.random.default_rng(5)
    base = np.linspace(40, 210, w)[None, :, None] * np.ones((h, 1, 3))
    return np.clip(base + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("mode", ["quality", "scratch", "hr"])
def test_cuda_restores_like_the_cpu(mode):
    photo = _photo()
    kw: dict = {"faces": False, "hr": mode == "hr"}
    if mode != "quality":
        mask = np.zeros(photo.shape[:2], bool)
        mask[:, 40:43] = True
        kw["mask"] = mask
    cpu = Restorer(device="cpu", weights_loader=seeded_state_dict).restore(photo, **kw)
    gpu = Restorer(device="cuda", weights_loader=seeded_state_dict).restore(photo, **kw)
    check = compare_u8("image", np.asarray(gpu.image), np.asarray(cpu.image), max_diff=2, max_frac=0.01)
    assert check.passed, check.detail


def test_cuda_attention_matches_float64():
    """The partial non-local block's attend on CUDA within its documented 2e-3 of a float64 evaluation."""
    from oldphoto.nets.attention import NonLocalBlock2DWithMaskRes

    gen = torch.Generator().manual_seed(0)
    block = NonLocalBlock2DWithMaskRes(64)
    with torch.no_grad():
        for p in block.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
    x = torch.randn(1, 64, 24, 20, generator=gen)
    v = (torch.rand(1, 1, 24, 20, generator=gen) > 0.1).float()
    with torch.inference_mode():
        ref = block.double().attend(x.double(), v.double())
        got = block.float().cuda().attend(x.cuda(), v.cuda()).cpu().double()
    assert float((got - ref).abs().max()) <= 2e-3
