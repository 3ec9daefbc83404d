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


def _color_builders() -> dict[str, Callable[[], nn.Module]]:
    from .ddcolor import ddcolor_large, ddcolor_tiny

    return {
        "ddcolor_modelscope": ddcolor_large,
        "ddcolor_paper": ddcolor_large,
        "ddcolor_artistic": ddcolor_large,
        "ddcolor_paper_tiny": ddcolor_tiny,
    }


def _guided_colour_builders() -> dict[str, Callable[[], nn.Module]]:
    from .exemplar import ColorVidNet, VGG19Caffe, WarpNet
    from .siggraph17 import SIGGRAPHGenerator

    return {
        "exemplar_vgg19": VGG19Caffe,
        "exemplar_nonlocal": WarpNet,
        "exemplar_colornet": ColorVidNet,
        "siggraph17": SIGGRAPHGenerator,
    }


def build(component: str) -> nn.Module:
    builders = {**_global_builders(), **_face_builders(), **_color_builders(), **_guided_colour_builders()}
    try:
        return builders[component]()
    except KeyError:
        raise KeyError(f"no network for component {component!r}") from None


# Networks that may run in float16 (``half=True``), measured on the golden data (tests/test_half.py):
# the face generators (within +-1 level of float32), the quality mapping network and the decoders
# (quality mode: a few levels on a few % of values). The rest stays float32 because float16 there
# changes decisions: the scratch mapping's partial non-local block amplifies rounding of its input
# and the HR patch attention picks patches by argmax (each moved golden outputs by up to 150-235
# levels in float16, also with only the shared encoder in float16); the U-Net's and RetinaFace's
# outputs are thresholded (mask pixels, face boxes and landmarks).
HALF_COMPONENTS = frozenset({"vae_b_quality", "vae_b_scratch", "mapping_quality", "face_gen_256", "face_gen_512"})


def instantiate(
    component: str, state_dict: Mapping[str, torch.Tensor], *, fast_convs: bool = False, half: bool = False
) -> nn.Module:
    """The network of ``component`` holding exactly ``state_dict`` (strict), in eval mode.

    Built on the meta device and given the loaded tensors with ``assign=True``: no random
    initialisation and no copy, which is most of the cold-start time of the big mapping networks.
    ``fast_convs``: run the wide 3x3 convolutions with Winograd F(4x4, 3x3) on CPU (``winograd.py``).
    ``half``: float16 parameters for the components in ``HALF_COMPONENTS`` (loading is still strict
    against the float32 checkpoint; the cast comes after). Callers feed inputs of ``param_dtype(net)``.
    """
    with torch.device("meta"):
        net = build(component)
    net.load_state_dict(state_dict, strict=True, assign=True)
    if half and component in HALF_COMPONENTS:
        net.half()
    if fast_convs:
        from .winograd import FAST_PARTS, use_winograd

        for part in FAST_PARTS.get(component, ()):
            use_winograd(net.get_submodule(part) if part else net)
    return net.eval().requires_grad_(False)


def param_dtype(net: nn.Module) -> torch.dtype:
    """The floating dtype a network's inputs must have (float16 after ``instantiate(half=True)``)."""
    for p in net.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32
