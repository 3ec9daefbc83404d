"""One member of an official release zip, read over HTTP without downloading the whole zip.

``global_checkpoints.zip`` holds every global checkpoint (about a gigabyte); a run that needs one
of them should not pay for all of them. A zip's central directory sits at its end, so the stdlib's
``zipfile`` can open a remote zip given a seekable file object: :class:`HttpRangeFile` is that
object, over httpx (a declared dependency; also what gradio and older huggingface_hub use) with
HTTP Range requests. It reads the
tail first (one suffix range that also tells the archive's size), then the member, as one stream
for the member's whole extent, so a member costs one request, not one per block. fsspec's HTTP
filesystem does the same, but its HTTP backend needs aiohttp, a new dependency, for ~150 lines.

Redirects are followed (GitHub answers release URLs with a 302 to its CDN); a server that ignores
Range (a 200 with the whole body) gets the whole archive streamed once to a temporary file, with
the same progress bar, and that copy serves every member this process needs from it. zipfile checks
each member's CRC-32 as it reads; the size is checked here. Nothing is written to a cache by this
module: members go to a temporary file that the caller converts and then deletes.
"""

from __future__ import annotations

import io
import logging
import os
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import httpx

from ..errors import WeightsError
from .progress import DownloadBar

log = logging.getLogger("oldphoto.weights")

TAIL = 64 * 1024 + 22
"""First read: the end-of-central-directory record with the longest possible comment."""
MIN_FETCH = 256 * 1024
"""Smallest ranged read outside a member (a local header, a central directory past the tail)."""
CHUNK = 1 << 20
CHECKPOINT_SUFFIXES = (".pth", ".pt", ".ckpt")


class ArchiveFault(Exception):
    """A read went wrong in a way the user can do nothing about but retry (turned into WeightsError)."""


