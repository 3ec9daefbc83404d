"""The few file operations a batch job needs, for local paths and for filesystem URLs.

Local paths use ``os`` directly (fsync, rename). URLs (``s3://``, ``gs://``, ...) go through
``pyarrow.fs``, which Ray Data itself uses and which ships with ``oldphoto[ray]``; it is imported only
when a URL is given. URL support is untested here (no object store on the development machines).
The write is atomic in both cases: a temporary name in the same folder, then a rename, so that a
killed process never leaves a file under the final name that is only partly written.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PART_SUFFIX = ".part"
"""Temporary files are ``.<name>.<random>.part`` beside their final name (removed by the next run)."""


def is_url(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def _local(path: str) -> str:
    return path[len("file://"):] if path.startswith("file://") else path


def _arrow_fs(url: str):
    from pyarrow import fs as pafs

    return pafs.FileSystem.from_uri(url)  # (filesystem, path inside it)


def join(root: str, rel: str) -> str:
    """``root/rel`` with ``rel`` in POSIX form (the manifest's form on every system)."""
    if is_url(root):
        return root.rstrip("/") + "/" + rel
    return str(Path(_local(root), *rel.split("/")))


@dataclass(frozen=True)
class Entry:
    rel: str
    """Path relative to the walked root, ``/``-separated."""
    size: int
    mtime_ns: int


def walk(root: str, suffixes: set[str]) -> Iterator[Entry]:
    """Every file under ``root`` whose suffix is in ``suffixes`` (lower case), in no particular order.

    Hidden files and folders (leading ``.``) are left out: they are editors' and tools' files, and our
    own temporary files start with a dot.
    """
    if is_url(root):
        from pyarrow import fs as pafs

        fs, base = _arrow_fs(root)
        for info in fs.get_file_info(pafs.FileSelector(base, recursive=True)):
            rel = info.path[len(base.rstrip("/")) + 1:]
            if info.type == pafs.FileType.File and _wanted(rel, suffixes):
                mtime = info.mtime_ns if info.mtime_ns is not None else 0
                yield Entry(rel, int(info.size or 0), int(mtime))
        return
    base = Path(_local(root))
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            rel = Path(dirpath, name).relative_to(base).as_posix()
            if _wanted(rel, suffixes):
                st = os.stat(Path(dirpath, name))
                yield Entry(rel, st.st_size, st.st_mtime_ns)


def _wanted(rel: str, suffixes: set[str]) -> bool:
    parts = rel.split("/")
    return not any(p.startswith(".") for p in parts) and os.path.splitext(parts[-1])[1].lower() in suffixes


def read_bytes(path: str) -> bytes:
    if is_url(path):
        fs, p = _arrow_fs(path)
        with fs.open_input_stream(p) as f:
            return f.read()
    with open(_local(path), "rb") as f:
        return f.read()


def exists(path: str) -> bool:
    if is_url(path):
        from pyarrow import fs as pafs

        fs, p = _arrow_fs(path)
        return fs.get_file_info(p).type == pafs.FileType.File
    return os.path.isfile(_local(path))


def write_atomic(path: str, data: bytes) -> None:
    """Write ``data`` under a temporary name, flush it to disk, then rename it to ``path``.

    Two writers of the same photo (a retried Ray task whose first attempt got further than it
    seemed) each rename a complete file, so the last rename wins with the same bytes.
    """
    if is_url(path):
        fs, p = _arrow_fs(path)
        head, _, name = p.rpartition("/")
        tmp = f"{head}/.{name}.{secrets.token_hex(4)}{PART_SUFFIX}"
        with fs.open_output_stream(tmp) as f:
            f.write(data)
        fs.move(tmp, p)  # object stores: copy + delete; the final object appears whole either way
        return
    final = Path(_local(path))
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{secrets.token_hex(4)}{PART_SUFFIX}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(final.parent)


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX); not possible on Windows, where it is skipped."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_stale_parts(root: str) -> int:
    """Delete temporary files left by a killed run under a local ``root``; returns how many."""
    if is_url(root) or not os.path.isdir(_local(root)):
        return 0
    n = 0
    for dirpath, _dirs, filenames in os.walk(_local(root)):
        for name in filenames:
            if name.startswith(".") and name.endswith(PART_SUFFIX):
                Path(dirpath, name).unlink(missing_ok=True)
                n += 1
    return n


def nested(inner: str, outer: str) -> bool:
    """Whether ``inner`` is ``outer`` or lies inside it (symlinks resolved for local paths)."""
    if is_url(inner) != is_url(outer):
        return False
    if is_url(inner):
        a, b = inner.rstrip("/") + "/", outer.rstrip("/") + "/"
        return a.startswith(b)
    a, b = Path(_local(inner)).resolve(), Path(_local(outer)).resolve()
    return a == b or b in a.parents
