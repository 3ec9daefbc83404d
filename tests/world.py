"""Today's world on 127.0.0.1, for the first-run tests (builders only; no tests here).

* The Hub: the project's safetensors repo does not exist (the fake Hub answers 401 RepoNotFound,
  as the real one does for a missing repo); the mirror repo holds, at its pinned revision, the
  seven official pickles the real mirror has.
* The release host: the three archive URLs of weights.json (same paths, this host) answer with a
  302 to a CDN path that serves the zip with Range support, or ignores Range (``ranges=False``).

The checkpoints are real ``torch.save`` files with the official names, shapes and dtypes, but with
one constant per tensor (``1/fan_in`` for weights, so activations neither vanish nor explode):
they deflate ~1000:1, so the archives are a few MB while every converted file has its real size
(1.6 GB in all) and goes through the real conversion, checks and networks. RetinaFace's class
head answers "background" (as in :mod:`oldphoto.seeded`), so a run finds no face and stays short;
the detection U-Net's last layer answers "no scratch" (HR mode needs intact regions).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import zipfile
from functools import cache
from pathlib import Path

import torch

from oldphoto.weights import load_manifest, registry

from .hub_server import FakeHub

GLOBAL_ZIP = "global_checkpoints.zip"
FACE_ZIP = "face_checkpoints.zip"
FACE_TOP = "face_checkpoints/"
"""The face zip gets an extra top-level folder, which the member lookup must allow for."""


def compact_state_dict(component: str) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for name, shape, dtype in load_manifest(component).tensors:
        if dtype == "int64":
            out[name] = torch.zeros(shape, dtype=torch.int64)
            continue
        if name.endswith("running_var") or (len(shape) < 2 and name.endswith("weight")):
            value = 1.0
        elif len(shape) >= 2:
            value = 1.0 / max(1, math.prod(shape[1:]))
        else:
            value = 0.0
        out[name] = torch.full(shape, value, dtype=getattr(torch, dtype))
    if component == "detection_unet":  # sees no scratch (HR refuses a photo that is all scratch)
        out["last.1.weight"] = torch.zeros_like(out["last.1.weight"])
        out["last.1.bias"] = torch.full_like(out["last.1.bias"], -10.0)
    if component == "retinaface_resnet50":
        for k in out:
            if k.startswith("ClassHead.") and k.endswith(".weight"):
                out[k] = torch.zeros_like(out[k])
            elif k.startswith("ClassHead.") and k.endswith(".bias"):
                out[k] = torch.tensor([5.0, -5.0] * (out[k].numel() // 2))
    return out


def checkpoint_bytes(component: str) -> bytes:
    """The component's pickle as the official code saved it (detection: in a ``model_state`` container)."""
    state = compact_state_dict(component)
    obj = {"model_state": state, "epoch": 10} if component == "detection_unet" else state
    buf = io.BytesIO()  # torch.save into memory, then one write: 3x faster than to a file here
    torch.save(obj, buf)
    return buf.getvalue()


@cache
def checkpoint_digest(component: str) -> tuple[str, int]:
    """sha256 and size of :func:`checkpoint_bytes` (deterministic: torch.save stores no time)."""
    blob = checkpoint_bytes(component)
    return hashlib.sha256(blob).hexdigest(), len(blob)


def build_checkpoints(root: Path) -> dict[str, Path]:
    """The mirror's seven pickles as files, at their paths in the official layout."""
    paths = {}
    for name, spec in registry().components.items():
        if not spec.upstream.in_mirror:
            continue
        path = root / spec.upstream.path
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(checkpoint_bytes(name))
        paths[name] = path
    return paths


def build_archives(root: Path, pickles: dict[str, Path]) -> dict[str, Path]:
    """The three release zips, deflated like the official ones, holding the inference members
    (the mirror's files, and the three pickles only the archives have, made in memory)."""
    reg = registry()
    out = {}
    for arch in reg.archives:
        path = root / arch
        out[arch] = path
        if path.is_file():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            for name, spec in reg.components.items():
                if spec.upstream.archive != arch:
                    continue
                member = spec.upstream.member or Path(spec.upstream.path).name
                if arch == FACE_ZIP:
                    member = FACE_TOP + member
                if name in pickles:
                    zf.write(pickles[name], member)
                else:
                    zf.writestr(member, checkpoint_bytes(name))
        tmp.replace(path)
    return out


