"""Official pickled checkpoints -> verified ``<component>.safetensors`` files.

The official weights are ``torch.save`` pickles (MIT-licensed, GitHub release zips and a pinned Hub
mirror). Pickles can run code when loaded, so they are only ever read with
``torch.load(weights_only=True)`` and converted once; everything at run time loads safetensors.
The output is deterministic (same tensors, same names, fixed metadata), so a conversion made on a
user's machine is byte-identical to the published file and can be checked against its sha256.
Maintainers then upload the files with :func:`publish`, which records the new pins. This module
knows nothing of the network except :func:`fetch_upstream`'s whole-archive downloads.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import WeightsError
from .cache import SOURCE_ARCHIVE, converted_dir, sha256_file, write_origin
from .manifests import check_structure, load_manifest
from .registry import component_spec, registry

__all__ = ["Converted", "convert", "convert_file", "fetch_upstream", "load_checkpoint", "publish", "sha256_file"]

log = logging.getLogger("oldphoto.weights")

CONTAINER_KEYS = ("model_state", "state_dict", "params")
"""Keys under which official training scripts nest the weights (detection: ``model_state``; DDColor's
BasicSR ``.pth`` files: ``params``)."""
DROPPED_PREFIXES = {"ddcolor_": ("encoder.arch.head_cls.",)}
"""Tensors an official file may carry that the network never uses, dropped on conversion (colorize
SPEC §2.2: DDColor's ``.pth`` files very probably still hold the removed ``head_cls`` classifier,
which the official ``strict=False`` load ignores). Anything else unexpected still fails."""
FILLED_BUFFERS = {"ddcolor_": {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}}
"""Constant buffers an official file may leave out; the official constructor's values are used
(for DDColor the ImageNet normalisation, SPEC §2.2: a missing mean/std is harmless there)."""

FRAGMENT_NAME = "weights.fragment.json"


@dataclass(frozen=True)
class Converted:
    """One written safetensors file and the facts weights.json records about it."""

    component: str
    path: Path
    sha256: str
    size: int
    source: str


def safetensors_metadata(component: str) -> dict[str, str]:
    """Header metadata: a single fixed key, since safetensors writes metadata keys in hash order and
    more than one key would make two conversions of the same weights differ byte for byte."""
    return {"format": "pt"}


# -- reading pickles ----------------------------------------------------------------------------


def _torch_load(path: Path) -> object:
    try:
        try:
            return torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:  # legacy (pre-zip) pickles cannot be memory-mapped
            if "mmap" not in str(exc):
                raise
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise WeightsError(
            f"Refused to load {path}: it is not a plain tensor checkpoint (the pickle references "
            f"code or objects that weights_only loading does not allow). Only official checkpoints "
            f"can be converted; get them with `oldphoto weights fetch-upstream`. Detail: {str(exc)[:300]}"
        ) from None
    except (EOFError, OSError, RuntimeError, ValueError, zipfile.BadZipFile) as exc:
        raise WeightsError(f"Cannot read checkpoint {path}: {exc}. Is the file complete?") from None


def _is_torch_zip(path: Path) -> bool:
    with zipfile.ZipFile(path) as zf:
        return any(n.endswith("data.pkl") for n in zf.namelist())


def load_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read an official checkpoint safely and return its flat state dict.

    Accepts plain state dicts, ``{"model_state": ...}`` containers (other top-level entries such as
    optimizer state are dropped), ``module.`` prefixed keys (DataParallel saves), and a zip that
    wraps a single ``.pth`` (the RetinaFace release asset).
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"Checkpoint not found: {path}")
    if path.suffix == ".safetensors":  # a third-party safetensors copy: no pickle, same checks after
        from safetensors.torch import load_file

        try:
            return unwrap(load_file(str(path)), str(path))
        except Exception as exc:  # safetensors raises several types for corrupt headers
            raise WeightsError(f"Cannot read {path} as safetensors: {exc}") from None
    if zipfile.is_zipfile(path) and not _is_torch_zip(path):
        with zipfile.ZipFile(path) as zf, tempfile.TemporaryDirectory(prefix="oldphoto-unzip-") as tmp:
            members = [n for n in zf.namelist() if n.endswith((".pth", ".pt")) and not n.endswith("/")]
            if len(members) != 1:
                raise WeightsError(f"{path} is a zip archive with {len(members)} checkpoints; expected one.")
            return load_checkpoint(_extract_member(zf, members[0], Path(tmp)))
    return unwrap(_torch_load(path), str(path))


def unwrap(obj: object, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """The tensor state dict inside a loaded checkpoint object."""
    if isinstance(obj, Mapping):
        for key in CONTAINER_KEYS:
            if key in obj and isinstance(obj[key], Mapping):
                dropped = sorted(str(k) for k in obj if k != key)
                if dropped:
                    log.info("%s: using '%s', ignoring %s", source, key, ", ".join(dropped))
                obj = obj[key]
                break
    if not isinstance(obj, Mapping):
        raise WeightsError(f"{source} does not hold a state dict (found {type(obj).__name__}).")
    state: dict[str, torch.Tensor] = {}
    for k, v in obj.items():
        if not isinstance(v, torch.Tensor):
            raise WeightsError(f"{source}: entry {k!r} is a {type(v).__name__}, not a tensor.")
        state[str(k)] = v
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


# -- checking and writing -----------------------------------------------------------------------


def prepare_state(component: str, state: Mapping[str, torch.Tensor], source: str) -> dict[str, torch.Tensor]:
    """Check a state dict against the component's manifest; return it in manifest order.

    ``num_batches_tracked`` counters missing from old saves are filled with 0 (BatchNorm's own
    loader does the same for such files; the value is never used in eval mode).
    """
    manifest = load_manifest(component)
    state = dict(state)
    for family, prefixes in DROPPED_PREFIXES.items():
        if component.startswith(family):
            dropped = [k for k in state if k.startswith(prefixes)]
            for k in dropped:
                del state[k]
            if dropped:
                log.info("%s: dropped %s (unused by the network)", source, ", ".join(dropped))
    for family, buffers in FILLED_BUFFERS.items():
        if component.startswith(family):
            shapes = manifest.shapes()
            for k, values in buffers.items():
                if k not in state:
                    state[k] = torch.tensor(values, dtype=torch.float32).view(shapes[k])
                    log.info("%s: %s missing, filled with the official constant", source, k)
    filled = [n for n, _, _ in manifest.tensors if n.endswith("num_batches_tracked") and n not in state]
    for name in filled:
        state[name] = torch.tensor(0, dtype=torch.int64)
    if filled:
        log.info("%s: filled %d missing num_batches_tracked counters with 0", source, len(filled))
    try:
        check_structure(component, state)
    except WeightsError as exc:
        raise WeightsError(f"Cannot convert {source} to '{component}': {exc}") from None
    return {n: state[n].detach().contiguous() for n, _, _ in manifest.tensors}


def write_safetensors(
    component: str,
    state: Mapping[str, torch.Tensor],
    out_dir: str | os.PathLike,
    filename: str | None = None,
    source: str = "",
) -> Converted:
    """Write atomically (temp file + rename) so an interrupted run never leaves a partial file."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / (filename or f"{component}.safetensors")
    fd, tmp = tempfile.mkstemp(prefix=f".{component}.", suffix=".tmp", dir=out)
    os.close(fd)
    try:
        save_file(dict(state), tmp, metadata=safetensors_metadata(component))
        digest = sha256_file(tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return Converted(component, path, digest, path.stat().st_size, source)


def convert_file(
    src: str | os.PathLike, component: str, out_dir: str | os.PathLike, filename: str | None = None
) -> Converted:
    """Convert one official checkpoint file into ``<out_dir>/<component>.safetensors``."""
    state = load_checkpoint(src)
    prepared = prepare_state(component, state, str(src))
    del state
    result = write_safetensors(component, prepared, out_dir, filename, source=str(src))
    log.info("converted %s -> %s (sha256 %s)", src, result.path, result.sha256)
    return result


# -- finding official files ---------------------------------------------------------------------


def _candidates(component: str) -> list[str]:
    """Relative paths under which a component's checkpoint may sit in a source folder."""
    up = component_spec(component).upstream
    paths = [up.path]
    parts = up.path.split("/")
    if len(parts) > 1:
        paths.append("/".join(parts[1:]))  # SRC is the Global/ or Face_Enhancement/ folder itself
    if up.member:
        paths.append(up.member)
    return list(dict.fromkeys(paths))


def guess_component(path: str | os.PathLike) -> str | None:
    """Component whose official path ends like ``path``: the last folder and file name suffice
    (``.../VAE_B_quality/latest_net_G.pth``), as every official checkpoint sits in its own folder."""
    tail = "/".join(Path(path).parts[-2:])
    for name in registry().components:
        parts = registry().components[name].upstream.path.split("/")
        if tail == "/".join(parts[-2:]) or (len(parts) == 1 and Path(path).name == parts[0]):
            return name
    return None


def find_official_files(src: str | os.PathLike, components: Iterable[str] | None = None) -> dict[str, Path]:
    """Official checkpoints present in a folder laid out like the unpacked release zips."""
    root = Path(src)
    found: dict[str, Path] = {}
    for name in components or registry().components:
        for cand in _candidates(name):
            if (root / cand).is_file():
                found[name] = root / cand
                break
    return found


def convert(
    src: str | os.PathLike,
    out_dir: str | os.PathLike,
    components: Iterable[str] | None = None,
    component: str | None = None,
) -> list[Converted]:
    """``oldphoto weights convert``: a folder (official layout) or one file -> safetensors + fragment.

    Every requested component must convert, otherwise nothing is reported as done: errors of all
    files are collected into one message so a user sees every problem at once.
    """
    src_p = Path(src)
    if src_p.is_file():
        name = component or guess_component(src_p)
        if name is None:
            raise WeightsError(
                f"Cannot tell which component {src_p} is; pass --component NAME "
                f"(one of: {', '.join(_component_names())})."
            )
        sources = {name: src_p}
    elif src_p.is_dir():
        wanted = list(components) if components else None
        sources = find_official_files(src_p, wanted)
        missing = [c for c in (wanted or []) if c not in sources]
        if missing or not sources:
            raise WeightsError(
                f"No official checkpoint found in {src_p} for: {', '.join(missing or _component_names())}. "
                "Expected the layout of the unpacked release zips (Global/checkpoints/..., "
                "Face_Enhancement/checkpoints/...)."
            )
    else:
        raise WeightsError(f"Source not found: {src_p}")
    results: list[Converted] = []
    errors: list[str] = []
    for name, path in sources.items():
        try:
            results.append(convert_file(path, name, out_dir))
        except WeightsError as exc:
            errors.append(str(exc))
    write_fragment(results, out_dir)
    if errors:
        raise WeightsError("\n".join(errors))
    return results


def _component_names() -> list[str]:
    return list(registry().components)


def fragment(results: Iterable[Converted]) -> dict:
    """The weights.json entries for converted files (``publish`` adds repo_id and revision)."""
    comps = {}
    for r in results:
        comps[r.component] = {
            "filename": r.path.name,
            "sha256": r.sha256,
            "size": r.size,
            "manifest": component_spec(r.component).manifest,
        }
    return {"components": comps}


def write_fragment(results: Iterable[Converted], out_dir: str | os.PathLike) -> Path:
    """Merge into an existing fragment so converting components one by one still yields one file."""
    path = Path(out_dir) / FRAGMENT_NAME
    data = {"components": {}}
    if path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            pass
    data.setdefault("components", {}).update(fragment(results)["components"])
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


# -- official release archives, all at once (explicit request) ---------------------------------------


def _extract_member(zf: zipfile.ZipFile, member: str, dest: Path) -> Path:
    out = dest / Path(member).name
    with zf.open(member) as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 22)
    return out


