"""The two attention blocks of the scratch and HR mapping networks (global SPEC §7).

Both are computed in blocks of query rows so that memory stays linear in the number of latent
positions: the official code materialises an N x N correlation matrix plus an N x N copy of the mask
(N = H*W/16), which exhausts memory above ~640 px. Every row of the attention is independent
(softmax, masking and L1 renormalisation all act along the key axis), so row blocks give the same
result as the full matrix up to float32 summation order.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..cpu import CpuFacts, cpu_facts, decided_once
from ..progress import tick
from .blocks import ResnetBlock

# Bytes of scratch memory one attention block may use for its (rows x keys) float32 matrix.
DEFAULT_BLOCK_BYTES = 256 * 2**20


def rows_per_block(n_keys: int, block_bytes: int = DEFAULT_BLOCK_BYTES) -> int:
    """How many query rows fit in ``block_bytes`` (two live rows x keys float32 buffers)."""
    return max(1, block_bytes // max(1, 8 * n_keys))


GEMM_ENV = "OLDPHOTO_ATTENTION_GEMM"  # torch | numpy | auto (default): the non-local block's products


def _numpy_mm(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``out = a @ b`` by numpy's BLAS (OpenBLAS in the wheels) on the tensors' own memory, no copies."""
    np.matmul(a.detach().numpy(), b.detach().numpy(), out=out.detach().numpy())
    return out


