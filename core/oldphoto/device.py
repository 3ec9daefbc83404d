"""Device selection: ``auto`` means CUDA when torch sees a GPU, else the CPU."""

from __future__ import annotations

import torch

from .errors import OldPhotoError


def resolve_device(spec: str | torch.device = "auto") -> torch.device:
    if isinstance(spec, torch.device):
        return spec
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise OldPhotoError(
                "CUDA was requested but this PyTorch build sees no GPU; use --device cpu (or auto)."
            )
        return torch.device(spec)
    if spec == "cpu":
        return torch.device("cpu")
    raise OldPhotoError(f"Unknown device {spec!r}; use auto, cpu, cuda or cuda:N.")
