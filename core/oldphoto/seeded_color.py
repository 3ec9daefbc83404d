"""Seeded DDColor weights: scheme ``ddcolor-seeded-v1`` (colorize SPEC §8).

The real checkpoints cannot be downloaded on the development machines; the golden set was made with
these weights (seed 36), so reproducing the scheme lets refcheck compare our networks with the
official code, and tests and demos get a DDColor that produces colour without a download.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import torch

from .weights.manifests import Manifest

DDCOLOR_SEED = 36
_SQRT2 = ("pwconv1.weight", "linear1.weight", "color_embed.layers.0.weight", "color_embed.layers.1.weight")


def _draw(file: str, name: str, shape: tuple[int, ...], seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(zlib.crc32(f"{file}|{name}".encode()) ^ seed)
    return torch.randn(shape, generator=g, dtype=torch.float32)


def _unit(file: str, name: str, shape: tuple[int, ...], seed: int) -> torch.Tensor:
    r = _draw(file, name, shape, seed).to(torch.float64)
    return (r / torch.sqrt((r * r).sum())).to(torch.float32)


def ddcolor_seeded_state_dict(manifest: Manifest, seed: int = DDCOLOR_SEED) -> dict[str, torch.Tensor]:
    """SPEC §8 rules 1-11, first match wins, one generator per tensor keyed by ``crc32(file|name) ^ seed``."""
    f = manifest.file
    shapes = manifest.shapes()
    out: dict[str, torch.Tensor] = {}
    for name, shape, _dtype in manifest.tensors:
        if name == "mean":
            t = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float32).view(shape)
        elif name == "std":
            t = torch.tensor([0.229, 0.224, 0.225], dtype=torch.float32).view(shape)
        elif name.endswith("num_batches_tracked"):
            t = torch.tensor(0, dtype=torch.int64)
        elif name.endswith((".weight_u", ".weight_v")):
            t = _unit(f, name, shape, seed)
        else:
            r = _draw(f, name, shape, seed)
            if name.endswith("running_mean"):
                t = r * 0.1
            elif name.endswith("running_var"):
                t = torch.exp(r * 0.2)
            elif name.endswith(".weight_orig"):
                prefix = name[: -len("weight_orig")]
                fan_in = math.prod(shape[1:])
                u = _unit(f, prefix + "weight_u", shapes[prefix + "weight_u"], seed)
                v = _unit(f, prefix + "weight_v", shapes[prefix + "weight_v"], seed)
                s = torch.tensor(math.sqrt(fan_in), dtype=torch.float32)
                t = r + ((u[:, None] * v[None, :]) * s).reshape(shape)
            elif name.endswith(".gamma"):
                t = r * 0.03 + 0.3
            elif name.endswith(("query_feat.weight", "query_embed.weight", "level_embed.weight")):
                t = r * 1.0
            elif name.endswith("bias"):
                t = r * 0.1
            elif len(shape) >= 2:
                gain = 12.0 if name.endswith("color_embed.layers.2.weight") else (
                    math.sqrt(2.0) if name.endswith(_SQRT2) else 1.0)
                t = r * float(np.float32(gain / math.sqrt(math.prod(shape[1:]))))
            elif name.endswith("weight"):
                t = r * 0.1 + 1.0
            else:
                raise ValueError(f"no seeded rule for tensor {name!r}")
        out[name] = t
    return out


def state_dict_sha256(manifest: Manifest, sd: dict[str, torch.Tensor]) -> str:
    """sha256 over all tensors' raw little-endian bytes in manifest order (``sha256_all``)."""
    import hashlib

    h = hashlib.sha256()
    for name, _, _ in manifest.tensors:
        h.update(sd[name].contiguous().numpy().astype(sd[name].numpy().dtype.newbyteorder("<")).tobytes())
    return h.hexdigest()
