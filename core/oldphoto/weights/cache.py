"""Where weights live on this machine, and checking the files found there.

Two caches: the Hugging Face Hub cache (only real repositories, so the ``hf cache`` tools stay
happy) and ``converted_dir()`` for files this machine converted from the official pickles, each
with a small ``<file>.origin.json`` saying where it came from (for ``oldphoto weights status``).
Every function reads the environment at call time, so variables set after import still count.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import WeightsError
from .registry import ENV_CACHE, ENV_WEIGHTS_DIR, ComponentSpec


def _truthy(value: str | None) -> bool:
    return (value or "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def offline_mode() -> bool:
    """``HF_HUB_OFFLINE`` as set now (huggingface_hub itself only reads it at import)."""
    from huggingface_hub import constants

    return _truthy(os.environ.get("HF_HUB_OFFLINE")) or bool(constants.HF_HUB_OFFLINE)


def _hf_home() -> Path:
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.join(os.path.expanduser("~"), ".cache")), "huggingface"
    )
    return Path(os.path.expandvars(os.path.expanduser(home)))


def hub_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """The Hub cache huggingface_hub would use: ``HF_HUB_CACHE``, else ``$HF_HOME/hub``."""
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if env:
        return Path(os.path.expandvars(os.path.expanduser(env)))
    return _hf_home() / "hub"


def converted_dir() -> Path:
    """Where locally converted upstream pickles are kept (outside the Hub cache, which must only
    hold real repositories for ``hf cache`` tools to stay happy)."""
    env = os.environ.get(ENV_CACHE)
    base = Path(os.path.expandvars(os.path.expanduser(env))) if env else _hf_home() / "oldphoto"
    return base / "converted"


def weights_dir_of(weights_dir: str | os.PathLike | None) -> Path | None:
    if weights_dir is not None:
        return Path(weights_dir)
    env = os.environ.get(ENV_WEIGHTS_DIR)
    return Path(env) if env else None


_VERIFIED: dict[tuple[str, int, int], str] = {}


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file, remembered per (real path, size, mtime) so a long-lived process hashes once."""
    real = os.path.realpath(path)
    st = os.stat(real)
    key = (real, st.st_size, st.st_mtime_ns)
    if key not in _VERIFIED:
        _VERIFIED[key] = sha256_file(real)
    return _VERIFIED[key]


def remove_cached(path: Path) -> None:
    """Delete a cache entry: the snapshot link and the blob it points to."""
    real = Path(os.path.realpath(path))
    path.unlink(missing_ok=True)
    if real != path:
        real.unlink(missing_ok=True)


def verify_file(spec: ComponentSpec, path: Path, *, remove: bool = True, check_size: bool = True) -> None:
    """Raise :class:`WeightsError` if size or sha256 differ from weights.json (bad file deleted).

    ``check_size=False`` for local conversions: without a known sha256 a few bytes of difference
    only mean another safetensors version laid the header out differently.
    """
    problem = None
    size = os.path.getsize(path)
    if check_size and spec.size is not None and size != spec.size:
        problem = f"size {size} bytes, expected {spec.size}"
    elif spec.sha256 is not None:
        digest = file_sha256(path)
        if digest != spec.sha256.lower():
            problem = f"sha256 {digest}, expected {spec.sha256}"
    if problem:
        if remove:
            remove_cached(path)
        raise WeightsError(
            f"Weights file for '{spec.name}' failed verification ({problem}); "
            + (
                f"it was deleted from the cache ({path}). Run the command again to download it again; "
                "if this repeats, the download source is damaged: report it."
                if remove
                else f"file: {path}."
            )
        )


