"""Locating, verifying and loading model weights (safetensors).

Resolution order for a component (names as in ``weights.json``): an explicit local directory
(``weights_dir`` / ``OLDPHOTO_WEIGHTS_DIR``) holding ``<component>.safetensors``; later the
Hugging Face Hub cache and download (issue: weights).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .errors import WeightsError
from .manifests import load_manifest

ENV_WEIGHTS_DIR = "OLDPHOTO_WEIGHTS_DIR"


def check_structure(component: str, state: dict[str, torch.Tensor]) -> None:
    """Raise :class:`WeightsError` listing missing, unexpected and mis-shaped tensors."""
    expected = load_manifest(component).shapes()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    misshaped = sorted(
        f"{k}: {tuple(state[k].shape)} != {expected[k]}"
        for k in set(expected) & set(state)
        if tuple(state[k].shape) != expected[k]
    )
    if missing or unexpected or misshaped:
        parts = []
        for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", misshaped)):
            if items:
                shown = ", ".join(items[:8]) + (f" ... (+{len(items) - 8} more)" if len(items) > 8 else "")
                parts.append(f"{label}: {shown}")
        raise WeightsError(f"Weights for '{component}' do not match the official checkpoint layout; " + "; ".join(parts))


def _weights_dir(weights_dir: str | os.PathLike | None) -> Path | None:
    if weights_dir is not None:
        return Path(weights_dir)
    env = os.environ.get(ENV_WEIGHTS_DIR)
    return Path(env) if env else None


def load_state_dict(component: str, *, weights_dir: str | os.PathLike | None = None) -> dict[str, torch.Tensor]:
    """Load and structurally verify the state dict of ``component``."""
    from safetensors.torch import load_file

    wdir = _weights_dir(weights_dir)
    if wdir is None:
        raise WeightsError(
            f"No weights found for '{component}': pass --weights-dir DIR or set {ENV_WEIGHTS_DIR}."
        )
    path = wdir / f"{component}.safetensors"
    if not path.is_file():
        raise WeightsError(f"Weights file for '{component}' not found: {path}")
    try:
        state = load_file(str(path))
    except Exception as exc:  # safetensors raises several types for corrupt headers
        raise WeightsError(f"Weights file {path} is corrupt or not a safetensors file ({exc}).") from exc
    check_structure(component, state)
    return state