def _torch_mm(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    return torch.matmul(a, b, out=out)


def gemm_facts_choice(facts: CpuFacts) -> str | None:
    """Answer 1, from what the machine has: "torch" where numpy's BLAS cannot be the better choice,
    None where only a probe can tell (torch's MKL on a non-Intel CPU, numpy with OpenBLAS)."""
    if facts.vendor in ("GenuineIntel", ""):
        return "torch"  # MKL at home (or an unknown CPU: the default)
    if not facts.torch_mkl or "openblas" not in facts.numpy_blas.lower():
        return "torch"  # the reason for numpy (MKL's rate on AMD) is absent, or numpy has no OpenBLAS
    return None


def probe_gemm_seconds(budget_s: float = 2.0) -> dict[str, float]:
    """Answer 2: best time of one GEMM of the block's shape (512 x 512 by 512 x 4096) per library.

    Alternating (a busy neighbour slows both alike), at most 4 rounds and stopped after ``budget_s``
    once each library ran once, so a slow BLAS costs a few products, not minutes.
    """
    a, b = torch.randn(512, 512), torch.randn(512, 4096)
    out = torch.empty(512, 4096)
    best = {"torch": float("inf"), "numpy": float("inf")}
    start = time.perf_counter()
    for _ in range(4):
        for name, mm in (("torch", _torch_mm), ("numpy", _numpy_mm)):
            t = time.perf_counter()
            mm(a, b, out)
            best[name] = min(best[name], time.perf_counter() - t)
        if time.perf_counter() - start > budget_s:
            break
    return best


def choose_gemm_backend(facts: CpuFacts, probe: Callable[[], dict[str, float]] = probe_gemm_seconds) -> str:
    """The stricter of the two answers: numpy only where the facts allow it AND the probe finds it
    clearly faster (>= 15 %); torch otherwise. ``facts`` and ``probe`` are parameters for the tests."""
    by_facts = gemm_facts_choice(facts)
    if by_facts is not None:
        return by_facts
    best = probe()
    return "numpy" if best["numpy"] < 0.85 * best["torch"] else "torch"


@functools.cache
def float32_gemm_backend() -> str:
    """Which library multiplies the attention's float32 matrices on the CPU: "torch" or "numpy".

    Why: torch's x86 builds run float32 GEMMs through MKL, which on AMD CPUs reaches only about
    two thirds of OpenBLAS's rate on these shapes (issue 15: 103-118 vs 152-156 GFLOP/s on an EPYC),
    and the two products are ~all of the non-local block's time. Decided by :func:`choose_gemm_backend`
    from ``oldphoto.cpu``'s facts (Intel keeps MKL without a probe) and a probe GEMM of the block's
    shape, so a slow or absent OpenBLAS never costs anything. Both are float32 GEMMs: the results
    differ in summation order only (within the refcheck tolerance), but they do differ, so a probed
    choice is made once per machine (``oldphoto.cpu.decided_once``): every process of a machine
    (CLI, GIMP/Krita worker, batch workers) then gives the same pixels.
    ``OLDPHOTO_ATTENTION_GEMM=torch|numpy`` fixes the choice (benchmarks, tests).
    """
    forced = os.environ.get(GEMM_ENV, "auto").strip().lower()
    if forced in ("torch", "numpy"):
        return forced
    facts = cpu_facts()
    if gemm_facts_choice(facts) is not None:
        return choose_gemm_backend(facts)  # no timing involved
    # A timed choice changes the rounding of results: one per machine, shared by its processes.
    return decided_once("attention-gemm", lambda: choose_gemm_backend(facts), facts=facts)


def attention_mm(x: torch.Tensor) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
    """The ``out = a @ b`` used for tensors like ``x`` (numpy's BLAS only for float32 on the CPU)."""
    if x.device.type == "cpu" and x.dtype == torch.float32 and float32_gemm_backend() == "numpy":
        return _numpy_mm
    return _torch_mm


def hole_mask_bilinear(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of the full-resolution 0/1 mask, then every value > 0 set to 1 (SPEC §7.1/7.2)."""
    m = F.interpolate(mask, size, mode="bilinear", align_corners=False)
    return (m > 0).to(mask.dtype)


def valid_keys(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """V of SPEC §7.1 step 3: 1 where a latent position may serve as a key, 0 in holes.

    Mixes a bilinear (2x2 sampled, any touch -> hole) and a nearest (top-left pixel) resampling,
    exactly as the official block does.
    """
    b = 1 - hole_mask_bilinear(mask, size)
    nn_ = F.interpolate(1 - mask, size, mode="nearest")
    return b * nn_


class NonLocalBlock2DWithMaskRes(nn.Module):
    """Partial non-local block (scratch mode; SPEC §7.1, paper §3.3 "partial nonlocal block").

    Attention only reads from positions outside the scratches; hole positions take the attended
    feature, others keep their input ("combine" fusion).
    """

    def __init__(self, channels: int = 512) -> None:
        super().__init__()
        self.g = nn.Conv2d(channels, channels, 1)
        self.theta = nn.Conv2d(channels, channels, 1)
        self.phi = nn.Conv2d(channels, channels, 1)
        self.W = nn.Conv2d(channels, channels, 1)
        self.res_block = nn.Sequential(ResnetBlock(channels), ResnetBlock(channels), ResnetBlock(channels))
        self.block_bytes = DEFAULT_BLOCK_BYTES

    def attend(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """y = L1-normalise(softmax(theta phi^T) * V) @ g, computed in query-row blocks.

        Rearranged so that each block makes one pass of in-place work over its (rows x N) logits:
        with e = exp(f - max f) and Z = sum(e), softmax * V renormalised is e*V / max(S, 1e-12 Z)
        (S = sum(e*V)), and that row scale is applied to the (rows x C) product instead of the
        (rows x N) weights. Weights below exp(-80) of a row's largest are set to exactly 0: they
        would be denormal floats (30-300x slower CPU arithmetic, and flushing them is per thread)
        and their share of y is < 1e-34 of the largest term. Differences from the official order of
        operations are float32 rounding (max 5e-4 against a float64 evaluation, same as the
        official order; tolerance 2e-3). The two products use :func:`attention_mm`'s library.
        """
        b, c, h, w = x.shape
        n = h * w
        g = self.g(x).reshape(c, n).t()  # (N, C)
        theta = self.theta(x).reshape(c, n).t()  # (N, C)
        phi = self.phi(x).reshape(c, n)  # (C, N)
        vk = v.reshape(1, n)
        y = torch.empty(n, c, dtype=x.dtype, device=x.device)
        step = rows_per_block(n, self.block_bytes)
        # One logits buffer for all blocks: a fresh (rows x N) tensor per block is a fresh mmap of
        # zero-filled pages whenever the allocator does not keep freed memory (2048x2048: 2048
        # blocks of 128 MB).
        buf = torch.empty(min(step, n), n, dtype=x.dtype, device=x.device)
        mm = attention_mm(x)
        for s in range(0, n, step):
            tick(f"attention {100 * s // n}%")
            f = mm(theta[s : s + step], phi, buf[: min(step, n - s)])
            f.sub_(f.amax(dim=1, keepdim=True))
            F.threshold(f, -80.0, float("-inf"), inplace=True)
            f.exp_()
            z = f.sum(dim=1, keepdim=True)
            f.mul_(vk)
            scale = torch.maximum(f.sum(dim=1, keepdim=True), z.mul_(1e-12))
            out = y[s : s + step]
            mm(f, g, out)
            out.div_(scale)
        return y.t().reshape(b, c, h, w)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if x.shape[0] != 1:
            raise ValueError("the non-local block runs on one image at a time")
        v = valid_keys(mask, x.shape[2:])
        wy = self.res_block(self.W(self.attend(x, v)))
        return v * x + (1 - v) * wy


class PatchAttention(nn.Module):
    """HR multi-scale patch attention ``Patch_Attention_4`` via its ``inference_forward`` (SPEC §7.2).

    Patches mostly covered by holes (mean > 0.6) are replaced by their most similar (cosine) intact
    patch, then ``F_Combine`` fuses the block input, the composed map and the hole mask.
    """

    def __init__(self, channels: int = 512, patch_size: int = 4) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.res_block = nn.Sequential(ResnetBlock(channels))
        self.F_Combine = nn.Conv2d(2 * channels + 1, channels, 3, padding=1)
        self.block_bytes = DEFAULT_BLOCK_BYTES

    def compose(self, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        p = self.patch_size
        h, w = x.shape[2:]
        m_unf = F.unfold(m, kernel_size=p, stride=p)  # (1, p*p, L)
        query = (m_unf.mean(dim=1)[0] > 0.6)  # (L,)
        q_idx = torch.nonzero(query, as_tuple=True)[0]
        if q_idx.numel() == 0:
            return x
        k_idx = torch.nonzero(~query, as_tuple=True)[0]
        if k_idx.numel() == 0:
            from ..errors import InputError

            raise InputError(
                "HR mode cannot restore this photo: the scratch mask covers every region, so there is "
                "nothing intact to copy from. Use a smaller mask or turn HR off."
            )
        x_unf = F.unfold(x, kernel_size=p, stride=p)[0]  # (C*p*p, L)
        keys = x_unf[:, k_idx]  # (D, Lk)
        keys_n = F.normalize(keys, dim=0)
        queries_n = F.normalize(x_unf[:, q_idx].t(), dim=1)  # (Lq, D)
        best = torch.empty(q_idx.numel(), dtype=torch.long, device=x.device)
        step = rows_per_block(k_idx.numel(), self.block_bytes)
        for s in range(0, q_idx.numel(), step):
            tick(f"patch attention {100 * s // q_idx.numel()}%")
            corr = torch.softmax(torch.matmul(queries_n[s : s + step], keys_n), dim=1)
            best[s : s + step] = corr.argmax(dim=1)
            del corr
        x_unf = x_unf.clone()
        x_unf[:, q_idx] = keys[:, best]
        # fold leaves rows/cols beyond the last whole patch at zero, as the official code does
        return F.fold(x_unf[None], output_size=(h, w), kernel_size=p, stride=p)

    def forward(self, z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if z.shape[0] != 1:
            raise ValueError("patch attention runs on one image at a time")
        x = self.res_block(z)
        m = hole_mask_bilinear(mask, x.shape[2:])
        composed = self.compose(x, m)
        return self.F_Combine(torch.cat([z, composed, m], 1))