def cached_hub_file(spec: ComponentSpec, cache: Path) -> Path | None:
    """The component's file in the Hub cache at the pinned revision, if it is there."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(spec.repo_id, spec.filename, cache_dir=str(cache), revision=spec.revision)
    return Path(found) if isinstance(found, str) and os.path.isfile(found) else None


# -- where a converted file came from -------------------------------------------------------------

SOURCE_HUB = "the Hub safetensors repo"
SOURCE_MIRROR = "a Hub mirror + local conversion"
SOURCE_ARCHIVE = "a release archive + local conversion"
SOURCE_URL = "a download URL + local conversion"
SOURCE_IMPORT = "oldphoto weights import + local conversion"
SOURCE_LOCAL = "a local conversion (oldphoto weights convert / fetch-upstream)"
SOURCE_WEIGHTS_DIR = "--weights-dir"


def origin_path(path: Path) -> Path:
    return path.with_name(path.name + ".origin.json")


def write_origin(path: Path, kind: str, detail: str) -> None:
    """Record, beside a converted file, where it came from (written after the file itself, atomically)."""
    rec = origin_path(path)
    tmp = rec.with_name(f".{rec.name}.tmp")
    tmp.write_text(json.dumps({"source": kind, "from": detail}) + "\n", encoding="utf-8")
    os.replace(tmp, rec)


def read_origin(path: Path) -> tuple[str, str]:
    try:
        data = json.loads(origin_path(path).read_text(encoding="utf-8"))
        return str(data["source"]), str(data.get("from", ""))
    except (OSError, ValueError, KeyError):
        return SOURCE_LOCAL, ""


def find_local(spec: ComponentSpec, *, weights_dir: Path | None, cache: Path) -> tuple[Path | None, str]:
    """The file a run would use without the network, and its source (see the ``SOURCE_*`` names)."""
    if weights_dir is not None:
        path = weights_dir / spec.filename
        return (path if path.is_file() else None), SOURCE_WEIGHTS_DIR
    hub = cached_hub_file(spec, cache)
    if hub is not None:
        return hub, SOURCE_HUB
    conv = converted_dir() / spec.filename
    if conv.is_file():
        return conv, read_origin(conv)[0]
    return None, ""


# -- verify / status -------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifyResult:
    component: str
    path: Path | None
    ok: bool
    message: str


def verify(
    components=None,
    *,
    weights_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    reg=None,
) -> list[VerifyResult]:
    """Re-hash and re-check what is on disk (no network); bad files are reported, not deleted."""
    from safetensors.torch import load_file

    from .manifests import check_structure
    from .registry import component_spec, registry

    reg = reg or registry()
    wdir = weights_dir_of(weights_dir)
    cache = hub_cache_dir(cache_dir)
    out = []
    _VERIFIED.clear()  # re-hash for real: the point of verify is to catch files changed on disk
    for name in components or reg.components:
        spec = component_spec(name, reg)
        path, _source = find_local(spec, weights_dir=wdir, cache=cache)
        if path is None:
            out.append(VerifyResult(name, None, False, "not downloaded"))
            continue
        try:
            if wdir is None:
                verify_file(spec, path, remove=False, check_size=path.parent != converted_dir())
            check_structure(name, load_file(str(path)))
        except WeightsError as exc:
            out.append(VerifyResult(name, path, False, str(exc)))
        except Exception as exc:
            out.append(VerifyResult(name, path, False, f"unreadable: {exc}"))
        else:
            how = "sha256 ok" if spec.sha256 and wdir is None else "manifest ok (no sha256 known)"
            out.append(VerifyResult(name, path, True, how))
    return out


@dataclass(frozen=True)
class Status:
    """One line of ``oldphoto weights status``: cheap facts, no re-hash (``verify`` does that)."""

    component: str
    path: Path | None
    source: str
    """One of the ``SOURCE_*`` names, or "" when not downloaded."""
    checked_by: str
    """How the resolver checks this file on use: "sha256" (weights.json knows it) or "manifest"."""
    size: int | None
    detail: str = ""


def status(
    components=None,
    *,
    weights_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    reg=None,
) -> list[Status]:
    """Where each component's file is, where it came from, how it is checked, and its size."""
    from .registry import component_spec, registry

    reg = reg or registry()
    wdir = weights_dir_of(weights_dir)
    cache = hub_cache_dir(cache_dir)
    out = []
    for name in components or reg.components:
        spec = component_spec(name, reg)
        path, source = find_local(spec, weights_dir=wdir, cache=cache)
        how = "sha256" if spec.sha256 and source != SOURCE_WEIGHTS_DIR else "manifest"
        if path is None:
            out.append(Status(name, None, "", how, spec.size))
            continue
        if path.parent == converted_dir():
            detail = read_origin(path)[1]
        elif source == SOURCE_HUB:
            detail = f"{spec.repo_id}@{spec.revision}/{spec.filename}"
        else:
            detail = ""
        out.append(Status(name, path, source, how, path.stat().st_size, detail))
    return out