def fetch_upstream(
    out_dir: str | os.PathLike,
    *,
    components: Iterable[str] | None = None,
    archives_dir: str | os.PathLike | None = None,
    base_url: str | None = None,
) -> list[Converted]:
    """Download the official release zips (or use copies in ``archives_dir``) and convert.

    Downloaded zips are kept in ``archives_dir`` when given (a second run reuses them), else deleted.
    Only the inference members are extracted. This is the everything-at-once form of what the
    resolver does per component with ranged reads; the RetinaFace asset name carries the first hex
    digits of its sha256, which is checked here, where the whole zip is at hand.
    """
    from .archive import describe, find_member

    reg = registry()
    wanted = list(components or reg.components)
    by_archive: dict[str, list[str]] = {}
    for name in wanted:
        arch = reg.components[name].upstream.archive
        if arch is None:
            raise WeightsError(f"No upstream archive is known for '{name}'.")
        by_archive.setdefault(arch, []).append(name)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    in_cache = out.resolve() == converted_dir().resolve()
    results: list[Converted] = []
    with tempfile.TemporaryDirectory(prefix="oldphoto-upstream-", dir=out) as tmp:
        for arch, names in by_archive.items():
            info = reg.archives[arch]
            local = Path(archives_dir) / arch if archives_dir else None
            url = info["url"]
            if local is None or not local.is_file():
                local = Path(archives_dir if archives_dir else tmp) / arch
                local.parent.mkdir(parents=True, exist_ok=True)
                url = _download_first(arch, [f"{base_url.rstrip('/')}/{arch}"] if base_url else info["urls"], local)
            prefix = info.get("sha256_prefix")
            if prefix and not sha256_file(local).startswith(prefix):
                raise WeightsError(
                    f"{local} does not match the published hash prefix {prefix}; delete it and retry."
                )
            with zipfile.ZipFile(local) as zf:
                members = zf.namelist()
                for name in names:
                    up = reg.components[name].upstream
                    member, _exact = find_member(members, up.member, info.get("unpacks_into", ""))
                    if member is None:
                        raise WeightsError(
                            f"{arch} has no member {up.member or '*.pth'} for '{name}'; it holds: "
                            f"{describe(members)}."
                        )
                    extracted = _extract_member(zf, member, Path(tmp))
                    try:
                        done = convert_file(extracted, name, out)
                    finally:
                        extracted.unlink(missing_ok=True)
                    if in_cache:  # `weights status` tells where cached files came from
                        write_origin(done.path, SOURCE_ARCHIVE, f"{url} {member}")
                    results.append(done)
    write_fragment(results, out)
    return results