def release_path(url: str) -> str:
    """The path of a weights.json archive URL (the fake host serves the same paths)."""
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def populate(hub: FakeHub, pickles: dict[str, Path], archives: dict[str, Path], *, ranges: bool = True,
             mirror_revision: str | None = None) -> dict[str, str]:
    """Fill ``hub`` with today's world; returns archive name -> URL on this host."""
    reg = registry()
    mirror = {spec.upstream.path: pickles[n] for n, spec in reg.components.items() if spec.upstream.in_mirror}
    assert len(mirror) == 7, mirror
    hub.add_commit(reg.mirror_repo_id, mirror, commit=mirror_revision or reg.mirror_revision)
    urls = {}
    for arch, info in reg.archives.items():
        urls[arch] = hub.add_release(release_path(info["url"]), archives[arch], ranges=ranges)
    return urls


def registry_for(hub: FakeHub, tmp: Path, urls: dict[str, str] | None = None,
                 archives: dict[str, Path] | None = None) -> Path:
    """The package's weights.json with every archive URL on the fake host (same paths; ``urls``
    replaces an archive's first URL) and the known official sha256 set to this world's pickle
    (everything else as shipped). ``archives``: the world's zips, whose sha256 prefixes replace the
    published ones (the Hub copy of the RetinaFace zip is checked against it)."""
    data = json.loads(Path(registry().source).read_text(encoding="utf-8"))
    for arch, info in data["archives"].items():
        info["urls"] = [hub.url + release_path(u) for u in info["urls"]]
        if (urls or {}).get(arch):
            info["urls"][0] = urls[arch]
    for name, comp in data["components"].items():
        if comp["official"].get("sha256"):
            comp["official"].update(zip(("sha256", "size"), checkpoint_digest(name)))
        for src in comp["sources"]:
            arch = next((a for a in archives or {} if src.get("path", "").endswith(a)), None)
            if src.get("sha256_prefix") and arch is not None:
                src["sha256_prefix"] = hashlib.sha256(archives[arch].read_bytes()).hexdigest()[:9]
    path = tmp / f"weights.world-{hub.url.rsplit(':', 1)[1]}.json"  # one per host: the registry is cached by path
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path


FOOOCUS = "shaitanzx/FooocusExtend"
RETINA_HUB = "ea-dev/ckpts"


def populate_2027(hub: FakeHub, pickles: dict[str, Path], archives: dict[str, Path], root: Path) -> None:
    """The world of 2027: Microsoft's release URLs and RetinaFace's GitHub release answer 404, the
    first mirror is gone (401 RepoNotFound), and other sources weights.json lists serve each file:
    the re-hosted face zip (Haoming02's release), the unpinned FooocusExtend Hub copy of the global
    files, and the Hub copy of the RetinaFace zip (ea-dev/ckpts)."""
    reg = registry()
    hub.add_release(release_path(reg.archives[FACE_ZIP]["urls"][1]), archives[FACE_ZIP])
    files: dict[str, bytes | Path] = {}
    for name, spec in reg.components.items():
        if not spec.official.path.startswith("Global/"):
            continue
        src = next(s for s in spec.sources if s.repo_id == FOOOCUS)
        if name not in pickles:  # the HR mapping: only in the archives today
            path = root / spec.official.path
            if not path.is_file():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(checkpoint_bytes(name))
            files[src.path] = path
        else:
            files[src.path] = pickles[name]
    hub.add_commit(FOOOCUS, files)
    retina = next(s for s in reg.components["retinaface_resnet50"].sources if s.repo_id == RETINA_HUB)
    hub.add_commit(RETINA_HUB, {retina.path: next(p for a, p in archives.items() if retina.path.endswith(a))})


def archive_bytes(archives: dict[str, Path]) -> int:
    return sum(p.stat().st_size for p in archives.values())
