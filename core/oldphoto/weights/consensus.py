"""``oldphoto weights verify --cross-check``: does a second source convert to the same bytes?

Conversion is byte-reproducible (fixed tensor order, one fixed metadata key), so the converted
file of any two copies of an official checkpoint must be identical. For each cached component
this converts the file again from another source listed in weights.json (the next one in order
that is not the one that served the cached file, and never the project's own safetensors repo: the
point is to compare independent copies of the official file) into a scratch folder, and compares
sha256s. The cache is not touched; the scratch folder is deleted.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..errors import WeightsError
from .cache import SOURCE_HUB, SOURCE_IMPORT, find_local, hub_cache_dir, read_origin, sha256_file
from .registry import Registry, Source, component_spec, registry
from .resolve import Chain


@dataclass(frozen=True)
class CrossCheck:
    component: str
    status: str
    """"agree", "DIFFER", "not downloaded" or "no second source"."""
    served_by: str
    """Where the cached file came from (as ``weights status`` says)."""
    compared_with: str | None
    message: str

    @property
    def ok(self) -> bool:
        return self.status != "DIFFER"


def _served_by(src: Source, url: str | None, detail: str) -> bool:
    """Whether ``src`` (at ``url``) is the source recorded in an origin ``detail``."""
    if src.kind == "hub":
        return detail.startswith(f"{src.repo_id}@") and f"/{src.path}" in detail
    return url is not None and (detail == url or detail.startswith(url + " "))


def cross_check(
    components: Iterable[str] | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    endpoint: str | None = None,
    token: str | bool | None = None,
    reg: Registry | None = None,
) -> list[CrossCheck]:
    reg = reg or registry()
    cache = hub_cache_dir(cache_dir)
    endpoint = endpoint or os.environ.get("HF_ENDPOINT") or None
    out: list[CrossCheck] = []
    for name in components or reg.components:
        spec = component_spec(name, reg)
        path, source = find_local(spec, weights_dir=None, cache=cache)
        if path is None:
            out.append(CrossCheck(name, "not downloaded", "", None, "nothing cached to compare"))
            continue
        if source == SOURCE_HUB:
            detail = f"{spec.repo_id}@{spec.revision}/{spec.filename}"
        else:
            detail = read_origin(path)[1]
        served = f"{source} ({detail})" if detail else source
        with tempfile.TemporaryDirectory(prefix="oldphoto-crosscheck-") as tmp:
            chain = Chain(
                spec, reg, cache=cache, endpoint=endpoint, token=token, out_dir=Path(tmp),
                skip=lambda src, url, d=detail, s=source: src.published or (s != SOURCE_IMPORT and _served_by(src, url, d)),
                reason="cross-check against a second source", check_published=False,
            )
            try:
                other = chain.run()
            except WeightsError as exc:
                out.append(CrossCheck(name, "no second source", served, None,
                                      f"no second source could be converted: {' '.join(str(exc).split())[:600]}"))
                continue
            mine, theirs = sha256_file(path), sha256_file(other)
        second = chain.served_by or "?"
        if mine == theirs:
            out.append(CrossCheck(name, "agree", served, second, f"identical to the conversion from {second} "
                                  f"(sha256 {mine[:16]}...)"))
            continue
        published = ""
        if spec.sha256:
            which = {mine: served, theirs: second}.get(spec.sha256.lower())
            published = (f"; the published sha256 matches {which}" if which
                         else "; neither matches the published sha256")
        out.append(CrossCheck(name, "DIFFER", served, second,
                              f"the sources disagree: {served} gives sha256 {mine[:16]}..., {second} gives "
                              f"{theirs[:16]}...{published}. One of them serves a different file; report it"))
    return out