class RangeIgnored(Exception):
    """The server answered a Range request with the whole body (status 200)."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__("server ignores Range")
        self.response = response


def client() -> httpx.Client:
    from .. import __version__

    return httpx.Client(
        follow_redirects=True,
        max_redirects=10,
        timeout=httpx.Timeout(30.0, connect=10.0),
        headers={"User-Agent": f"oldphoto/{__version__}", "Accept-Encoding": "identity"},
    )


@dataclass
class ReadLog:
    """What was fetched, for progress and for tests that check a run read only what it needed."""

    ranges: list[tuple[int, int]] = field(default_factory=list)
    """(start, end exclusive) of every ranged request, as asked."""
    received: int = 0
    whole: bool = False


class HttpRangeFile(io.RawIOBase):
    """A read-only, seekable file over HTTP Range requests (see the module docstring for why)."""

    def __init__(
        self,
        http: httpx.Client,
        url: str,
        *,
        on_bytes: Callable[[int], None] | None = None,
        readlog: ReadLog | None = None,
    ) -> None:
        super().__init__()
        self.http = http
        self.url = url  # the original URL: asked again if the CDN's signed URL expires
        self._current = url
        self.on_bytes = on_bytes
        self.log = readlog if readlog is not None else ReadLog()
        self._pos = 0
        self._buf_start = 0
        self._buf = b""
        self._stream: httpx.Response | None = None
        self._chunks = None
        self._stream_pos = 0
        self._stream_end = 0
        self._pending = b""
        self.extent: tuple[int, int] | None = None
        """(start, end) of the member being read: one request covers it (set by :func:`extract`)."""
        resp = self._request(-1, TAIL)  # suffix range: the tail, and the total size
        total = _total_size(resp)
        data = self._drain(resp)
        self.size = total
        self._buf_start, self._buf = total - len(data), data

    # -- io.RawIOBase
    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def read(self, n: int = -1) -> bytes:
        """Exactly ``n`` bytes (fewer only at the end): zipfile does not loop over short reads."""
        if n is None or n < 0:
            n = self.size - self._pos
        out = bytearray()
        while len(out) < n and self._pos < self.size:
            piece = self._read_some(n - len(out))
            if not piece:
                raise ArchiveFault(f"the body ended early at byte {self._pos} of {self.size}")
            out += piece
            self._pos += len(piece)
        return bytes(out)

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._close_stream()
        super().close()

    # -- internals
    def _read_some(self, n: int) -> bytes:
        pos = self._pos
        if self._buf_start <= pos < self._buf_start + len(self._buf):
            off = pos - self._buf_start
            return self._buf[off : off + n]
        if self._stream is None or self._stream_pos != pos or pos >= self._stream_end:
            self._close_stream()
            if self.extent and self.extent[0] <= pos < self.extent[1]:
                end = self.extent[1]
            else:
                end = min(self.size, pos + max(n, MIN_FETCH))
            if pos < self._buf_start < end:  # the rest is in the tail read first: do not fetch it twice
                end = self._buf_start
            self._stream = self._request(pos, end)
            self._chunks = self._stream.iter_raw(CHUNK)
            self._stream_pos, self._stream_end = pos, end
        if not self._pending:
            try:
                self._pending = next(self._chunks)  # type: ignore[arg-type]
            except StopIteration:
                return b""  # the stream ended before its range did: read() reports it
            self._count(len(self._pending))
        piece, self._pending = self._pending[:n], self._pending[n:]
        self._stream_pos += len(piece)
        return piece

    def _count(self, n: int) -> None:
        self.log.received += n
        if self.on_bytes is not None and n:
            self.on_bytes(n)

    def _close_stream(self) -> None:
        if self._stream is not None:
            self._stream.close()
        self._stream, self._chunks, self._pending = None, None, b""

    def _request(self, start: int, end: int) -> httpx.Response:
        """GET bytes [start, end) (``start`` -1: the last ``end`` bytes); a 206 or an error."""
        rng = f"bytes=-{end}" if start < 0 else f"bytes={start}-{end - 1}"
        self.log.ranges.append((start, end))
        for attempt in (0, 1):
            req = self.http.build_request("GET", self._current, headers={"Range": rng})
            resp = self.http.send(req, stream=True)
            if resp.status_code == 206:
                self._current = str(resp.url)
                if start >= 0 and not resp.headers.get("Content-Range", "").startswith(f"bytes {start}-"):
                    resp.close()
                    raise ArchiveFault(f"the server answered another range ({resp.headers.get('Content-Range')})")
                return resp
            if resp.status_code == 200:
                raise RangeIgnored(resp)
            resp.close()
            if attempt == 0 and self._current != self.url and resp.status_code in (401, 403, 404, 410):
                self._current = self.url  # a signed CDN link expired: ask the release URL again
                continue
            raise ArchiveFault(f"the server answered HTTP {resp.status_code} for {rng}")
        raise AssertionError("unreachable")

    def _drain(self, resp: httpx.Response) -> bytes:
        try:
            data = b"".join(resp.iter_raw(CHUNK))
        finally:
            resp.close()
        self._count(len(data))
        return data


def _total_size(resp: httpx.Response) -> int:
    cr = resp.headers.get("Content-Range", "")
    try:
        return int(cr.rsplit("/", 1)[1])
    except (IndexError, ValueError):
        resp.close()
        raise ArchiveFault(f"the server sent no archive size (Content-Range {cr!r})") from None


# -- finding members ------------------------------------------------------------------------------


def find_member(names: list[str], member: str | None, unpacks_into: str = "") -> tuple[str | None, bool]:
    """The archive entry for ``member``; ``(name, exact)``, ``exact`` False for a looser match.

    weights.json's member paths are inferred from the official "unzip into Global/" instructions,
    so an extra top-level folder (``Global/checkpoints/...`` or ``global_checkpoints/checkpoints/...``)
    is accepted as exact; failing that, the one entry with the same folder and file name.
    ``member`` None: the archive's single checkpoint (the RetinaFace asset).
    """
    files = [n for n in names if not n.endswith("/")]
    if member is None:
        ckpts = [n for n in files if n.endswith(CHECKPOINT_SUFFIXES)]
        return (ckpts[0], True) if len(ckpts) == 1 else (None, False)
    if member in files:
        return member, True
    for n in files:
        parts = PurePosixPath(n).parts
        if len(parts) >= 2 and "/".join(parts[1:]) == member:
            return n, True
    tail = "/".join(PurePosixPath(member).parts[-2:])
    loose = [n for n in files if n == tail or n.endswith("/" + tail)]
    return (loose[0], False) if len(loose) == 1 else (None, False)


def describe(names: list[str], limit: int = 12) -> str:
    ckpts = [n for n in names if n.endswith(CHECKPOINT_SUFFIXES)]
    shown = ckpts[:limit] or [n for n in names if not n.endswith("/")][:limit]
    more = len(ckpts) - len(shown) if ckpts else 0
    return ", ".join(shown) + (f" ... (+{more} more)" if more > 0 else "") if shown else "nothing"


# -- reading --------------------------------------------------------------------------------------


@dataclass
class Opened:
    """An archive opened for reading members: remotely (ranges) or from a whole local copy."""

    zf: zipfile.ZipFile
    remote: HttpRangeFile | None
    readlog: ReadLog
    size: int


_WHOLE: dict[str, Path] = {}
_WHOLE_DIR: tempfile.TemporaryDirectory | None = None


def _whole_copy(resp: httpx.Response, url: str, label: str, readlog: ReadLog) -> Path:
    """Stream a 200 response (a server that ignores Range) into a process-lifetime temp file."""
    global _WHOLE_DIR
    if _WHOLE_DIR is None:
        _WHOLE_DIR = tempfile.TemporaryDirectory(prefix="oldphoto-archives-")
    path = Path(_WHOLE_DIR.name) / f"{len(_WHOLE)}-{PurePosixPath(url).name or 'archive.zip'}"
    expected = int(resp.headers.get("Content-Length") or 0) or None
    readlog.whole = True
    log.warning("%s: the release host does not serve byte ranges; downloading the whole archive once", label)
    try:
        stream_to(resp, path, label, expected, on_bytes=lambda n: setattr(readlog, "received", readlog.received + n))
    finally:
        resp.close()
    _WHOLE[url] = path
    return path


def open_archive(http: httpx.Client, url: str, label: str, on_bytes: Callable[[int], None] | None) -> Opened:
    readlog = ReadLog()
    if url in _WHOLE and _WHOLE[url].is_file():
        zf = zipfile.ZipFile(_WHOLE[url])
        return Opened(zf, None, readlog, _WHOLE[url].stat().st_size)
    try:
        remote = HttpRangeFile(http, url, on_bytes=on_bytes, readlog=readlog)
    except RangeIgnored as ignored:
        path = _whole_copy(ignored.response, url, label, readlog)
        return Opened(zipfile.ZipFile(path), None, readlog, path.stat().st_size)
    return Opened(zipfile.ZipFile(remote), remote, readlog, remote.size)


def extract(opened: Opened, name: str, dest: Path, label: str) -> Path:
    """Copy one member to ``dest`` (CRC checked by zipfile, size checked here); removed on failure."""
    info = opened.zf.getinfo(name)
    if opened.remote is not None:
        # the data follows a 30-byte local header, its name and an extra field of up to 64 KiB
        start = info.header_offset
        opened.remote.extent = (start, min(opened.remote.size, start + 30 + len(info.orig_filename.encode())
                                           + len(info.extra) + info.compress_size + 1024))
    bar = DownloadBar(desc=label, total=info.compress_size if opened.remote is not None else info.file_size)
    seen = 0
    if opened.remote is not None:
        opened.remote.on_bytes = bar.update
    try:
        with opened.zf.open(info) as src, open(dest, "wb") as dst:
            while block := src.read(CHUNK):
                dst.write(block)
                seen += len(block)
                if opened.remote is None:
                    bar.update(len(block))
        if seen != info.file_size:
            raise ArchiveFault(f"member {name} has {seen} bytes, the archive says {info.file_size}")
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    finally:
        bar.close()
        if opened.remote is not None:
            opened.remote.on_bytes = None
            opened.remote.extent = None
    return dest


FAULTS = (ArchiveFault, httpx.HTTPError, OSError, EOFError, zipfile.BadZipFile, zlib.error)
"""What a read can end with besides WeightsError: a link, a server, the data or the disk failing."""


def fault_message(exc: BaseException) -> str:
    """What went wrong, in a few words, for the one-line error."""
    if isinstance(exc, httpx.TooManyRedirects):
        return "the release host redirected in a loop"
    if isinstance(exc, zipfile.BadZipFile | zlib.error | EOFError):
        return f"the archive data is damaged ({exc})"
    if isinstance(exc, OSError) and exc.errno in (28, 27):  # ENOSPC, EFBIG
        return f"no room to write it ({exc.strerror}); free some disk space"
    if isinstance(exc, httpx.HTTPError):
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return f"the connection failed ({type(exc).__name__}{': ' + detail[:160] if detail else ''})"
    return str(exc)[:300] or type(exc).__name__


def stream_to(
    resp: httpx.Response, dest: Path, label: str, expected: int | None, on_bytes: Callable[[int], None] | None = None
) -> Path:
    """A 200 response's body to ``dest`` with a progress bar; size checked; removed on failure."""
    try:
        with open(dest, "wb") as f, DownloadBar(desc=label, total=expected) as bar:
            for chunk in resp.iter_raw(CHUNK):
                f.write(chunk)
                bar.update(len(chunk))
                if on_bytes is not None:
                    on_bytes(len(chunk))
        if expected is not None and dest.stat().st_size != expected:
            raise ArchiveFault(f"the body ended early ({dest.stat().st_size} of {expected} bytes)")
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    return dest


def download_whole(url: str, dest: Path, label: str) -> None:
    """``fetch-upstream``: the whole archive to ``dest`` (atomically, with a progress bar)."""
    tmp = dest.with_name(f".{dest.name}.part")
    try:
        with client() as http, http.stream("GET", url) as resp:
            if resp.status_code != 200:
                raise ArchiveFault(f"the server answered HTTP {resp.status_code}")
            stream_to(resp, tmp, label, int(resp.headers.get("Content-Length") or 0) or None)
        os.replace(tmp, dest)
    except (ArchiveFault, httpx.HTTPError, OSError) as exc:
        raise WeightsError(
            f"Could not download {url}: {fault_message(exc)}. Nothing was kept; check the connection and run again."
        ) from None
    finally:
        tmp.unlink(missing_ok=True)
