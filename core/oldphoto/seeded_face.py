"""Seeded face-generator weights, scheme ``bopbtl-face-seeded-v1`` (face SPEC section 3).

The face golden set was produced with these generated weights because the pretrained checkpoints
are not available offline. Every rule below is written with explicit float32 constants and the
exact operation order of the SPEC, since the golden check compares sha256 hashes of the raw bytes:
a float64 intermediate or a reordered multiply would change the last bit of some values.
"""

from __future__ import annotations

import hashlib
import math
import zlib

import torch

from .weights.manifests import Manifest

SCHEME = "bopbtl-face-seeded-v1"

# SPEC 3: gain of the plain (non-spectral-norm) conv weights, by the module name's last part.
_PLAIN_GAINS = {"fc": 1.0, "mlp_shared": 1.0, "mlp_gamma": 0.5, "mlp_beta": 0.5, "conv_img": 0.7}


def _f32(x: float) -> torch.Tensor:
    """A float32 scalar tensor, so the multiply happens in float32 with this exact rounded constant."""
    return torch.tensor(x, dtype=torch.float32)


def _draw(name: str, shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """SPEC 3: one generator per tensor, seeded by ``crc32(name) ^ seed`` (order-independent)."""
    g = torch.Generator(device="cpu").manual_seed(zlib.crc32(name.encode("utf-8")) ^ seed)
    return torch.randn(shape, generator=g, dtype=torch.float32)


def _unit(name: str, shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """``weight_u`` / ``weight_v``: the draw normalised in float64, then rounded to float32."""
    r = _draw(name, shape, seed).to(torch.float64)
    return (r / torch.sqrt((r * r).sum())).to(torch.float32)


def _plain_gain(name: str) -> float:
    parts = name.split(".")[:-1]  # drop "weight"
    for part in reversed(parts):
        if part in _PLAIN_GAINS:
            return _PLAIN_GAINS[part]
    raise ValueError(f"no seeded gain rule for plain conv weight {name!r}")


def face_seeded_state_dict(manifest: Manifest, seed: int) -> dict[str, torch.Tensor]:
    """All tensors of a face-generator manifest by scheme ``bopbtl-face-seeded-v1``.

    Works for both ``Setting_9_epoch_100`` (256) and ``FaceSR_512`` (identical tensor lists).
    """
    shapes = manifest.shapes()
    out: dict[str, torch.Tensor] = {}
    for name, shape, _dtype in manifest.tensors:
        if name.endswith(".num_batches_tracked"):
            out[name] = torch.tensor(0, dtype=torch.int64)
        elif name.endswith(".running_mean"):
            out[name] = _draw(name, shape, seed) * _f32(0.1)
        elif name.endswith(".running_var"):
            r = _draw(name, shape, seed)
            out[name] = _f32(0.75) + _f32(0.25) * (r * r)
        elif name.endswith(".weight_u") or name.endswith(".weight_v"):
            out[name] = _unit(name, shape, seed)
        elif name.endswith(".weight_orig"):
            base = name[: -len("weight_orig")]
            u = _unit(base + "weight_u", shapes[base + "weight_u"], seed)
            v = _unit(base + "weight_v", shapes[base + "weight_v"], seed)
            fan_in = math.prod(shape[1:])
            uv = (u[:, None] * v[None, :]) * _f32(math.sqrt(fan_in))
            out[name] = _draw(name, shape, seed) + uv.reshape(shape)
        elif name.endswith(".weight"):
            fan_in = math.prod(shape[1:])
            out[name] = _draw(name, shape, seed) * _f32(_plain_gain(name) / math.sqrt(fan_in))
        elif name.endswith(".bias"):
            out[name] = _draw(name, shape, seed) * _f32(0.02)
        else:
            raise ValueError(f"no seeded rule for tensor {name!r}")
    return out


def tensor_sha256(t: torch.Tensor) -> str:
    """sha256 of the little-endian C-contiguous raw bytes, as in the golden weights check."""
    a = t.detach().cpu().contiguous().numpy()
    return hashlib.sha256(a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()).hexdigest()


def state_dict_sha256(manifest: Manifest, state: dict[str, torch.Tensor]) -> str:
    """sha256 of all tensors' raw bytes concatenated in manifest order (golden weights check)."""
    h = hashlib.sha256()
    for name, _shape, _dtype in manifest.tensors:
        a = state[name].detach().cpu().contiguous().numpy()
        h.update(a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes())
    return h.hexdigest()
