"""The bridge's wire protocol: framing, messages, the restore options and the errors both sides raise.

Why its own module: the client (in GIMP's or Krita's Python) and the worker (in the oldphoto
environment) must agree on every byte, and neither may import the other (the client cannot import
numpy or torch; the worker has no use for process spawning). Standard library only.

Framing: every message is ``MAGIC (4 bytes) | json_len (u32, big endian) | payload_len (u64)``, then
``json_len`` bytes of a UTF-8 JSON object, then ``payload_len`` raw bytes (pixels).

Messages, client -> worker (key ``op``):

* ``hello`` -> ``{"type": "hello", "protocol", "version", "python", "pid"}``
* ``restore`` with ``width``, ``height``, the fields of :class:`RestoreOptions` (``scratches``:
  ``none`` | ``auto`` | ``mask``, ``hr``, ``faces`` and the adjustments ``strength``,
  ``face_strength``, ``scratch_threshold``, ``mask_grow``: ``Restorer.restore``'s keywords, same
  defaults; the colour controls ``colorize``, ``colorize_model``, ``color_strength`` and
  ``existing_color``), ``want_mask`` and ``want_base``; payload = RGB u8 (``width*height*3``), then
  for ``mask`` one byte per pixel (0 / 255, white = damage). Replies: any number of
  ``{"type": "progress", "fraction", "message"}``, then ``{"type": "result", "width", "height",
  "faces", "mask_source", "timings", "notes", "mask", "colorized", "color_kept", "base"}`` with the
  RGB u8 payload, followed when ``"base": true`` (``want_base`` and the result was colourised) by the
  uncoloured result (``RestoreResult.uncolored``, RGB u8: for a host that puts the colour in a layer
  of its own), then when ``want_mask`` and a mask was used (``"mask": true``) by the mask used at the
  image's size (one byte per pixel, 0 / 255); or ``{"type": "error", "kind", "message"}`` (message
  written for the user), or ``{"type": "cancelled"}``. ``color_kept``: colour was asked for with
  ``existing_color="grey-only"`` and the layer has colour of its own (``oldphoto.stages.colorize.is_grey``
  says no), so it was not colourised (``notes`` say so).
  Colour from a reference photo or from colour points (protocol 4): ``colorize`` ``reference`` with
  ``"reference": {"bytes": N}`` (an image file, decoded by the worker, which names the problem of a
  bad one) or ``{"bytes": N, "width", "height"}`` (raw RGB u8, e.g. another open image's pixels),
  whose N bytes come last in the payload; ``colorize`` ``points`` with ``hints`` (``[[x, y,
  "#rrggbb"], ...]`` in the image's pixels) and/or ``"points_layer": true``, where a layer of
  painted dots follows the mask in the payload as RGBA u8 at the image's size (the worker turns each
  blob into a point: ``oldphoto.stages.points_layer``; the host only reads the layer).
* ``colorize`` with ``width``, ``height``, ``colorize`` (``auto``, ``reference`` or ``points``, default
  ``auto``), ``colorize_model``, ``color_strength``, ``existing_color`` and the reference / points
  fields of ``restore``; payload = RGB u8 (+ points layer, + reference). Replies: progress, then a ``result`` as for ``restore`` (``Restorer.colorize``:
  colour only, no repair), or an error (kind ``InputError`` for a layer that has colour while
  ``existing_color="grey-only"``) / cancelled.
* ``detect`` with ``width``, ``height``, ``scratch_threshold``, ``mask_grow``; payload = RGB u8. Replies:
  progress, then ``{"type": "mask", "width", "height"}`` with the detected mask (one byte per pixel,
  0 / 255), or an error / cancelled as for ``restore``. Only the scratch U-Net runs.
* ``cancel`` while a restore runs; closing the connection cancels too (GIMP kills a plug-in whose
  progress is cancelled, which closes its end).
* ``status`` -> ``{"type": "status", "done", "failed", "cancelled", "busy", "last_job"}``
* ``shutdown`` -> ``{"type": "bye"}`` and the worker exits.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import IO, Any

try:
    from ..errors import OldPhotoError
except ImportError:  # copied into a host plug-in: a standalone package without oldphoto around it

    class OldPhotoError(Exception):  # type: ignore[no-redef]
        """Same role as oldphoto.errors.OldPhotoError: the message is for the user."""


PROTOCOL = 4
"""2: the adjustments, ``want_mask`` and ``detect`` (a version-1 worker would ignore them silently).
3: colour (the colour controls of ``restore``, ``want_base``, the ``colorize`` request).
4: colour from a reference photo and from colour points (``reference``, ``hints``, ``points_layer``)."""
MAGIC = b"OPB1"
_HEAD = struct.Struct("!4sIQ")
MAX_JSON = 1 << 20
MAX_PAYLOAD = 7 * 64_000_000  # RGB + base RGB + mask of the 64 MP input limit (oldphoto.imageio.MAX_PIXELS)
SCRATCH_THRESHOLD = 0.4
"""``oldphoto.stages.detect.THRESHOLD``, repeated because this module must stay standard-library only."""
SCRATCHES = ("none", "auto", "mask")
"""The ``scratches`` values of a restore request (``mask``: the request carries the damage mask)."""
ADJUSTMENTS = ("strength", "face_strength", "scratch_threshold", "mask_grow")
"""The numeric controls a restore request may carry; the worker passes them to ``Restorer.restore``."""
DETECT_ADJUSTMENTS = ("scratch_threshold", "mask_grow")
"""The numeric controls a detect request may carry."""
COLOR_OPTIONS = ("colorize", "colorize_model", "color_strength", "existing_color")
"""The colour controls: a ``colorize`` request carries these of :class:`RestoreOptions` (a ``restore``
request carries them among all the others)."""
COLORIZE = ("none", "auto", "reference", "points")
"""The ``colorize`` values (``Restorer.restore``'s)."""
COLOR_MODELS = ("modelscope", "paper", "artistic", "tiny")
"""``colorize_model`` values (the DDColor checkpoints), the default first."""
EXISTING_COLOR = ("replace", "grey-only")
"""What a colour request does to a layer that already has colour: ``replace`` it (what
``Restorer.restore`` does) or leave it (``grey-only``: only grey or one-hue toned layers get colour)."""


@dataclass
class RestoreOptions:
    """Every control a host dialog offers, as it travels in a ``restore`` request.

    The field names are the request keys and ``Restorer.restore``'s keywords, with its defaults
    (which give the official result). GIMP's and Krita's dialogs fill one of these, so a control
    added here reaches both hosts and the worker through one place.
    """

    scratches: str = "none"
    """``none``, ``auto`` (detect) or ``mask`` (the host sends the damage mask)."""
    hr: bool = False
    """High-resolution scratch model and 512 px faces."""
    faces: bool = True
    strength: float = 1.0
    """How much of the restoration is kept (0 = the original)."""
    face_strength: float = 1.0
    """How much of each enhanced face is blended in."""
    scratch_threshold: float = SCRATCH_THRESHOLD
    """Detection probability from which a pixel is a scratch."""
    mask_grow: int = 0
    """Widen the damage mask by this many pixels."""
    colorize: str = "none"
    """``none``, ``auto`` (DDColor), ``reference`` (from a reference photo the host sends) or ``points``
    (from the ``hints`` and / or the points layer the host sends with the request)."""
    colorize_model: str = COLOR_MODELS[0]
    color_strength: float = 1.0
    """How much of the predicted colour is kept (0 = grey)."""
    existing_color: str = EXISTING_COLOR[0]
    """``replace`` or ``grey-only`` (not a ``Restorer`` keyword: the worker decides with ``is_grey``)."""

    def request(self, *names: str) -> dict[str, Any]:
        """The request keys for these options (JSON-ready): all of them, or only ``names`` in that
        order (``COLOR_OPTIONS``, ``DETECT_ADJUSTMENTS``: what a ``colorize`` or ``detect`` request
        carries), so every request takes its keys from the same fields."""
        keys = asdict(self)
        return {name: keys[name] for name in names} if names else keys

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_values(cls, values: dict[str, Any]) -> RestoreOptions:
        """Options from a dialog's values (e.g. GObject properties, Qt widgets' numbers): each value
        is given its field's type (a spin box's 3.0 becomes ``mask_grow=3``); unknown names are a
        TypeError, missing ones keep their defaults."""
        unknown = set(values) - set(cls.names())
        if unknown:
            raise TypeError(f"unknown restore options: {sorted(unknown)}")
        out = cls()
        for f in fields(cls):
            if f.name in values:
                kind = type(getattr(out, f.name))
                value = values[f.name]
                setattr(out, f.name, kind(round(value)) if kind is int else kind(value))
        if out.scratches not in SCRATCHES:
            raise ValueError(f"scratches must be one of {', '.join(SCRATCHES)}, not {out.scratches!r}")
        if out.colorize not in COLORIZE:
            raise ValueError(f"colorize must be one of {', '.join(COLORIZE)}, not {out.colorize!r}")
        if out.existing_color not in EXISTING_COLOR:
            raise ValueError(f"existing_color must be one of {', '.join(EXISTING_COLOR)}, not {out.existing_color!r}")
        return out


class BridgeError(OldPhotoError):
    """The worker could not be reached or answered badly; the message says what to do."""


class ConnectionClosed(BridgeError):
    """The other side went away."""


class ProtocolError(BridgeError):
    """Bytes on the wire are not a message of this protocol."""


class WorkerError(OldPhotoError):
    """The worker reported a failure; ``kind`` is the worker-side exception class name."""

    def __init__(self, message: str, kind: str = "OldPhotoError") -> None:
        super().__init__(message)
        self.kind = kind


class WorkerCancelled(WorkerError):
    def __init__(self, message: str = "Cancelled by the user.") -> None:
        super().__init__(message, "Cancelled")


# -- framing ------------------------------------------------------------------------------------


def write_message(stream: IO[bytes], header: dict[str, Any], payload: bytes | bytearray | memoryview = b"") -> None:
    body = json.dumps(header, separators=(",", ":")).encode("utf-8")
    stream.write(_HEAD.pack(MAGIC, len(body), len(payload)) + body)
    if len(payload):
        stream.write(payload)
    stream.flush()


def _read_exact(stream: IO[bytes], n: int) -> bytearray:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = stream.readinto(view[got:])  # type: ignore[attr-defined]
        if not k:
            raise ConnectionClosed(f"connection closed after {got} of {n} bytes")
        got += k
    return buf


def read_message(stream: IO[bytes]) -> tuple[dict[str, Any], bytes]:
    """One message; :class:`ConnectionClosed` at end of stream, :class:`ProtocolError` on garbage."""
    head = _read_exact(stream, _HEAD.size)
    magic, jlen, plen = _HEAD.unpack(head)
    if magic != MAGIC:
        raise ProtocolError(f"not an oldphoto bridge message (starts with {bytes(magic)!r})")
    if jlen > MAX_JSON or plen > MAX_PAYLOAD:
        raise ProtocolError(f"message too large (header {jlen} bytes, payload {plen} bytes)")
    try:
        header = json.loads(_read_exact(stream, jlen).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"bad message header: {exc}") from None
    if not isinstance(header, dict):
        raise ProtocolError("bad message header: not a JSON object")
    payload = bytes(_read_exact(stream, plen)) if plen else b""
    return header, payload


# -- the socket's folder (both sides create it) ---------------------------------------------------


def ensure_socket_dir(path: str) -> None:
    """Create the socket's folder (mode 0700). A folder in the shared temp dir that another user
    owns or can write to is refused: whoever controls it could impersonate the worker."""
    folder = Path(path).parent
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not hasattr(os, "getuid") or Path(tempfile.gettempdir()) not in folder.parents:
        return
    st = folder.stat()
    if st.st_uid != os.getuid() or st.st_mode & 0o022:
        raise BridgeError(f"The worker folder {folder} is not private to you; delete it and try again.")
