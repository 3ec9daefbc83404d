"""weights.json: which file each component is, where it is published, and where it came from.

The registry is data, parsed once per path; everything else in the package asks it. A fork, a
mirror or a test points ``$OLDPHOTO_WEIGHTS_JSON`` at its own copy instead of editing the package.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path

from ..errors import WeightsError

ENV_WEIGHTS_DIR = "OLDPHOTO_WEIGHTS_DIR"
ENV_CACHE = "OLDPHOTO_CACHE"
ENV_WEIGHTS_JSON = "OLDPHOTO_WEIGHTS_JSON"

MODES = ("quality", "scratch", "hr", "faces", "colorize", "all", "reference", "points")
_GLOBAL_MODES = {
    "quality": ["vae_a_quality", "vae_b_quality", "mapping_quality"],
    "scratch": ["detection_unet", "vae_a_quality", "vae_b_scratch", "mapping_scratch"],
    "hr": ["detection_unet", "vae_a_quality", "vae_b_scratch", "mapping_patch_attention"],
}


PINNED_REVISION_LEN = 40
HUB_TYPES = ("model", "dataset", "space")


@dataclass(frozen=True)
class Source:
    """One place a component's file can come from (``sources`` in weights.json, tried in order).

    ``kind`` "hub": ``path`` in the Hub repo ``repo_id`` (of ``repo_type``) at ``revision``: a
    40-hex commit (pinned) or None (unpinned: the repo's ``main`` at the time of the download; the
    file must then pass the manifest check and ``torch.load(weights_only=True)``, and the chain says
    it used an unpinned source). A ``.safetensors`` path is a converted file used as is (the
    project's own repo); anything else is an official pickle (or a zip wrapping one) converted here.
    ``kind`` "archive": ``member`` of the release zip ``archive`` (a key of ``archives``, whose
    ``urls`` are tried in order; ``member`` None: the zip's single checkpoint). ``kind`` "url": the
    checkpoint file itself (a ``.pth`` release asset), at ``urls`` tried in order.
    """

    kind: str
    """"hub", "archive" or "url" (a checkpoint file itself at one or more URLs)."""
    repo_id: str = ""
    repo_type: str = "model"
    path: str = ""
    revision: str | None = None
    archive: str | None = None
    member: str | None = None
    sha256_prefix: str | None = None
    """Leading hex digits of the sha256 of the served file itself (the RetinaFace zip's name carries them)."""
    urls: tuple[str, ...] = ()
    """``kind`` "url": where the checkpoint file is served, tried in order."""
    published: bool = False
    """The project's own safetensors repo (always the first source): its file is used as is."""

    @property
    def safetensors(self) -> bool:
        return self.published

    @property
    def pinned(self) -> bool:
        return self.kind == "hub" and self.revision is not None and len(self.revision) == PINNED_REVISION_LEN

    def label(self) -> str:
        """How log lines, errors and ``weights status`` name it."""
        if self.kind == "archive":
            return f"release archive {self.archive} ({self.member or 'its single checkpoint'})"
        if self.kind == "url":
            return f"download {self.urls[0]}"
        kind = "" if self.repo_type == "model" else f"{self.repo_type} "
        rev = f"@{self.revision[:12]}" if self.pinned else "@main, unpinned"
        return f"Hub {kind}repo {self.repo_id}{rev}: {self.path}"


@dataclass(frozen=True)
class Official:
    """The official pickle a component converts from: its path in the official layout and, where
    known, its sha256 and size (checked before conversion, whatever source served it)."""

    path: str
    sha256: str | None = None
    size: int | None = None


@dataclass(frozen=True)
class Upstream:
    """Where the official pickle of a component comes from (schema 2's view, derived from ``sources``)."""

    path: str
    """Path in the official repository layout (and in the Hub mirror when ``in_mirror``)."""
    archive: str | None
    """Official release zip holding it (key of ``archives``)."""
    member: str | None
    """Member path inside that zip (``None``: the zip's single checkpoint)."""
    in_mirror: bool


@dataclass(frozen=True)
class ComponentSpec:
    name: str
    repo_id: str
    """The project's safetensors repo (the first source): the Hub cache is looked up there."""
    revision: str
    filename: str
    sha256: str | None
    """sha256 of the converted safetensors file, once published; any source whose conversion
    differs is refused."""
    size: int | None
    manifest: str
    upstream: Upstream
    official: Official = field(default_factory=lambda: Official(""))
    sources: tuple[Source, ...] = ()
    settings: tuple[tuple[str, object], ...] = ()
    """Per-checkpoint options of the model code (e.g. SIGGRAPH17's ``mask_convention``), as pairs."""

    def setting(self, key: str, default: object = None) -> object:
        return dict(self.settings).get(key, default)


@dataclass(frozen=True)
class Registry:
    """Parsed weights.json."""

    components: dict[str, ComponentSpec]
    mirror_repo_id: str
    """The first pinned Hub repo of official pickles (schema 2's single mirror)."""
    mirror_revision: str
    archives: dict[str, dict] = field(default_factory=dict)
    """name -> {"urls": [...], "url": first URL, "unpacks_into": ..., "sha256_prefix": ...}"""
    source: str = ""


def _parse_source(name: str, s: dict, archives: dict) -> Source:
    if "hub" in s:
        rev = s.get("revision")
        if rev is not None and (len(rev) != PINNED_REVISION_LEN or any(c not in "0123456789abcdef" for c in rev)):
            raise WeightsError(f"weights.json: '{name}': revision {rev!r} of {s['hub']} is not a 40-hex commit id "
                               "(write null for an unpinned source)")
        if s.get("type", "model") not in HUB_TYPES:
            raise WeightsError(f"weights.json: '{name}': Hub repo type {s.get('type')!r} is not one of {HUB_TYPES}")
        return Source("hub", repo_id=s["hub"], repo_type=s.get("type", "model"), path=s["path"], revision=rev,
                      sha256_prefix=s.get("sha256_prefix"))
    if "archive" in s:
        if s["archive"] not in archives:
            raise WeightsError(f"weights.json: '{name}': archive {s['archive']!r} is not listed under 'archives'")
        return Source("archive", archive=s["archive"], member=s.get("member"),
                      sha256_prefix=archives[s["archive"]].get("sha256_prefix"))
    if "url" in s or "urls" in s:
        urls = tuple([s["url"]] if "url" in s else s["urls"])
        if not urls:
            raise WeightsError(f"weights.json: '{name}': a url source lists no URL")
        return Source("url", urls=urls, sha256_prefix=s.get("sha256_prefix"))
    raise WeightsError(f"weights.json: '{name}': a source needs 'hub', 'archive' or 'url': {s}")


def _parse_registry(data: dict, source: str) -> Registry:
    if data.get("schema") != 3:
        raise WeightsError(f"{source}: weights.json schema {data.get('schema')!r} is not supported (expected 3)")
    archives = {}
    for arch, info in data.get("archives", {}).items():
        urls = list(info.get("urls") or [])
        if not urls:
            raise WeightsError(f"weights.json: archive {arch!r} lists no URL")
        archives[arch] = {**info, "urls": urls, "url": urls[0]}
    comps = {}
    mirror: tuple[str, str] | None = None
    for name, c in data["components"].items():
        sources = tuple(_parse_source(name, s, archives) for s in c["sources"])
        if not sources or sources[0].kind != "hub" or not sources[0].path.endswith(".safetensors"):
            raise WeightsError(f"weights.json: '{name}': the first source must be the project's safetensors repo")
        ours = replace(sources[0], published=True)
        sources = (ours, *sources[1:])
        pickles = [s for s in sources[1:] if s.kind == "hub"]
        if mirror is None and pickles and pickles[0].pinned:
            mirror = (pickles[0].repo_id, pickles[0].revision or "")
        off = c.get("official", {})
        official = Official(off.get("path", ""), off.get("sha256"), off.get("size"))
        first_archive = next((s for s in sources if s.kind == "archive"), None)
        comps[name] = ComponentSpec(
            name=name,
            repo_id=ours.repo_id,
            revision=ours.revision or "main",
            filename=c["filename"],
            sha256=c.get("sha256"),
            size=c.get("size"),
            manifest=c["manifest"],
            upstream=Upstream(
                path=official.path,
                archive=first_archive.archive if first_archive else None,
                member=first_archive.member if first_archive else None,
                in_mirror=False,
            ),
            official=official,
            sources=sources,
            settings=tuple(sorted((c.get("settings") or {}).items())),
        )
    m_repo, m_rev = mirror or ("", "")
    for name, spec in comps.items():  # schema 2's in_mirror: the mirror serves this file at its pin
        in_mirror = any(s.repo_id == m_repo and s.revision == m_rev for s in spec.sources if s.kind == "hub")
        comps[name] = replace(spec, upstream=replace(spec.upstream, in_mirror=in_mirror))
    return Registry(comps, m_repo, m_rev, archives, source)


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


_GUIDED = {"reference": ["exemplar_vgg19", "exemplar_nonlocal", "exemplar_colornet"], "points": ["siggraph17"]}
"""Colour from a reference photo (Deep Exemplar, 0.24 GB) and from colour points (SIGGRAPH17, 0.14 GB)."""


def components_for_modes(modes: Iterable[str]) -> list[str]:
    """Components ``oldphoto weights download --mode ...`` fetches, in a stable order.

    ``quality``/``scratch``/``hr`` are the global-stage modes of ``Restorer`` (scratch and hr include
    the detection U-Net); ``faces`` adds the face detector and the 256 px generator, or the 512 px
    one when ``hr`` is also asked for: the same files ``Restorer.components_for`` lists.
    ``colorize`` is DDColor's default model (``ddcolor_modelscope``, 0.9 GB); the other colour models
    are fetched by name (``--component ddcolor_paper_tiny``) or on first use. ``all`` is every
    restoration file; the colour models are only fetched when asked for (3 x 0.9 GB + 0.2 GB).
    """
    modes = list(modes)
    bad = [m for m in modes if m not in MODES]
    if bad:
        raise WeightsError(f"Unknown mode(s) {', '.join(bad)}; choose from {', '.join(MODES)}.")
    out: list[str] = []
    if "all" in modes:
        out = [c for c in registry().components
               if not c.startswith("ddcolor_") and c not in (*_GUIDED["reference"], *_GUIDED["points"])]
    for m in modes:
        if m == "all":
            continue
        if m == "colorize":
            out.append("ddcolor_modelscope")
        elif m in _GUIDED:
            out += _GUIDED[m]
        elif m == "faces":
            out += ["retinaface_resnet50", "face_gen_512" if "hr" in modes else "face_gen_256"]
        else:
            out += _GLOBAL_MODES[m]
    return list(dict.fromkeys(out))
