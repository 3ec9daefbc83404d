"""Linear layers through oneDNN on the CPU, with the activation fused into the GEMM.

Why not ``F.linear``: on a CPU float32 tensor it calls MKL's sgemm, which on the DDColor encoder's
shapes (1024 x 768 -> 3072 and back) runs at ~75 GMAC/s on two AVX-512 cores, where oneDNN's JIT
GEMM, the one torch's own CPU compiler backend emits (``torch.ops.mkldnn._linear_pointwise``),
reaches ~100; fusing GELU or ReLU into it also saves a pass over the 4x wide hidden map (a
ConvNeXt-L stage-2 MLP: 57 -> 46 ms). The products are the same, rounded per oneDNN's blocking
instead of MKL's (golden features within 1e-5 of the official ones, as before).

Anything else (CUDA, half precision, autograd, a torch build without oneDNN or the op,
``torch.backends.mkldnn.enabled = False``) takes ``F.linear`` and the activation: same results
within float32 rounding. What decides is the tensor and the build, never a timing.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

try:
    _OP = torch.ops.mkldnn._linear_pointwise
except (AttributeError, RuntimeError):  # a torch without oneDNN's fused linear
    _OP = None

_ACT = {"none": lambda y: y, "relu": F.relu, "gelu": F.gelu}
_ALGORITHM = {"none": "", "relu": "", "gelu": "none"}  # oneDNN's "none" GELU is the exact erf form, as F.gelu


def fused(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """True when oneDNN's fused linear serves ``x @ weight.T`` (CPU float32, no autograd)."""
    return (
        _OP is not None
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and weight.dtype == torch.float32
        and torch.backends.mkldnn.is_available()
        and torch.backends.mkldnn.enabled
        and not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad))
    )


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, act: str = "none") -> torch.Tensor:
    """``act(F.linear(x, weight, bias))`` for ``act`` in "none", "relu", "gelu" (exact erf GELU)."""
    if not fused(x, weight):
        return _ACT[act](F.linear(x, weight, bias))
    rows = x.reshape(-1, x.shape[-1])
    if not rows.is_contiguous():
        rows = rows.contiguous()
    y = _OP(rows, weight, bias, act, [], _ALGORITHM[act])
    return y.view(*x.shape[:-1], weight.shape[0])
