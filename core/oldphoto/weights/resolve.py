"""Resolving a component to a verified safetensors file: the chain of sources, and loading it.

Order for a component (names as in ``weights.json``):

1. an explicit local directory (``weights_dir`` / ``OLDPHOTO_WEIGHTS_DIR``) holding the file:
   used as is (the user chose it), checked only against the manifest;
2. the Hugging Face Hub cache at the pinned revision, then files converted earlier on this machine
   (``$OLDPHOTO_CACHE``, default ``$HF_HOME/oldphoto/converted``): no request at all;
3. ``hf_hub_download`` from the project's safetensors repo at the pinned 40-hex revision;
4. when that repo (or its revision, or the file) is missing: the pinned official pickle from the
   Hub mirror, converted locally with ``torch.load(weights_only=True)``;
5. when the mirror lacks it too (or the mirror repo or its pinned revision is gone): the member of
   the official release zip (``upstream.archives``), read with HTTP ranges (:mod:`.archive`) and
   converted the same way.

Each step that reaches past the Hub cache prints one line saying where the file comes from and
why. Every file from the Hub or a conversion is checked against the sha256 (where weights.json
knows it) and against its manifest (names, shapes, dtypes) before use; a file that fails is deleted
so the next run fetches it again, and a failed fetch leaves nothing in any cache.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import WeightsError
from .cache import (
    SOURCE_ARCHIVE,
    SOURCE_MIRROR,
    cached_hub_file,
    converted_dir,
    hub_cache_dir,
    offline_mode,
    remove_cached,
    verify_file,
    weights_dir_of,
    write_origin,
)
from .manifests import check_structure
from .progress import DownloadBar
from .registry import ENV_WEIGHTS_DIR, ComponentSpec, Registry, component_spec, components_for_modes, registry

if TYPE_CHECKING:  # torch is imported lazily: `oldphoto weights download` never needs it
    import torch

log = logging.getLogger("oldphoto.weights")


def _mb(n: int | None) -> str:
    return f"{n / 1e6:.0f} MB" if n else "size unknown"


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


def _preflight(spec: ComponentSpec, endpoint: str | None, token: str | bool | None) -> tuple[str, object] | None:
    """One HEAD without retries: ``("unreachable", why)``, ``("missing", exc)`` or None (go ahead).

    ``hf_hub_download`` retries a failed connection with back-off (about 23 s per file), which
    makes "no network" look like a hang. Connection failures are answered at once here, and a
    missing repo (today's situation: 401 RepoNotFound) moves on to the next source without asking
    again; anything else (a 5xx) is left to ``hf_hub_download``, which retries or classifies it.
    """
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    _local, remote_missing = _hub_errors()
    url = hf_hub_url(spec.repo_id, spec.filename, revision=spec.revision, endpoint=endpoint)
    try:
        get_hf_file_metadata(url, token=token, timeout=10)
    except remote_missing as exc:
        return "missing", exc
    except Exception as exc:
        if any(c.__name__ in _UNREACHABLE for c in type(exc).__mro__):
            return "unreachable", f"the Hub is unreachable ({type(exc).__name__}: {str(exc)[:120]})"
    return None


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
    wdir = weights_dir_of(weights_dir)
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
        cached = cached_hub_file(spec, cache)
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

    pre = _preflight(spec, endpoint, token)
    if pre is not None and pre[0] == "unreachable":
        raise WeightsError(_missing_message(spec, cache, str(pre[1])))
    try:
        if pre is not None:  # the repo, revision or file is missing: skip straight to the next source
            raise pre[1]  # type: ignore[misc]
        path = Path(
            hf_hub_download(
                spec.repo_id,
                spec.filename,
                revision=spec.revision,
                cache_dir=str(cache),
                endpoint=endpoint,
                token=token,
                force_download=force_download,
                tqdm_class=DownloadBar,
            )
        )
    except local_missing as exc:  # HEAD failed (no connection, server down) and nothing cached
        cause = exc.__cause__ or exc
        raise WeightsError(
            _missing_message(spec, cache, f"the Hub is unreachable ({type(cause).__name__})")
        ) from None
    except remote_missing as exc:
        if not allow_convert:
            raise WeightsError(
                f"'{spec.name}' is not available from {spec.repo_id}@{spec.revision[:12]} "
                f"({type(exc).__name__}). Run `oldphoto weights fetch-upstream` to convert the official "
                "release files, or pass --weights-dir DIR."
            ) from None
        return _from_upstream(spec, reg, cache=cache, endpoint=endpoint, token=token)
    except WeightsError:
        raise
    except Exception as exc:  # HTTP 5xx, reset connection, truncated body, disk full, ...
        raise _download_error(f"{spec.filename} for '{spec.name}'", exc) from None
    verify_file(spec, path)
    return path


def _from_upstream(
    spec: ComponentSpec, reg: Registry, *, cache: Path, endpoint: str | None, token: str | bool | None
) -> Path:
    """Steps 4 and 5: the mirror's pickle if it has one, else the release archive's member."""
    if spec.upstream.in_mirror and reg.mirror_repo_id:
        why = _convert_from_mirror(spec, reg, cache=cache, endpoint=endpoint, token=token)
        if isinstance(why, Path):
            return why
        reason = f"not on the Hub yet and {why}"
    else:
        reason = "not on the Hub yet"
    if spec.upstream.archive is None or spec.upstream.archive not in reg.archives:
        raise WeightsError(
            f"'{spec.name}' is {reason}, and weights.json names no release archive for it. Pass "
            "--weights-dir DIR with converted files."
        )
    return _convert_from_archive(spec, reg, reason)


def _convert_from_mirror(
    spec: ComponentSpec, reg: Registry, *, cache: Path, endpoint: str | None, token: str | bool | None
) -> Path | str:
    """The pinned pickle from the mirror, converted into :func:`converted_dir`; or why not (a str)."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url

    from .convert import convert_file

    local_missing, remote_missing = _hub_errors()
    try:  # ask first, so that the one line below is only printed for a file that is there
        url = hf_hub_url(reg.mirror_repo_id, spec.upstream.path, revision=reg.mirror_revision, endpoint=endpoint)
        meta = get_hf_file_metadata(url, token=token, timeout=10)
    except remote_missing as exc:
        return f"the mirror {reg.mirror_repo_id}@{reg.mirror_revision[:12]} does not have it ({type(exc).__name__})"
    except Exception as exc:
        return f"the mirror is unreachable ({type(exc).__name__})"
    log.warning(
        "%s: not on the Hub yet; downloading the official checkpoint from the mirror %s@%s and converting it "
        "locally (%s)",
        spec.name,
        reg.mirror_repo_id,
        reg.mirror_revision[:12],
        _mb(meta.size),
    )
    try:
        pickle_path = Path(
            hf_hub_download(
                reg.mirror_repo_id,
                spec.upstream.path,
                revision=reg.mirror_revision,
                cache_dir=str(cache),
                endpoint=endpoint,
                token=token,
                tqdm_class=DownloadBar,
            )
        )
    except (local_missing, *remote_missing) as exc:
        raise _download_error(f"{spec.upstream.path} for '{spec.name}' from {reg.mirror_repo_id}", exc) from None
    except Exception as exc:
        raise _download_error(f"{spec.upstream.path} for '{spec.name}'", exc) from None
    try:
        result = convert_file(pickle_path, spec.name, converted_dir(), spec.filename)
    finally:
        remove_cached(pickle_path)  # the pickle is only an intermediate; keep the cache small
    write_origin(result.path, SOURCE_MIRROR, f"{reg.mirror_repo_id}@{reg.mirror_revision}/{spec.upstream.path}")
    verify_file(spec, result.path, check_size=False)
    return result.path


def _convert_from_archive(spec: ComponentSpec, reg: Registry, reason: str) -> Path:
    """The member of the official release zip, read with HTTP ranges, converted and cached."""
    from . import archive
    from .convert import convert_file

    name = spec.upstream.archive
    assert name is not None
    info = reg.archives[name]
    url = info["url"]
    fail = (
        f"'{spec.name}' ({reason}): could not read it from the official release archive {name} at {url}"
    )
    advice = (
        "Nothing was kept; run the command again, or download the archive yourself and run "
        "`oldphoto weights fetch-upstream --archives-dir DIR`, or pass --weights-dir DIR."
    )
    with tempfile.TemporaryDirectory(prefix="oldphoto-member-") as tmp:
        try:
            with archive.client() as http:
                opened = archive.open_archive(http, url, spec.name, None)
                with opened.zf:
                    names = opened.zf.namelist()
                    member, exact = archive.find_member(names, spec.upstream.member, info.get("unpacks_into", ""))
                    if member is None:
                        raise WeightsError(
                            f"{fail}: it holds no {spec.upstream.member or 'single checkpoint'} (weights.json may "
                            f"be out of date). The archive holds: {archive.describe(names)}. Pass --weights-dir DIR, "
                            "or report this."
                        )
                    if not exact:
                        log.warning("%s: %s is not at %s in %s; using %s", spec.name, spec.upstream.path,
                                    spec.upstream.member, name, member)
                    member_size = opened.zf.getinfo(member).compress_size
                    log.warning(
                        "%s: %s; reading it from the official release archive %s (%s of %s)",
                        spec.name, reason, name, _mb(member_size), _mb(opened.size),
                    )
                    extracted = archive.extract(opened, member, Path(tmp) / "member.pth", spec.name)
        except WeightsError:
            raise
        except archive.FAULTS as exc:
            raise WeightsError(f"{fail}: {archive.fault_message(exc)}. {advice}") from None
        try:
            result = convert_file(extracted, spec.name, converted_dir(), spec.filename)
        except OSError as exc:
            raise WeightsError(f"{fail}: {archive.fault_message(exc)}. {advice}") from None
    write_origin(result.path, SOURCE_ARCHIVE, f"{url} {member}")
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
