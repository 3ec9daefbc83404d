"""``oldphoto weights import PATH``: official files obtained some other way, into the cache.

For users whose downloads fail (every host gone, a firewall) but who got the release zips or the
``.pth`` pickles another way: a USB stick, a colleague, a Google Drive copy. PATH may be a release
zip (or any zip holding the official layout), a folder in the official layout (or holding the
zips), or single checkpoint files. Each file found is checked exactly as a download would be (the
official sha256 where known, ``torch.load(weights_only=True)``, the manifest, the published sha256
of the conversion) and converted into the resolver's cache (:func:`~.cache.converted_dir`), so
later runs find it there without ``--weights-dir`` and without the network.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..errors import WeightsError
from .archive import CHECKPOINT_SUFFIXES, find_member
from .cache import SOURCE_IMPORT
from .registry import ComponentSpec, Registry, component_spec, registry
from .resolve import SourceFailed, check_official, convert_checked


@dataclass(frozen=True)
class Imported:
    component: str
    path: Path
    source: str
    """The file (and zip member) it was converted from."""


@dataclass
class ImportReport:
    imported: list[Imported]
    errors: list[str]
    """One line per file that was found but refused (why, and from where)."""
    missing: list[str]
    """Components asked for (all, by default) that PATH does not hold."""


def _wrapped_zip(path: Path) -> bool:
    """A zip that is not itself a ``torch.save`` file (those are zips too, with a ``data.pkl``)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return not any(n.endswith("data.pkl") for n in zf.namelist())


def _member_for(spec: ComponentSpec, reg: Registry, names: list[str]) -> str | None:
    """The zip entry holding ``spec``'s official file: where a release zip of weights.json has it,
    else at its path in the official layout (an extra top folder, or the last folder and name)."""
    for src in spec.sources:
        if src.kind == "archive" and src.member is not None:
            member, _exact = find_member(names, src.member, reg.archives[src.archive or ""].get("unpacks_into", ""))
            if member is not None:
                return member
    if spec.official.path:
        member, _exact = find_member(names, spec.official.path)
        return member
    return None


def _from_zip(zpath: Path, wanted: list[str], reg: Registry, found: dict[str, tuple[Path, str | None]]) -> None:
    with zipfile.ZipFile(zpath) as zf:
        names = [n for n in zf.namelist() if not n.endswith("/")]
    for name in wanted:
        if name not in found and (member := _member_for(reg.components[name], reg, names)) is not None:
            found[name] = (zpath, member)
    # the RetinaFace asset: a zip whose single checkpoint is the component (matched by the zip's name)
    for name in wanted:
        if name in found:
            continue
        for src in reg.components[name].sources:
            if src.kind == "archive" and src.member is None and zpath.name == src.archive:
                ckpts = [n for n in names if n.endswith(CHECKPOINT_SUFFIXES)]
                if len(ckpts) == 1:
                    found[name] = (zpath, ckpts[0])


def _guess(path: Path, reg: Registry) -> str | None:
    tail = "/".join(path.parts[-2:])
    for name, spec in reg.components.items():
        official = PurePosixPath(spec.official.path)
        if tail == "/".join(official.parts[-2:]) or (len(official.parts) == 1 and path.name == official.name):
            return name
    return None


def find_importable(
    paths: Iterable[str | os.PathLike], *, components: Iterable[str] | None = None, component: str | None = None,
    reg: Registry | None = None,
) -> dict[str, tuple[Path, str | None]]:
    """component -> (file, zip member or None) for every official file found under ``paths``."""
    reg = reg or registry()
    wanted = list(components) if components else list(reg.components)
    found: dict[str, tuple[Path, str | None]] = {}
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            raise WeightsError(f"Nothing to import at {path}: no such file or folder.")
        if path.is_dir():
            for name in wanted:
                spec = reg.components[name]
                rel = [spec.official.path, "/".join(PurePosixPath(spec.official.path).parts[1:])]
                rel += [s.member for s in spec.sources if s.kind == "archive" and s.member]
                hit = next((path / r for r in rel if r and (path / r).is_file()), None)
                if name not in found and hit is not None:
                    found[name] = (hit, None)
            for z in sorted(path.glob("*.zip")):
                if _wrapped_zip(z):
                    _from_zip(z, wanted, reg, found)
        elif _wrapped_zip(path):
            _from_zip(path, wanted, reg, found)
        else:
            name = component or _guess(path, reg)
            if name is None:
                raise WeightsError(
                    f"Cannot tell which component {path} is (its folder and name match no official file); pass "
                    f"--component NAME (one of: {', '.join(reg.components)})."
                )
            component_spec(name, reg)
            found.setdefault(name, (path, None))
    return found


def import_weights(
    paths: Iterable[str | os.PathLike],
    *,
    components: Iterable[str] | None = None,
    component: str | None = None,
    reg: Registry | None = None,
) -> ImportReport:
    """Convert and check every official file found under ``paths`` into the converted cache."""
    reg = reg or registry()
    paths = list(paths)
    wanted = list(components) if components else list(reg.components)
    found = find_importable(paths, components=wanted, component=component, reg=reg)
    report = ImportReport([], [], [n for n in wanted if n not in found])
    if not found:
        raise WeightsError(
            f"No official checkpoint found in {', '.join(str(p) for p in paths)}. Expected a release zip "
            "(global_checkpoints.zip, face_checkpoints.zip, the RetinaFace zip), a folder laid out like the "
            "official repository (Global/checkpoints/..., Face_Enhancement/checkpoints/...), or .pth files."
        )
    for name, (file, member) in found.items():
        spec = reg.components[name]
        label = f"{file}" + (f" ({member})" if member else "")
        try:
            with tempfile.TemporaryDirectory(prefix="oldphoto-import-") as tmp:
                src = file
                if member is not None:
                    src = Path(tmp) / (PurePosixPath(member).name or "member.pth")
                    with zipfile.ZipFile(file) as zf, zf.open(member) as fin, open(src, "wb") as fout:
                        while block := fin.read(1 << 22):
                            fout.write(block)
                wrapped = _wrapped_zip(src)
                prefix = next((s.sha256_prefix for s in spec.sources if s.sha256_prefix), None)
                if member is not None and file.name in reg.archives and reg.archives[file.name].get("sha256_prefix"):
                    # the release zip itself, under its published name: its hash prefix is known
                    check_official(spec, reg.archives[file.name]["sha256_prefix"], file, str(file), True)
                check_official(spec, prefix if wrapped else None, src, label, wrapped)
                path = convert_checked(spec, src, label, SOURCE_IMPORT, f"{file}" + (f" {member}" if member else ""))
            report.imported.append(Imported(name, path, label))
        except SourceFailed as failed:
            report.errors.append(f"'{name}': {failed.why}")
        except (OSError, zipfile.BadZipFile) as exc:
            report.errors.append(f"'{name}': {label}: cannot read it ({exc})")
    return report
