"""Locating, verifying and loading model weights (safetensors).

Resolution order for a component (names as in ``weights.json``):

1. an explicit local directory (``weights_dir`` / ``OLDPHOTO_WEIGHTS_DIR``) holding the file:
   used as is (the user chose it), checked only against the manifest;
2. the Hugging Face Hub cache, at the pinned revision, then files converted earlier on this
   machine (``$OLDPHOTO_CACHE``, default ``$HF_HOME/oldphoto/converted``);
3. ``hf_hub_download`` from the project's safetensors repo at the pinned 40-hex revision;
4. when that repo lacks the file: the pinned upstream pickle from the Hub mirror, converted
   locally with ``torch.load(weights_only=True)`` (logged).

Every file from the Hub or a conversion is checked against the sha256 (where weights.json knows
it) before use, and a file that fails is deleted so the next run downloads it again. Every file is
checked against its manifest (names, shapes, dtypes) so that a wrong file fails here with a list
of names rather than deep inside a network. Environment variables are read at call time, so
``HF_HUB_OFFLINE``, ``HF_HOME``/``HF_HUB_CACHE``, ``HF_ENDPOINT`` and ``HF_TOKEN`` work even when set
after import.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import WeightsError
from .manifests import load_manifest

if TYPE_CHECKING:  # torch is imported lazily: `oldphoto weights download` never needs it
    import torch

log = logging.getLogger("oldphoto.weights")

ENV_WEIGHTS_DIR = "OLDPHOTO_WEIGHTS_DIR"
ENV_CACHE = "OLDPHOTO_CACHE"
ENV_WEIGHTS_JSON = "OLDPHOTO_WEIGHTS_JSON"

MODES = ("quality", "scratch", "hr", "faces", "all")
_GLOBAL_MODES = {
    "quality": ["vae_a_quality", "vae_b_quality", "mapping_quality"],
    "scratch": ["detection_unet", "vae_a_quality", "vae_b_scratch", "mapping_scratch"],
    "hr": ["detection_unet", "vae_a_quality", "vae_b_scratch", "mapping_patch_attention"],
}


# -- weights.json ------------------------------------------------------------------------------


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


# -- locations -----------------------------------------------------------------------------------


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


def _weights_dir(weights_dir: str | os.PathLike | None) -> Path | None:
    if weights_dir is not None:
        return Path(weights_dir)
    env = os.environ.get(ENV_WEIGHTS_DIR)
    return Path(env) if env else None


# -- verification --------------------------------------------------------------------------------

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


def _remove_cached(path: Path) -> None:
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
            _remove_cached(path)
        raise WeightsError(
            f"Weights file for '{spec.name}' failed verification ({problem}); "
            + (
                f"it was deleted from the cache ({path}). Run the command again to download it again; "
                "if this repeats, the download source is damaged: report it."
                if remove
                else f"file: {path}."
            )
        )


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


# -- the resolver --------------------------------------------------------------------------------


def _missing_message(spec: ComponentSpec, cache: Path, reason: str) -> str:
    return (
        f"Weights for '{spec.name}' ({spec.filename} from {spec.repo_id}@{spec.revision[:12]}) are not "
        f"in the local cache ({cache}) and cannot be downloaded: {reason}. Run `oldphoto weights download` "
        f"once while online (unset HF_HUB_OFFLINE for that), or pass --weights-dir DIR / set "
        f"{ENV_WEIGHTS_DIR} to a folder of converted .safetensors files."
    )


def _hub_errors():
    from huggingface_hub import errors as e

    remote_missing = tuple(
        getattr(e, n)
        for n in (
            "RepositoryNotFoundError",
            "RevisionNotFoundError",
            "RemoteEntryNotFoundError",
            "EntryNotFoundError",
        )
        if hasattr(e, n)
    )
    return e.LocalEntryNotFoundError, remote_missing


def _download_error(what: str, exc: BaseException) -> WeightsError:
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return WeightsError(
        f"Download of {what} failed ({type(exc).__name__}: {detail[:300]}). Nothing was kept in the cache; "
        "check the connection and run the command again (files already downloaded are kept)."
    )


_UNREACHABLE = {"ConnectError", "ConnectTimeout", "ConnectionError", "Timeout", "TimeoutException",
                "NewConnectionError", "OfflineModeIsEnabled"}


def _preflight(spec: ComponentSpec, endpoint: str | None, token: str | bool | None) -> str | None:
    """One HEAD without retries; returns why the Hub is unreachable, or None.

    ``hf_hub_download`` retries a failed connection with back-off (about 23 s per file), which
    makes "no network" look like a hang. Connection failures are answered at once here; anything
    else (a 5xx, a 404) is left to ``hf_hub_download``, which retries or classifies it.
    """
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    url = hf_hub_url(spec.repo_id, spec.filename, revision=spec.revision, endpoint=endpoint)
    try:
        get_hf_file_metadata(url, token=token, timeout=10)
    except Exception as exc:
        if any(c.__name__ in _UNREACHABLE for c in type(exc).__mro__):
            return f"the Hub is unreachable ({type(exc).__name__}: {str(exc)[:120]})"
    return None


def _cached_hub_file(spec: ComponentSpec, cache: Path) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(spec.repo_id, spec.filename, cache_dir=str(cache), revision=spec.revision)
    return Path(found) if isinstance(found, str) and os.path.isfile(found) else None


def resolve(
    component: str,
    *,
    weights_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    endpoint: str | None = None,
    token: str | bool | None = None,
    local_files_only: bool | None = None,
    force_download: bool = False,
    allow_convert: bool = True,
    reg: Registry | None = None,
) -> Path:
    """Path of a verified safetensors file for ``component`` (see the module doc for the order)."""
    reg = reg or registry()
    spec = component_spec(component, reg)
    wdir = _weights_dir(weights_dir)
    if wdir is not None:
        path = wdir / spec.filename
        if not path.is_file():
            raise WeightsError(
                f"Weights file for '{component}' not found: {path}. Convert the official checkpoints into "
                f"that folder with `oldphoto weights convert SRC {wdir}`, or drop --weights-dir / "
                f"{ENV_WEIGHTS_DIR} to use the Hugging Face Hub."
            )
        return path

    cache = hub_cache_dir(cache_dir)
    offline = offline_mode() if local_files_only is None else local_files_only
    endpoint = endpoint or os.environ.get("HF_ENDPOINT") or None
    local_missing, remote_missing = _hub_errors()

    if not force_download:
        cached = _cached_hub_file(spec, cache)
        if cached is not None:
            try:
                verify_file(spec, cached)
                return cached
            except WeightsError as exc:
                if offline:
                    raise
                log.warning("%s", exc)
        converted = converted_dir() / spec.filename
        if converted.is_file():
            verify_file(spec, converted, check_size=False)
            return converted
    if offline:
        raise WeightsError(_missing_message(spec, cache, "offline mode is on (HF_HUB_OFFLINE=1)"))

    from huggingface_hub import hf_hub_download

    unreachable = _preflight(spec, endpoint, token)
    if unreachable:
        raise WeightsError(_missing_message(spec, cache, unreachable))
    try:
        path = Path(
            hf_hub_download(
                spec.repo_id,
                spec.filename,
                revision=spec.revision,
                cache_dir=str(cache),
                endpoint=endpoint,
                token=token,
                force_download=force_download,
            )
        )
    except local_missing as exc:  # HEAD failed (no connection, server down) and nothing cached
        cause = exc.__cause__ or exc
        raise WeightsError(
            _missing_message(spec, cache, f"the Hub is unreachable ({type(cause).__name__})")
        ) from None
    except remote_missing as exc:
        if not (allow_convert and spec.upstream.in_mirror and reg.mirror_repo_id):
            raise WeightsError(
                f"'{spec.name}' is not available from {spec.repo_id}@{spec.revision[:12]} "
                f"({type(exc).__name__}) and the pinned upstream mirror does not have it. Run "
                "`oldphoto weights fetch-upstream` to convert the official release files, or pass "
                "--weights-dir DIR."
            ) from None
        return _convert_from_mirror(spec, reg, cache=cache, endpoint=endpoint, token=token)
    except WeightsError:
        raise
    except Exception as exc:  # HTTP 5xx, reset connection, truncated body, disk full, ...
        raise _download_error(f"{spec.filename} for '{spec.name}'", exc) from None
    verify_file(spec, path)
    return path


def _convert_from_mirror(
    spec: ComponentSpec, reg: Registry, *, cache: Path, endpoint: str | None, token: str | bool | None
) -> Path:
    """Fallback: the pinned pickle from the mirror, converted safely into :func:`converted_dir`."""
    from huggingface_hub import hf_hub_download

    from .convert import convert_file

    log.warning(
        "%s is not on %s@%s; downloading the pinned upstream checkpoint %s from %s@%s and converting it "
        "locally (torch.load weights_only=True)",
        spec.filename,
        spec.repo_id,
        spec.revision[:12],
        spec.upstream.path,
        reg.mirror_repo_id,
        reg.mirror_revision[:12],
    )
    local_missing, remote_missing = _hub_errors()
    try:
        pickle_path = Path(
            hf_hub_download(
                reg.mirror_repo_id,
                spec.upstream.path,
                revision=reg.mirror_revision,
                cache_dir=str(cache),
                endpoint=endpoint,
                token=token,
            )
        )
    except (local_missing, *remote_missing) as exc:
        raise WeightsError(
            f"'{spec.name}' is not on {spec.repo_id} and its upstream checkpoint could not be fetched from "
            f"{reg.mirror_repo_id} ({type(exc).__name__}). Run `oldphoto weights fetch-upstream`, or pass "
            "--weights-dir DIR."
        ) from None
    except Exception as exc:
        raise _download_error(f"{spec.upstream.path} for '{spec.name}'", exc) from None
    try:
        result = convert_file(pickle_path, spec.name, converted_dir(), spec.filename)
    finally:
        _remove_cached(pickle_path)  # the pickle is only an intermediate; keep the cache small
    log.warning("converted %s -> %s", spec.upstream.path, result.path)
    verify_file(spec, result.path, check_size=False)
    return result.path


def load_state_dict(
    component: str, *, weights_dir: str | os.PathLike | None = None, **resolve_kw
) -> dict[str, torch.Tensor]:
    """Resolve, verify and load the state dict of ``component`` (memory-mapped safetensors)."""
    from safetensors.torch import load_file

    path = resolve(component, weights_dir=weights_dir, **resolve_kw)
    try:
        state = load_file(str(path))
    except Exception as exc:  # safetensors raises several types for corrupt headers
        raise WeightsError(
            f"Weights file {path} is corrupt or not a safetensors file ({exc}). Delete it and run "
            "`oldphoto weights download` again."
        ) from exc
    check_structure(component, state)
    return state


def download(
    modes: str | Sequence[str] = "all",
    *,
    components: Iterable[str] | None = None,
    **resolve_kw,
) -> dict[str, Path]:
    """Fetch (and verify) every file the given modes need, for offline use later.

    Keeps going after a failure so one run reports every missing component in one error.
    """
    names = (
        list(components) if components else components_for_modes([modes] if isinstance(modes, str) else modes)
    )
    done: dict[str, Path] = {}
    errors: list[str] = []
    for name in names:
        try:
            done[name] = resolve(name, **resolve_kw)
        except WeightsError as exc:
            errors.append(str(exc))
    if errors:
        raise WeightsError("\n".join(errors))
    return done


@dataclass(frozen=True)
class VerifyResult:
    component: str
    path: Path | None
    ok: bool
    message: str


def verify(
    components: Iterable[str] | None = None,
    *,
    weights_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    reg: Registry | None = None,
) -> list[VerifyResult]:
    """Re-hash and re-check what is on disk (no network); bad files are reported, not deleted."""
    from safetensors.torch import load_file

    reg = reg or registry()
    wdir = _weights_dir(weights_dir)
    cache = hub_cache_dir(cache_dir)
    out = []
    _VERIFIED.clear()  # re-hash for real: the point of verify is to catch files changed on disk
    for name in components or reg.components:
        spec = component_spec(name, reg)
        path = wdir / spec.filename if wdir else _cached_hub_file(spec, cache)
        if wdir is None and path is None and (converted_dir() / spec.filename).is_file():
            path = converted_dir() / spec.filename
        if path is None or not path.is_file():
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
