"""Networks, one module per official network; attribute names equal the checkpoint tensor names.

``build(component)`` constructs the (unloaded) network for a weights component of weights.json.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import nn


def _global_builders() -> dict[str, Callable[[], nn.Module]]:
    from .mapping import MappingPatchAttention, MappingQuality, MappingScratch
    from .unet import ScratchUNet
    from .vae import VAEGenerator

    return {
        "detection_unet": ScratchUNet,
        "vae_a_quality": VAEGenerator,
        "vae_b_quality": VAEGenerator,
        "vae_b_scratch": VAEGenerator,
        "mapping_quality": MappingQuality,
        "mapping_scratch": MappingScratch,
        "mapping_patch_attention": MappingPatchAttention,
    }


def _face_builders() -> dict[str, Callable[[], nn.Module]]:
    try:
        from .faces_registry import FACE_BUILDERS
    except ImportError:
        return {}
    return dict(FACE_BUILDERS)


def build(component: str) -> nn.Module:
    builders = {**_global_builders(), **_face_builders()}
    try:
        return builders[component]()
    except KeyError:
        raise KeyError(f"no network for component {component!r}") from None


def instantiate(component: str, state_dict: Mapping[str, torch.Tensor], *, fast_convs: bool = False) -> nn.Module:
    """The network of ``component`` holding exactly ``state_dict`` (strict), in eval mode.

    Built on the meta device and given the loaded tensors with ``assign=True``: no random
    initialisation and no copy, which is most of the cold-start time of the big mapping networks.
    ``fast_convs``: run the wide 3x3 convolutions with Winograd F(4x4, 3x3) on CPU (``winograd.py``).
    """
    with torch.device("meta"):
        net = build(component)
    net.load_state_dict(state_dict, strict=True, assign=True)
    if fast_convs:
        from .winograd import FAST_PARTS, use_winograd

        for part in FAST_PARTS.get(component, ()):
            use_winograd(net.get_submodule(part) if part else net)
    return net.eval().requires_grad_(False)