def _download_first(arch: str, urls: list[str], dest: Path) -> str:
    """The whole archive from the first of its URLs that serves it; the URL used."""
    from .archive import download_whole

    failures = []
    for url in urls:
        log.warning("downloading %s from %s", arch, url)
        try:
            download_whole(url, dest, arch)
            return url
        except WeightsError as exc:
            failures.append(str(exc))
            if len(urls) > 1:
                log.warning("%s", exc)
    raise WeightsError(" ".join(failures) if len(failures) == 1 else
                       f"None of the {len(urls)} URLs of {arch} served it: " + " ".join(failures))


# -- publishing (maintainers) -------------------------------------------------------------------


def publish(
    out_dir: str | os.PathLike,
    repo_id: str,
    *,
    token: str | bool | None = None,
    endpoint: str | None = None,
    branch: str = "main",
    private: bool | None = None,
    message: str | None = None,
    weights_json: str | os.PathLike | None = None,
) -> dict:
    """Upload converted files with ``HfApi`` and return weights.json updated with the new pins.

    Every file is checked against its manifest first, so a wrong file is never published. The
    returned document (also written to ``weights_json`` when given) records, per published
    component, the repo, the commit the upload created, and the sha256 and size of the file.
    """
    from huggingface_hub import CommitOperationAdd, HfApi
    from safetensors.torch import load_file

    out = Path(out_dir)
    reg = registry()
    files = sorted(p for p in out.glob("*.safetensors") if p.stem in reg.components)
    if not files:
        raise WeightsError(
            f"No <component>.safetensors files in {out}; run `oldphoto weights convert` first."
        )
    facts = {}
    for f in files:
        check_structure(f.stem, load_file(str(f)))
        facts[f.stem] = {"sha256": sha256_file(f), "size": f.stat().st_size, "filename": f.name}
    api = HfApi(endpoint=endpoint or os.environ.get("HF_ENDPOINT") or None, token=token)
    try:
        api.create_repo(repo_id, exist_ok=True, private=private)
        info = api.create_commit(
            repo_id,
            operations=[CommitOperationAdd(path_in_repo=f.name, path_or_fileobj=str(f)) for f in files],
            commit_message=message or f"oldphoto weights: {', '.join(sorted(facts))}",
            revision=branch,
        )
    except Exception as exc:
        raise WeightsError(
            f"Publishing to {repo_id} failed ({type(exc).__name__}: {exc}). Check the token "
            "(write access) and run again; nothing in weights.json was changed."
        ) from None
    target = Path(weights_json) if weights_json else None
    base = target if target is not None and target.is_file() else Path(reg.source)
    data = json.loads(base.read_text(encoding="utf-8"))
    for name, f in facts.items():
        entry = data["components"][name]
        entry.update(sha256=f["sha256"], size=f["size"], filename=f["filename"])
        entry["sources"][0].update(hub=repo_id, type="model", path=f["filename"], revision=info.oid)
    if target is not None:
        target.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return data
