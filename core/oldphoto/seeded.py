"""Deterministic "seeded" weights used by the golden reference data and by tests.

The real checkpoints cannot be downloaded on the development machines, so the reference set was
produced with weights generated from each manifest by a fixed scheme; reproducing the scheme lets
us compare our networks against the official code bit for bit.

* Global networks: ``reference/global/SPEC.md`` section 10 (seeded by file path and tensor name).
* Face generator: ``reference/face/SPEC.md`` section 3, scheme ``bopbtl-face-seeded-v1``.
* DDColor: ``reference/colorize/ddcolor/SPEC.md`` section 8, scheme ``ddcolor-seeded-v1`` (``seeded_color``).
* Deep Exemplar: ``reference/colorize/exemplar/SPEC.md`` section 9, scheme ``exemplar-seeded-v1``.
* SIGGRAPH17: ``reference/colorize/siggraph17/SPEC.md`` section 10 (the global scheme unchanged).
"""

from __future__ import annotations

import math
import zlib

import torch

from .weights.manifests import Manifest


def global_seeded_state_dict(manifest: Manifest, seed: int) -> dict[str, torch.Tensor]:
    """Global SPEC §10: one generator per tensor keyed by ``crc32(file|name) ^ seed``."""
    out: dict[str, torch.Tensor] = {}
    for name, shape, _dtype in manifest.tensors:
        if name.endswith("num_batches_tracked"):
            out[name] = torch.tensor(0, dtype=torch.int64)
            continue
        if name.endswith(".filt"):
            k = torch.tensor([1.0, 2.0, 1.0], dtype=torch.float64)
            filt = (torch.outer(k, k) / 16.0).to(torch.float32)
            out[name] = filt.expand(shape).clone()
            continue
        g = torch.Generator().manual_seed(zlib.crc32(f"{manifest.file}|{name}".encode()) ^ seed)
        r = torch.randn(shape, generator=g, dtype=torch.float32)
        if name.endswith("running_mean"):
            t = 0.1 * r
        elif name.endswith("running_var"):
            t = torch.exp(0.2 * r)
        elif len(shape) >= 2:
            t = r * math.sqrt(2.0 / math.prod(shape[1:]))
        elif name.endswith("weight"):
            t = 1 + 0.1 * r
        elif name.endswith("bias"):
            t = 0.1 * r
        else:
            raise ValueError(f"no seeded rule for tensor {name!r}")
        out[name] = t
    return out


EXEMPLAR_COLORNET = "checkpoints/video_moredata_l1/colornet_iter_76000.pth"


def exemplar_seeded_state_dict(manifest: Manifest, seed: int) -> dict[str, torch.Tensor]:
    """Exemplar SPEC §9 (``exemplar-seeded-v1``): the global generator per tensor, scaled by kind.

    The colour network gets "Dirac plus 0.25 x He" 3x3 kernels so that its output stays smooth in
    its input (the SPEC explains why); the rule order below is the SPEC's.
    """
    out: dict[str, torch.Tensor] = {}
    colornet = manifest.file == EXEMPLAR_COLORNET
    for name, shape, _dtype in manifest.tensors:
        g = torch.Generator().manual_seed(zlib.crc32(f"{manifest.file}|{name}".encode()) ^ seed)
        r = torch.randn(shape, generator=g, dtype=torch.float32)
        if name.endswith("bias"):
            t = r * 0.1
        elif tuple(shape) == (1,):  # PReLU slope (one per module)
            t = r * 0.05 + 0.25
        elif len(shape) == 4 and math.prod(shape[1:]) == 1:  # depthwise 1x1 (conv*_norm_ss)
            t = r * 0.1 + 1.0
        elif colornet and len(shape) == 4 and shape[2:] == (3, 3):
            o, i = shape[0], shape[1]
            t = r * (0.25 * math.sqrt(2.0 / (i * 9)))
            idx = torch.arange(o)
            t[idx, idx % i, 1, 1] += 1.0
        elif colornet and name == "conv10_ab.weight":
            t = r * math.sqrt(0.25 / 128)
        elif len(shape) == 4:
            t = r * math.sqrt(2.0 / math.prod(shape[1:]))
        else:
            raise ValueError(f"no seeded rule for tensor {name!r}")
        out[name] = t
    return out


GLOBAL_SEED = 36
FACE_SEED = 1234
EXEMPLAR_COMPONENTS = ("exemplar_vgg19", "exemplar_nonlocal", "exemplar_colornet")


def seeded_state_dict(component: str, seed: int | None = None) -> dict[str, torch.Tensor]:
    """Seeded weights of any component, by the scheme its reference golden set uses."""
    from .weights.manifests import load_manifest

    manifest = load_manifest(component)
    if component.startswith("ddcolor_"):
        from .seeded_color import DDCOLOR_SEED, ddcolor_seeded_state_dict

        return ddcolor_seeded_state_dict(manifest, DDCOLOR_SEED if seed is None else seed)
    if component.startswith("face_gen"):
        from .seeded_face import face_seeded_state_dict

        return face_seeded_state_dict(manifest, FACE_SEED if seed is None else seed)
    if component in EXEMPLAR_COMPONENTS:
        return exemplar_seeded_state_dict(manifest, GLOBAL_SEED if seed is None else seed)
    sd = global_seeded_state_dict(manifest, GLOBAL_SEED if seed is None else seed)
    if component == "retinaface_resnet50":
        # RetinaFace has no golden set; the global scheme covers its tensor kinds, but a random
        # detector "finds" thousands of faces. Seeded runs (tests, demos without real weights)
        # should see a quiet detector: class heads answer "background" everywhere.
        for k in list(sd):
            if k.startswith("ClassHead.") and k.endswith(".weight"):
                sd[k] = torch.zeros_like(sd[k])
            elif k.startswith("ClassHead.") and k.endswith(".bias"):
                sd[k] = torch.tensor([5.0, -5.0] * (sd[k].numel() // 2))
    return sd


def write_seeded_weights(out_dir, components=None) -> None:
    """Write ``<component>.safetensors`` files for tests and demos without real weights."""
    from pathlib import Path

    from safetensors.torch import save_file

    from .weights.manifests import COLOR_COMPONENTS, COMPONENT_MANIFESTS, GUIDED_COLOR_COMPONENTS

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # colour weights are named explicitly (the three DDColor-L files are ~0.9 GB each)
    for comp in components or [c for c in COMPONENT_MANIFESTS if c not in (*COLOR_COMPONENTS, *GUIDED_COLOR_COMPONENTS)]:
        path = out / f"{comp}.safetensors"
        if path.exists():
            continue
        try:
            sd = seeded_state_dict(comp)
        except ImportError:  # a scheme not implemented yet
            continue
        tmp = path.with_suffix(".tmp")
        save_file({k: v.contiguous() for k, v in sd.items()}, str(tmp))
        tmp.replace(path)
