"""weights.json: which file each component is, where it is published, and where it came from.

The registry is data, parsed once per path; everything else in the package asks it. A fork, a
mirror or a test points ``$OLDPHOTO_WEIGHTS_JSON`` at its own copy instead of editing the package.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

from ..errors import WeightsError

ENV_WEIGHTS_DIR = "OLDPHOTO_WEIGHTS_DIR"
ENV_CACHE = "OLDPHOTO_CACHE"
ENV_WEIGHTS_JSON = "OLDPHOTO_WEIGHTS_JSON"

MODES = ("quality", "scratch", "hr", "faces", "all")
_GLOBAL_MODES = {
    "quality": ["vae_a_quality", "vae_b_quality", "mapping_quality"],
    "scratch": ["detection_unet", "vae_a_quality", "vae_b_scratch", "mapping_scratch"],
    "hr": ["detection_unet", "vae_a_quality", "vae_b_scratch", "mapping_patch_attention"],
}


@dataclass(frozen=True)
class Upstream:
    """Where the official pickle of a component comes from."""

    path: str
    """Path in the official repository layout (and in the Hub mirror when ``in_mirror``)."""
    archive: str | None
    """Official release zip holding it (key of ``upstream.archives``)."""
    member: str | None
    """Member path inside that zip (``None``: the zip's single checkpoint)."""
    in_mirror: bool


@dataclass(frozen=True)
class ComponentSpec:
    name: str
    repo_id: str
    revision: str
    filename: str
    sha256: str | None
    size: int | None
    manifest: str
    upstream: Upstream


@dataclass(frozen=True)
class Registry:
    """Parsed weights.json."""

    components: dict[str, ComponentSpec]
    mirror_repo_id: str
    mirror_revision: str
    archives: dict[str, dict] = field(default_factory=dict)
    source: str = ""


def _parse_registry(data: dict, source: str) -> Registry:
    up = data.get("upstream", {})
    mirror = up.get("mirror", {})
    comps = {}
    for name, c in data["components"].items():
        u = c.get("upstream", {})
        comps[name] = ComponentSpec(
            name=name,
            repo_id=c["repo_id"],
            revision=c["revision"],
            filename=c["filename"],
            sha256=c.get("sha256"),
            size=c.get("size"),
            manifest=c["manifest"],
            upstream=Upstream(
                path=u["path"],
                archive=u.get("archive"),
                member=u.get("member"),
                in_mirror=bool(u.get("in_mirror")),
            ),
        )
    return Registry(
        comps, mirror.get("repo_id", ""), mirror.get("revision", ""), up.get("archives", {}), source
    )


@lru_cache(maxsize=8)
def _load_registry(path: str | None) -> Registry:
    if path is None:
        res = resources.files("oldphoto").joinpath("weights.json")
        return _parse_registry(json.loads(res.read_text(encoding="utf-8")), str(res))
    return _parse_registry(json.loads(Path(path).read_text(encoding="utf-8")), path)


def registry(path: str | os.PathLike | None = None) -> Registry:
    """weights.json of the package, or ``path`` / ``$OLDPHOTO_WEIGHTS_JSON`` (tests, forks, mirrors)."""
    p = path or os.environ.get(ENV_WEIGHTS_JSON)
    return _load_registry(str(Path(p).resolve()) if p else None)


def component_spec(component: str, reg: Registry | None = None) -> ComponentSpec:
    reg = reg or registry()
    try:
        return reg.components[component]
    except KeyError:
        raise WeightsError(
            f"Unknown weights component {component!r}; known: {', '.join(reg.components)}."
        ) from None


def components_for_modes(modes: Iterable[str]) -> list[str]:
    """Components ``oldphoto weights download --mode ...`` fetches, in a stable order.

    ``quality``/``scratch``/``hr`` are the global-stage modes of ``Restorer`` (scratch and hr include
    the detection U-Net); ``faces`` adds the face detector and the 256 px generator, or the 512 px
    one when ``hr`` is also asked for: the same files ``Restorer.components_for`` lists.
    """
    modes = list(modes)
    bad = [m for m in modes if m not in MODES]
    if bad:
        raise WeightsError(f"Unknown mode(s) {', '.join(bad)}; choose from {', '.join(MODES)}.")
    if "all" in modes:
        return list(registry().components)
    out: list[str] = []
    for m in modes:
        if m == "faces":
            out += ["retinaface_resnet50", "face_gen_512" if "hr" in modes else "face_gen_256"]
        else:
            out += _GLOBAL_MODES[m]
    return list(dict.fromkeys(out))
