"""``OUT/oldphoto-batch.jsonl``: one JSON line per photo and run, the memory that makes a job resumable.

JSON Lines because a line is the unit of a crash: each record is appended with one ``write`` and
fsynced before the next photo is reported done, so a kill can only tear the last line. A torn last
line (no newline, or not JSON) is cut off when the file is next opened; any other bad line is a
real corruption and is reported, not skipped. The file is written by hand rather than through a
library because no JSON Lines library offers this append-and-fsync contract.

A record: ``input`` and ``output`` (paths relative to IN and OUT, ``/``-separated), ``size`` and
``mtime_ns`` of the input, ``options``, ``weights`` (component -> sha256), ``status`` (``ok`` /
``error`` / ``skipped``), ``message``, ``seconds`` and ``host``. ``skipped`` lines only report a
rerun's decision; the state of a photo is its latest ``ok`` or ``error`` line.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import InputError

NAME = "oldphoto-batch.jsonl"
FIELDS = ("input", "size", "mtime_ns", "output", "options", "weights", "status", "message", "seconds", "host")


def read(path: str | os.PathLike) -> list[dict]:
    """All complete records of a manifest (none when it does not exist); a torn last line is ignored."""
    p = Path(path)
    if not p.exists():
        return []
    data = p.read_bytes()
    lines = data[: data.rfind(b"\n") + 1].split(b"\n")  # an unterminated last line is a torn write
    records = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            if not isinstance(rec, dict) or "input" not in rec or "status" not in rec:
                raise ValueError("not a batch record")
        except ValueError as exc:
            raise InputError(
                f"{p}: line {i} is not a batch record ({exc}); the manifest was edited or damaged. "
                "Fix or delete that line (deleting the manifest redoes every photo)."
            ) from None
        records.append(rec)
    return records


def latest_state(records: list[dict]) -> dict[str, dict]:
    """The last ``ok`` or ``error`` record of each input path."""
    state: dict[str, dict] = {}
    for rec in records:
        if rec.get("status") in ("ok", "error"):
            state[rec["input"]] = rec
    return state


class Writer:
    """Appends records, one fsynced line each. Opening it cuts off a torn last line first."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        self._cut_torn_tail()

    def _cut_torn_tail(self) -> None:
        size = os.fstat(self._fd).st_size
        if not size:
            return
        os.lseek(self._fd, 0, os.SEEK_SET)
        data = b""
        while chunk := os.read(self._fd, 1 << 20):  # manifests are small (a few hundred bytes a photo)
            data += chunk
        keep = data.rfind(b"\n") + 1
        if keep < len(data):
            os.ftruncate(self._fd, keep)
            os.fsync(self._fd)

    def append(self, *records: dict) -> None:
        """Append records in one write and one fsync (a rerun's thousands of ``skipped`` lines at once)."""
        if not records:
            return
        data = b"".join((json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n").encode() for r in records)
        view = memoryview(data)
        while view:  # O_APPEND: each write goes to the end; a short write only happens for huge batches
            view = view[os.write(self._fd, view):]
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
