"""Resolving a component to a verified safetensors file: the chain of sources, and loading it.

Order for a component (names as in ``weights.json``, schema 3):

1. an explicit local directory (``weights_dir`` / ``OLDPHOTO_WEIGHTS_DIR``) holding the file:
   used as is (the user chose it), checked only against the manifest;
2. the Hugging Face Hub cache at the pinned revision of the project's safetensors repo, then files
   converted (or imported) earlier on this machine (``$OLDPHOTO_CACHE``, default
   ``$HF_HOME/oldphoto/converted``): no request at all;
3. the component's ``sources``, in the order weights.json lists them: first the project's
   safetensors repo at its pinned revision, then every known copy of the official pickle (Hub repos,
   pinned or not, and release zips, each with one or more URLs), converted locally with
   ``torch.load(weights_only=True)``.

The chain moves on when a source is unreachable or wrong: a missing repo (401), revision or file
(404), a dead URL, a member missing from a zip, a transfer that fails, a pickle whose size or sha256
differs from the official one (``official`` in weights.json, checked before conversion), a file that
does not match the manifest, or a conversion whose sha256 differs from the published one. Each
source actually tried prints one line saying what it reads and why the sources before it failed;
``weights status`` then says which source served the file (and whether it was pinned). A file is
converted under a temporary name and only renamed into place once every check passed, so a refused
source leaves nothing in any cache. When every source fails, one error lists each one and why.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import WeightsError
from .cache import (
    SOURCE_ARCHIVE,
    SOURCE_MIRROR,
    SOURCE_URL,
    cached_hub_file,
    converted_dir,
    hub_cache_dir,
    offline_mode,
    remove_cached,
    sha256_file,
    verify_file,
    weights_dir_of,
    write_origin,
)
from .manifests import check_structure
from .progress import DownloadBar
from .registry import ENV_WEIGHTS_DIR, ComponentSpec, Registry, Source, component_spec, components_for_modes, registry

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


def _preflight(src: Source, endpoint: str | None, token: str | bool | None) -> tuple[str, object] | None:
    """One HEAD without retries: ``("unreachable", why)``, ``("missing", exc)`` or None (go ahead).

    ``hf_hub_download`` retries a failed connection with back-off (about 23 s per file), which
    makes "no network" look like a hang. Connection failures are answered at once here, and a
    missing repo (today's situation: 401 RepoNotFound) moves on to the next source without asking
    again; anything else (a 5xx) is left to ``hf_hub_download``, which retries or classifies it.
    """
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    _local, remote_missing = _hub_errors()
    url = hf_hub_url(src.repo_id, src.path, revision=src.revision, repo_type=src.repo_type, endpoint=endpoint)
    try:
        get_hf_file_metadata(url, token=token, timeout=10)
    except remote_missing as exc:
        return "missing", exc
    except Exception as exc:
        if any(c.__name__ in _UNREACHABLE for c in type(exc).__mro__):
            return "unreachable", f"the Hub is unreachable ({type(exc).__name__}: {str(exc)[:120]})"
    return None


class SourceFailed(Exception):
    """One source cannot serve the file (``why``, naming it); the chain tries the next."""

    def __init__(self, why: str, *, unreachable: bool = False) -> None:
        super().__init__(why)
        self.why = " ".join(why.split())  # one line, whatever the cause printed
        self.unreachable = unreachable


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
    chain = Chain(spec, reg, cache=cache, endpoint=endpoint, token=token, force_download=force_download)
    return chain.run(allow_convert=allow_convert)


class Chain:
    """The sources of one component, tried in order (see the module doc).

    ``skip`` leaves out sources (``verify --cross-check`` leaves out the one that served the cached
    file); ``out_dir`` converts into that folder instead of the cache (no origin record);
    ``reason`` starts the first line (why this chain runs at all).
    """

    def __init__(
        self,
        spec: ComponentSpec,
        reg: Registry,
        *,
        cache: Path,
        endpoint: str | None,
        token: str | bool | None,
        force_download: bool = False,
        out_dir: Path | None = None,
        skip: Callable[[Source, str | None], bool] | None = None,
        reason: str | None = None,
        check_published: bool = True,
    ) -> None:
        self.spec, self.reg, self.cache = spec, reg, cache
        self.endpoint, self.token, self.force_download = endpoint, token, force_download
        self.out_dir = out_dir
        self.skip = skip
        self.check_published = check_published
        self.failures: list[str] = []
        self.served_by: str | None = None
        """How the source that served the file is named (set by :meth:`run`)."""
        self._pending: list[str] = [reason] if reason else []
        self._hub_down: str | None = None

    # -- the chain
    def attempts(self, allow_convert: bool = True) -> list[tuple[Source, str | None]]:
        """(source, URL for archives) in order: each archive URL is its own attempt."""
        out: list[tuple[Source, str | None]] = []
        for src in self.spec.sources:
            if not allow_convert and not src.safetensors:
                continue
            if src.kind == "archive":
                out += [(src, url) for url in self.reg.archives[src.archive or ""]["urls"]]
            elif src.kind == "url":
                out += [(src, url) for url in src.urls]
            else:
                out.append((src, None))
        return out

    def run(self, allow_convert: bool = True) -> Path:
        for src, url in self.attempts(allow_convert):
            if self.skip is not None and self.skip(src, url):
                continue
            if src.kind == "hub" and self._hub_down is not None:
                self._fail(SourceFailed(f"{src.label()}: {self._hub_down}"))
                continue
            try:
                path = self.try_source(src, url)
                self.served_by = describe(src, url)
                return path
            except SourceFailed as failed:
                self._fail(failed)
                if failed.unreachable and src.kind == "hub":
                    self._hub_down = failed.why.split(": ", 1)[-1]
        raise self._final_error(allow_convert)

    def try_source(self, src: Source, url: str | None) -> Path:
        if src.safetensors:
            return self._from_safetensors_repo(src)
        if src.kind == "hub":
            return self._from_hub_pickle(src)
        assert url is not None
        if src.kind == "url":
            return self._from_url(src, url)
        return self._from_archive(src, url)

    def _fail(self, failed: SourceFailed) -> None:
        self.failures.append(failed.why)
        self._pending.append(failed.why)

    def _announce(self, action: str) -> None:
        """The one line of a source that is tried: why the ones before it failed, then what it reads."""
        why = "; ".join(self._pending) or "asked for"
        self._pending = []
        log.warning("%s: %s; %s", self.spec.name, why, action)

    def _final_error(self, allow_convert: bool) -> WeightsError:
        spec = self.spec
        tried = "; ".join(self.failures) or "weights.json lists no source for it"
        if not allow_convert:
            return WeightsError(
                f"'{spec.name}' is not available from {spec.repo_id}@{spec.revision[:12]} ({tried}). Run "
                "`oldphoto weights fetch-upstream` to convert the official release files, or pass --weights-dir DIR."
            )
        if self._hub_down is not None:
            return WeightsError(_missing_message(spec, self.cache, f"{self._hub_down}; every source failed: {tried}"))
        return WeightsError(
            f"'{spec.name}' could not be fetched from any of its {len(self.attempts())} sources: {tried}. Nothing "
            "was kept in the cache; check the connection and run the command again. If the downloads keep failing, "
            "get the official files another way (the release zips or the .pth files) and run `oldphoto weights "
            "import PATH` (or `oldphoto weights fetch-upstream --archives-dir DIR`), or pass --weights-dir DIR."
        )

    # -- the project's safetensors repo
    def _from_safetensors_repo(self, src: Source) -> Path:
        from huggingface_hub import hf_hub_download

        spec = self.spec
        local_missing, remote_missing = _hub_errors()
        name = f"{src.repo_id}@{(src.revision or 'main')[:12]}"
        pre = _preflight(src, self.endpoint, self.token)
        if pre is not None and pre[0] == "unreachable":
            raise SourceFailed(f"{name}: {pre[1]}", unreachable=True)
        if pre is not None:
            raise SourceFailed(f"not on the Hub yet ({type(pre[1]).__name__} from {name})")
        try:
            path = Path(
                hf_hub_download(
                    src.repo_id,
                    src.path,
                    revision=src.revision,
                    repo_type=src.repo_type,
                    cache_dir=str(self.cache),
                    endpoint=self.endpoint,
                    token=self.token,
                    force_download=self.force_download,
                    tqdm_class=DownloadBar,
                )
            )
        except local_missing as exc:  # HEAD failed (no connection, server down) and nothing cached
            cause = exc.__cause__ or exc
            raise SourceFailed(f"{name}: the Hub is unreachable ({type(cause).__name__})", unreachable=True) from None
        except remote_missing as exc:
            raise SourceFailed(f"not on the Hub yet ({type(exc).__name__} from {name})") from None
        except Exception as exc:  # HTTP 5xx, reset connection, truncated body, disk full, ...
            raise SourceFailed(str(_download_error(f"{src.path} for '{spec.name}' from {name}", exc))) from None
        try:
            verify_file(spec, path)
        except WeightsError as exc:
            raise SourceFailed(f"{name}: {exc}") from None
        return path

    # -- official pickles on the Hub
    def _from_hub_pickle(self, src: Source) -> Path:
        from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url

        spec = self.spec
        local_missing, remote_missing = _hub_errors()
        label = src.label()
        revision = src.revision or "main"
        try:  # ask first, so that the line below is only printed for a file that is there
            url = hf_hub_url(src.repo_id, src.path, revision=revision, repo_type=src.repo_type, endpoint=self.endpoint)
            meta = get_hf_file_metadata(url, token=self.token, timeout=10)
        except remote_missing as exc:
            raise SourceFailed(f"{label}: {_missing_why(exc)}") from None
        except Exception as exc:
            unreachable = any(c.__name__ in _UNREACHABLE for c in type(exc).__mro__)
            raise SourceFailed(f"{label}: unreachable ({type(exc).__name__})", unreachable=unreachable) from None
        wrapped = src.path.endswith(".zip")  # a zip around the official .pth (RetinaFace's asset)
        off = spec.official
        if not wrapped and off.size is not None and meta.size is not None and meta.size != off.size:
            raise SourceFailed(f"{label}: {meta.size} bytes, the official file has {off.size}; refused before "
                               "downloading")
        etag = (meta.etag or "").strip('"').lower()
        if not wrapped and off.sha256 and len(etag) == 64 and etag != off.sha256.lower():
            raise SourceFailed(f"{label}: sha256 {etag[:16]}..., the official file's is {off.sha256[:16]}...; "
                               "refused before downloading")
        unpinned = "" if src.pinned else (
            f", unpinned: commit {meta.commit_hash[:12]} of main" if meta.commit_hash else ", unpinned")
        self._announce(f"downloading the official checkpoint from {label} and converting it locally "
                       f"({_mb(meta.size)}{unpinned})")
        try:
            pickle_path = Path(
                hf_hub_download(
                    src.repo_id,
                    src.path,
                    revision=meta.commit_hash or revision,
                    repo_type=src.repo_type,
                    cache_dir=str(self.cache),
                    endpoint=self.endpoint,
                    token=self.token,
                    tqdm_class=DownloadBar,
                )
            )
        except (local_missing, *remote_missing) as exc:
            raise SourceFailed(str(_download_error(f"{src.path} for '{spec.name}' from {src.repo_id}", exc))) from None
        except Exception as exc:
            raise SourceFailed(str(_download_error(f"{src.path} for '{spec.name}'", exc))) from None
        detail = f"{src.repo_id}@{meta.commit_hash or revision}/{src.path}" + ("" if src.pinned else " (unpinned)")
        try:
            self._check_official(src, pickle_path, label, wrapped)
            return self._convert(pickle_path, label, SOURCE_MIRROR, detail)
        finally:
            remove_cached(pickle_path)  # the pickle is only an intermediate; keep the cache small

    # -- release zips
    def _from_archive(self, src: Source, url: str) -> Path:
        from . import archive

        spec = self.spec
        name = src.archive or ""
        info = self.reg.archives[name]
        label = f"release archive {name} at {url}"
        with tempfile.TemporaryDirectory(prefix="oldphoto-member-") as tmp:
            try:
                with archive.client() as http:
                    opened = archive.open_archive(http, url, spec.name, None)
                    with opened.zf:
                        names = opened.zf.namelist()
                        member, exact = archive.find_member(names, src.member, info.get("unpacks_into", ""))
                        if member is None:
                            raise SourceFailed(
                                f"{label}: it holds no {src.member or 'single checkpoint'} (weights.json may be out "
                                f"of date); it holds: {archive.describe(names)}"
                            )
                        if not exact:
                            log.warning("%s: %s is not at %s in %s; using %s", spec.name, spec.upstream.path,
                                        src.member, name, member)
                        zinfo = opened.zf.getinfo(member)
                        off = spec.official
                        if off.size is not None and zinfo.file_size != off.size:
                            raise SourceFailed(f"{label}: {member} has {zinfo.file_size} bytes, the official file "
                                               f"has {off.size}; refused before downloading")
                        self._announce(f"reading it from the {label} ({_mb(zinfo.compress_size)} of "
                                       f"{_mb(opened.size)})")
                        extracted = archive.extract(opened, member, Path(tmp) / "member.pth", spec.name)
            except archive.FAULTS as exc:
                raise SourceFailed(f"{label}: {archive.fault_message(exc)}") from None
            self._check_official(src, extracted, label, False)
            return self._convert(extracted, label, SOURCE_ARCHIVE, f"{url} {member}")

    # -- a checkpoint file at a URL (a .pth release asset)
    def _from_url(self, src: Source, url: str) -> Path:
        from . import archive

        label = f"{url}"
        name = url.rsplit("/", 1)[-1] or "checkpoint"
        with tempfile.TemporaryDirectory(prefix="oldphoto-file-") as tmp:
            dest = Path(tmp) / name
            try:
                with archive.client() as http, http.stream("GET", url) as resp:
                    if resp.status_code != 200:
                        raise SourceFailed(f"{label}: the server answered HTTP {resp.status_code}")
                    size = int(resp.headers.get("Content-Length") or 0) or None
                    off = self.spec.official
                    wrapped = name.endswith(".zip")
                    if not wrapped and off.size is not None and size is not None and size != off.size:
                        raise SourceFailed(f"{label}: {size} bytes, the official file has {off.size}; refused "
                                           "before downloading")
                    self._announce(f"downloading {label} and converting it locally ({_mb(size)})")
                    archive.stream_to(resp, dest, self.spec.name, size)
            except archive.FAULTS as exc:
                raise SourceFailed(f"{label}: {archive.fault_message(exc)}") from None
            self._check_official(src, dest, label, wrapped)
            return self._convert(dest, label, SOURCE_URL, url)

    # -- checks and conversion
    def _check_official(self, src: Source, path: Path, label: str, wrapped: bool) -> None:
        check_official(self.spec, src.sha256_prefix, path, label, wrapped)

    def _convert(self, pickle_path: Path, label: str, kind: str, detail: str) -> Path:
        return convert_checked(self.spec, pickle_path, label, kind, detail, out_dir=self.out_dir,
                               check_published=self.check_published)


def check_official(spec: ComponentSpec, sha256_prefix: str | None, path: Path, label: str, wrapped: bool) -> None:
    """The published hash of the official file (or the hash prefix of the zip it comes in), before conversion."""
    off = spec.official
    if sha256_prefix and wrapped:
        digest = sha256_file(path)
        if not digest.startswith(sha256_prefix):
            raise SourceFailed(f"{label}: sha256 {digest[:16]}... does not start with the published "
                               f"{sha256_prefix}; refused")
    if not wrapped and off.size is not None and path.stat().st_size != off.size:
        raise SourceFailed(f"{label}: {path.stat().st_size} bytes, the official file has {off.size}; refused")
    if not wrapped and off.sha256:
        digest = sha256_file(path)
        if digest != off.sha256.lower():
            raise SourceFailed(f"{label}: sha256 {digest[:16]}..., the official file's is {off.sha256[:16]}...; "
                               "refused")


def convert_checked(
    spec: ComponentSpec,
    pickle_path: Path,
    label: str,
    kind: str,
    detail: str,
    *,
    out_dir: Path | None = None,
    check_published: bool = True,
) -> Path:
    """Convert under a temporary name, check, then rename into place (nothing kept on failure).

    Into :func:`converted_dir` (with an origin record for ``weights status``), or into ``out_dir``
    (``verify --cross-check``: a scratch folder, no record). ``check_published``: refuse a
    conversion whose sha256 differs from weights.json's (the cross-check compares it itself).
    """
    from .convert import convert_file

    out = out_dir or converted_dir()
    incoming = f".{spec.filename}.{os.getpid()}.incoming"
    try:
        try:
            result = convert_file(pickle_path, spec.name, out, incoming)
        except WeightsError as exc:
            raise SourceFailed(f"{label}: {exc}") from None
        except OSError as exc:
            from .archive import fault_message

            raise SourceFailed(f"{label}: {fault_message(exc)}") from None
        if check_published and spec.sha256 and result.sha256 != spec.sha256.lower():
            raise SourceFailed(
                f"{label}: its conversion has sha256 {result.sha256[:16]}..., weights.json says "
                f"{spec.sha256[:16]}...; refused (that source's file differs from the one published)"
            )
        final = out / spec.filename
        os.replace(result.path, final)
    finally:
        (out / incoming).unlink(missing_ok=True)
    if out_dir is None:
        write_origin(final, kind, detail)
    return final


def describe(src: Source, url: str | None) -> str:
    """A source (and the URL of an archive or file) as lines and reports name it."""
    if src.kind == "archive":
        return f"release archive {src.archive} at {url}"
    if src.kind == "url":
        return str(url)
    return src.label()


def _missing_why(exc: BaseException) -> str:
    n = type(exc).__name__
    what = {"RepositoryNotFoundError": "the repo is gone or private", "RevisionNotFoundError": "the revision is gone",
            "RemoteEntryNotFoundError": "the repo has no such file", "EntryNotFoundError": "the repo has no such file",
            "GatedRepoError": "the repo is gated"}.get(n, "not available")
    return f"{what} ({n})"


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
