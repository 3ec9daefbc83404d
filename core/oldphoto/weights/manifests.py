"""Checkpoint manifests: the exact tensor names, shapes and dtypes of each official checkpoint.

They ship inside the package (``oldphoto/manifests/*.json``, copied from the reference set) so that
weights can be verified by structure even where no sha256 is known, and so that tests can build
seeded weights anywhere. :func:`check_structure` is the check every loaded or converted file passes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import WeightsError

if TYPE_CHECKING:
    import torch

COMPONENT_MANIFESTS = {
    "detection_unet": "detection_FT_Epoch_latest.json",
    "vae_a_quality": "VAE_A_quality_G.json",
    "vae_b_quality": "VAE_B_quality_G.json",
    "vae_b_scratch": "VAE_B_scratch_G.json",
    "mapping_quality": "mapping_quality.json",
    "mapping_scratch": "mapping_scratch.json",
    "mapping_patch_attention": "mapping_Patch_Attention.json",
    "face_gen_256": "Setting_9_epoch_100.json",
    "face_gen_512": "FaceSR_512.json",
    "retinaface_resnet50": "retinaface_resnet50_2020-07-20.json",
    # colour (colorize SPEC §2): the three DDColor-L checkpoints share one architecture
    "ddcolor_modelscope": "ddcolor_large.json",
    "ddcolor_paper": "ddcolor_large.json",
    "ddcolor_artistic": "ddcolor_large.json",
    "ddcolor_paper_tiny": "ddcolor_paper_tiny.json",
    # guided colour (issue 24): Deep Exemplar's three inference files and SIGGRAPH17
    "exemplar_vgg19": "vgg19_conv.json",
    "exemplar_nonlocal": "nonlocal_net_iter_76000.json",
    "exemplar_colornet": "colornet_iter_76000.json",
    "siggraph17": "siggraph17-df00044c.json",
}
COLOR_COMPONENTS = ("ddcolor_modelscope", "ddcolor_paper", "ddcolor_artistic", "ddcolor_paper_tiny")
"""Components of the colour stage; restoration runs never need them."""
GUIDED_COLOR_COMPONENTS = ("exemplar_vgg19", "exemplar_nonlocal", "exemplar_colornet", "siggraph17")
"""Reference-photo and colour-point models (issue 24): only those modes need them."""


@dataclass(frozen=True)
class Manifest:
    name: str
    file: str
    tensors: tuple[tuple[str, tuple[int, ...], str], ...]

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {n: s for n, s, _ in self.tensors}


def _parse(name: str, data: dict) -> Manifest:
    tensors = tuple((t[0], tuple(int(v) for v in t[1]), str(t[2])) for t in data["tensors"])
    return Manifest(name=name, file=str(data.get("file", name)), tensors=tensors)


@cache
def load_manifest(component: str) -> Manifest:
    """Manifest of a component name as used in weights.json (e.g. ``"mapping_scratch"``)."""
    try:
        fname = COMPONENT_MANIFESTS[component]
    except KeyError:
        raise KeyError(f"unknown component {component!r}; known: {sorted(COMPONENT_MANIFESTS)}") from None
    text = resources.files("oldphoto").joinpath("manifests", fname).read_text(encoding="utf-8")
    return _parse(component, json.loads(text))


def load_manifest_file(path: str | Path) -> Manifest:
    path = Path(path)
    return _parse(path.stem, json.loads(path.read_text(encoding="utf-8")))


def check_structure(component: str, state: dict[str, torch.Tensor]) -> None:
    """Raise :class:`WeightsError` listing missing, unexpected, mis-shaped and mis-typed tensors."""
    manifest = load_manifest(component)
    expected = manifest.shapes()
    dtypes = {n: d for n, _, d in manifest.tensors}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    common = set(expected) & set(state)
    misshaped = sorted(
        f"{k}: {tuple(state[k].shape)} != {expected[k]}"
        for k in common
        if tuple(state[k].shape) != expected[k]
    )
    mistyped = sorted(
        f"{k}: {str(state[k].dtype).replace('torch.', '')} != {dtypes[k]}"
        for k in common
        if str(state[k].dtype).replace("torch.", "") != dtypes[k]
    )
    if missing or unexpected or misshaped or mistyped:
        parts = []
        for label, items in (
            ("missing", missing),
            ("unexpected", unexpected),
            ("wrong shape", misshaped),
            ("wrong dtype", mistyped),
        ):
            if items:
                shown = ", ".join(items[:8]) + (f" ... (+{len(items) - 8} more)" if len(items) > 8 else "")
                parts.append(f"{label}: {shown}")
        raise WeightsError(
            f"Weights for '{component}' do not match the official checkpoint layout; " + "; ".join(parts)
        )
