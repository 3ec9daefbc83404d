"""Bridge to an oldphoto worker process: the wire protocol, the client, and the worker itself.

Why: GIMP's Python (and any other host without torch) cannot import oldphoto's networks, so it
sends pixels to a worker running in the user's oldphoto environment. The worker keeps one
:class:`oldphoto.Restorer` loaded, so only the first call pays for importing torch and loading
weights.

This module (protocol + client) imports only the standard library, so ``oldphoto gimp install``
copies it unchanged next to the GIMP plug-in (as ``oldphoto_bridge.py``) and both sides share one
protocol. The server side is :mod:`oldphoto.bridge_worker` (numpy, torch), started as
``oldphoto worker`` or ``python -m oldphoto.bridge_worker``.

Transports (same messages on both):

* ``socket`` (default where ``AF_UNIX`` exists): a persistent worker listens on a UNIX socket. The
  client connects; when nobody listens it starts ``python -m oldphoto.bridge_worker --socket PATH`` in the
  background and waits for it. The worker exits after ``idle_timeout`` seconds without clients. A
  worker can also be started by hand (``oldphoto worker --socket PATH``) for a GIMP that cannot
  start host programs (Flatpak, a chroot, a container sharing a folder).
* ``stdio`` (Windows, or ``"transport": "stdio"``): one worker per call, spoken to over its
  stdin/stdout; it exits at end of input.

Framing: every message is ``MAGIC (4 bytes) | json_len (u32, big endian) | payload_len (u64)``, then
``json_len`` bytes of a UTF-8 JSON object, then ``payload_len`` raw bytes (pixels).

Messages, client -> worker (key ``op``):

* ``hello`` -> ``{"type": "hello", "protocol", "version", "python", "pid"}``
* ``restore`` with ``width``, ``height``, ``scratches`` (``none`` | ``auto`` | ``mask``), ``hr``,
  ``faces``, the adjustments ``strength``, ``face_strength``, ``scratch_threshold``, ``mask_grow``
  (``Restorer.restore``'s keywords, same defaults), ``want_mask`` and optionally colour:
  ``colorize`` (``none`` | ``auto``), ``colorize_model``, ``color_strength``, ``only_if_grey`` (a
  layer that already has colour is not colourised; the result's ``notes`` say so) and ``want_base``
  (also send the uncoloured result, ``RestoreResult.uncolored``, for a host that puts the colour in
  a layer of its own); payload = RGB u8
  (``width*height*3``), then for ``mask`` one byte per pixel (0 / 255, white = damage). Replies: any
  number of ``{"type": "progress", "fraction", "message"}``, then ``{"type": "result", "width",
  "height", "faces", "mask_source", "timings", "notes", "mask", "colorized", "color_kept", "base"}`` with the RGB u8
  payload, followed when ``"base": true`` by the uncoloured result (RGB u8), then when ``want_mask``
  and a mask was used (``"mask": true``) by the mask used at the image's size (one byte per pixel,
  0 / 255); or ``{"type": "error", "kind", "message"}`` (message written for the user), or
  ``{"type": "cancelled"}``.
* ``colorize`` with ``width``, ``height``, ``colorize_model``, ``color_strength``, ``only_if_grey``;
  payload = RGB u8. Replies: progress, then a ``result`` as for ``restore`` (``Restorer.colorize``:
  colour only, no repair), or an error (``InputError`` for a layer that has colour while
  ``only_if_grey``) / cancelled.
* ``detect`` with ``width``, ``height``, ``scratch_threshold``, ``mask_grow``; payload = RGB u8. Replies:
  progress, then ``{"type": "mask", "width", "height"}`` with the detected mask (one byte per pixel,
  0 / 255), or an error / cancelled as for ``restore``. Only the scratch U-Net runs.
* ``cancel`` while a restore runs; closing the connection cancels too (GIMP kills a plug-in whose
  progress is cancelled, which closes its end).
* ``status`` -> ``{"type": "status", "done", "failed", "cancelled", "busy", "last_job"}``
* ``shutdown`` -> ``{"type": "bye"}`` and the worker exits.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

try:
    from .errors import OldPhotoError
except ImportError:  # copied next to the GIMP plug-in: a standalone module without its package

    class OldPhotoError(Exception):  # type: ignore[no-redef]
        """Same role as oldphoto.errors.OldPhotoError: the message is for the user."""


PROTOCOL = 3
"""2: the adjustments, ``want_mask`` and ``detect`` (a version-1 worker would ignore them silently).
3: colour (``colorize`` request, colour keys of ``restore``, the ``base`` image)."""
MAGIC = b"OPB1"
_HEAD = struct.Struct("!4sIQ")
MAX_JSON = 1 << 20
MAX_PAYLOAD = 7 * 64_000_000  # RGB + base RGB + mask of the 64 MP input limit (oldphoto.imageio.MAX_PIXELS)
CONFIG_NAME = "oldphoto-worker.json"
"""The config file ``oldphoto gimp install`` writes next to the plug-in."""
SCRATCH_THRESHOLD = 0.4
"""``oldphoto.stages.detect.THRESHOLD``, repeated because this module must stay standard-library only."""
COLOR_MODELS = ("modelscope", "paper", "artistic", "tiny")
"""``Restorer``'s ``colorize_model`` values (the DDColor checkpoints), default first."""
START_TIMEOUT = 180.0
"""Seconds a starting worker may take (importing torch from a cold disk can take a minute)."""

Progress = Callable[[float, str], None]


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


# -- configuration --------------------------------------------------------------------------------


@dataclass
class WorkerConfig:
    """Which Python runs the worker and how to reach it; stored as JSON next to the plug-in."""

    python: str
    """Interpreter of the environment where oldphoto is installed (``sys.executable`` at install)."""
    weights_dir: str | None = None
    device: str = "auto"
    transport: str = "auto"
    """``auto`` (socket where supported, else stdio), ``socket`` or ``stdio``."""
    socket: str | None = None
    """Socket path; default: a per-user, per-environment path in the temp folder."""
    idle_timeout: float = 900.0
    """A worker the client starts exits after this many idle seconds (frees the model memory)."""

    @classmethod
    def load(cls, path: str | os.PathLike) -> WorkerConfig:
        p = Path(path)
        fix = "Run `oldphoto gimp install` from the environment where oldphoto is installed."
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise BridgeError(f"The oldphoto worker is not configured: {p} is missing. {fix}") from None
        except (OSError, ValueError) as exc:
            raise BridgeError(f"The oldphoto worker configuration {p} cannot be read ({exc}). {fix}") from None
        if not isinstance(data, dict) or not isinstance(data.get("python"), str):
            raise BridgeError(f"The oldphoto worker configuration {p} names no Python. {fix}")
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def save(self, path: str | os.PathLike) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")

    def uses_socket(self) -> bool:
        if self.transport == "stdio":
            return False
        if self.transport == "socket":
            return True
        return hasattr(socket, "AF_UNIX") and os.name != "nt"

    def socket_path(self) -> str:
        """The configured path, or one per user and environment, short enough for AF_UNIX."""
        if self.socket:
            return self.socket
        key = json.dumps([self.python, self.weights_dir, self.device]).encode()
        digest = hashlib.sha256(key).hexdigest()[:12]
        uid = os.getuid() if hasattr(os, "getuid") else 0
        return os.path.join(tempfile.gettempdir(), f"oldphoto-{uid}", f"worker-{digest}.sock")

    def worker_command(self, *, stdio: bool = False) -> list[str]:
        cmd = [self.python, "-m", "oldphoto.bridge_worker", "--device", self.device]
        if self.weights_dir:
            cmd += ["--weights-dir", self.weights_dir]
        if stdio:
            return cmd + ["--stdio"]
        return cmd + ["--socket", self.socket_path(), "--idle-timeout", str(self.idle_timeout)]


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


def _clean_env() -> dict[str, str]:
    """The host program's environment minus what points Python at the host's own interpreter
    (GIMP sets PYTHONHOME/PYTHONPATH for its bundled Python on Windows and macOS)."""
    drop = ("PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP", "PYTHONEXECUTABLE", "GI_TYPELIB_PATH", "__PYVENV_LAUNCHER__")
    return {k: v for k, v in os.environ.items() if k not in drop}


def _log_tail(path: str | None, lines: int = 6) -> str:
    if not path:
        return ""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    kept = [ln for ln in text.strip().splitlines() if ln.strip()][-lines:]
    return "\n".join(kept)


def _last_error_line(tail: str) -> str:
    for ln in reversed(tail.splitlines()):
        if ln.startswith("oldphoto worker: "):
            return ln[len("oldphoto worker: "):]
    return tail.splitlines()[-1] if tail else "no output"


# -- client ---------------------------------------------------------------------------------------


class WorkerClient:
    """One conversation with a worker. Use :meth:`connect`; it starts the worker when needed."""

    def __init__(
        self,
        rfile: IO[bytes],
        wfile: IO[bytes],
        *,
        closer: Callable[[], None],
        log_path: str | None = None,
        process: subprocess.Popen | None = None,
    ) -> None:
        self._r, self._w, self._closer = rfile, wfile, closer
        self.log_path = log_path
        self.process = process
        self.info: dict[str, Any] = {}

    # connection ------------------------------------------------------------------------------
    @classmethod
    def connect(
        cls, config: WorkerConfig, *, start: bool = True, status: Callable[[str], None] | None = None
    ) -> WorkerClient:
        client = cls._connect_socket(config, start, status) if config.uses_socket() else cls._spawn_stdio(config)
        client.hello()
        return client

    @classmethod
    def _try_socket(cls, path: str, log_path: str | None) -> WorkerClient | None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
        except (FileNotFoundError, ConnectionRefusedError, OSError):
            s.close()
            return None

        def close() -> None:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

        return cls(s.makefile("rb"), s.makefile("wb"), closer=close, log_path=log_path)

    @classmethod
    def _connect_socket(
        cls, config: WorkerConfig, start: bool, status: Callable[[str], None] | None
    ) -> WorkerClient:
        path = config.socket_path()
        log_path = path + ".log"
        client = cls._try_socket(path, log_path)
        if client is not None:
            return client
        if not start:
            raise BridgeError(f"No oldphoto worker is listening on {path}.")
        _check_python(config, listening_on=path)
        ensure_socket_dir(path)
        if status:
            status("Starting the oldphoto worker (the first run loads the models)")
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                config.worker_command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=_clean_env(),
                start_new_session=True,  # outlives this plug-in run: that is what keeps models loaded
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            client = cls._try_socket(path, log_path)
            if client is not None:
                client.process = proc
                return client
            code = proc.poll()
            if code not in (None, 0):  # 0: another worker won the race for the socket; keep trying
                raise BridgeError(
                    f"The oldphoto worker could not start: {_last_error_line(_log_tail(log_path))}\n"
                    f"(worker log: {log_path})"
                )
            time.sleep(0.1)
        raise BridgeError(f"The oldphoto worker did not start within {START_TIMEOUT:.0f} s (log: {log_path}).")

    @classmethod
    def _spawn_stdio(cls, config: WorkerConfig) -> WorkerClient:
        _check_python(config)
        log_path = os.path.join(tempfile.gettempdir(), "oldphoto-worker-stdio.log")
        flags = getattr(subprocess, "CREATE_NO_WINDOW", 0)
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                config.worker_command(stdio=True),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env=_clean_env(),
                creationflags=flags,
            )
        assert proc.stdin is not None and proc.stdout is not None

        def close() -> None:
            with contextlib.suppress(OSError):
                proc.stdin.close()  # type: ignore[union-attr]
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
            with contextlib.suppress(OSError):
                proc.stdout.close()  # type: ignore[union-attr]

        return cls(proc.stdout, proc.stdin, closer=close, log_path=log_path, process=proc)

    def close(self) -> None:
        self._closer()

    def __enter__(self) -> WorkerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # requests --------------------------------------------------------------------------------
    def _send(self, header: dict[str, Any], payload: bytes = b"") -> None:
        try:
            write_message(self._w, header, payload)
        except (BrokenPipeError, ConnectionError, OSError, ValueError) as exc:
            raise self._lost(exc) from None

    def _recv(self) -> tuple[dict[str, Any], bytes]:
        try:
            return read_message(self._r)
        except ConnectionClosed as exc:
            raise self._lost(exc) from None
        except (ConnectionError, OSError) as exc:
            raise self._lost(exc) from None

    def _lost(self, exc: BaseException) -> BridgeError:
        detail = _last_error_line(_log_tail(self.log_path)) if self.log_path else str(exc)
        where = f" (worker log: {self.log_path})" if self.log_path else ""
        return BridgeError(
            "The oldphoto worker stopped unexpectedly; it may have run out of memory. "
            f"Try a smaller image or turn off HR. Last worker message: {detail}{where}"
        )

    def hello(self) -> dict[str, Any]:
        self._send({"op": "hello", "protocol": PROTOCOL})
        reply, _ = self._recv()
        if reply.get("type") != "hello" or reply.get("protocol") != PROTOCOL:
            raise BridgeError(
                f"The oldphoto worker speaks protocol {reply.get('protocol')!r}, this plug-in {PROTOCOL}. "
                "Run `oldphoto gimp install` again so that both come from the same oldphoto version."
            )
        self.info = reply
        return reply

    def status(self) -> dict[str, Any]:
        self._send({"op": "status"})
        return self._expect("status")

    def shutdown(self) -> None:
        self._send({"op": "shutdown"})
        self._expect("bye")

    def _expect(self, kind: str) -> dict[str, Any]:
        reply, _ = self._recv()
        if reply.get("type") == "error":
            raise WorkerError(str(reply.get("message")), str(reply.get("kind")))
        if reply.get("type") != kind:
            raise ProtocolError(f"expected a {kind!r} reply, got {reply.get('type')!r}")
        return reply

    def restore(
        self,
        rgb: bytes,
        width: int,
        height: int,
        *,
        scratches: str = "none",
        mask: bytes | None = None,
        hr: bool = False,
        faces: bool = True,
        strength: float = 1.0,
        face_strength: float = 1.0,
        scratch_threshold: float = SCRATCH_THRESHOLD,
        mask_grow: int = 0,
        want_mask: bool = False,
        colorize: str = "none",
        colorize_model: str = COLOR_MODELS[0],
        color_strength: float = 1.0,
        only_if_grey: bool = False,
        want_base: bool = False,
        progress: Progress | None = None,
    ) -> tuple[bytes, dict[str, Any]]:
        """Restore 8-bit RGB pixels; returns the result's RGB bytes (same size) and its info.

        With ``want_mask`` the info's ``"mask_pixels"`` holds the scratch mask used (0 / 255 bytes at
        the image's size), or None when no mask was used. With ``colorize="auto"`` the result is
        colourised (info ``"colorized"``; false, and ``"color_kept"`` true, when ``only_if_grey`` kept a
        colour layer's colour),
        and with ``want_base`` the info's ``"base_pixels"`` holds the uncoloured result (the image the
        colour stage got; None when not colourised).
        """
        if len(rgb) != width * height * 3:
            raise ValueError(f"RGB buffer has {len(rgb)} bytes, expected {width * height * 3}")
        if (scratches == "mask") != (mask is not None):
            raise ValueError("pass a mask exactly when scratches='mask'")
        if mask is not None and len(mask) != width * height:
            raise ValueError(f"mask has {len(mask)} bytes, expected {width * height}")
        header = {"op": "restore", "width": width, "height": height, "scratches": scratches, "hr": hr, "faces": faces,
                  "strength": strength, "face_strength": face_strength, "scratch_threshold": scratch_threshold,
                  "mask_grow": mask_grow, "want_mask": want_mask}
        if colorize != "none":
            header.update(colorize=colorize, colorize_model=colorize_model, color_strength=color_strength,
                          only_if_grey=only_if_grey, want_base=want_base)
        self._send(header, rgb + (mask or b""))
        reply, payload = self._await("result", progress)
        return self._split_result(reply, payload, width, height)

    def colorize(
        self,
        rgb: bytes,
        width: int,
        height: int,
        *,
        colorize_model: str = COLOR_MODELS[0],
        color_strength: float = 1.0,
        only_if_grey: bool = False,
        progress: Progress | None = None,
    ) -> tuple[bytes, dict[str, Any]]:
        """Colourise 8-bit RGB pixels without repairing them (``Restorer.colorize``); returns the
        result's RGB bytes and its info. A layer that has colour while ``only_if_grey`` is refused
        (:class:`WorkerError` with kind ``InputError``, the message says what to do)."""
        if len(rgb) != width * height * 3:
            raise ValueError(f"RGB buffer has {len(rgb)} bytes, expected {width * height * 3}")
        self._send({"op": "colorize", "width": width, "height": height, "colorize_model": colorize_model,
                    "color_strength": color_strength, "only_if_grey": only_if_grey}, rgb)
        reply, payload = self._await("result", progress)
        return self._split_result(reply, payload, width, height)

    @staticmethod
    def _split_result(reply: dict[str, Any], payload: bytes, width: int, height: int) -> tuple[bytes, dict[str, Any]]:
        """A ``result`` payload -> the RGB bytes; ``base_pixels`` and ``mask_pixels`` go into the info."""
        n = width * height * 3
        base = n if reply.get("base") else 0
        expected = n + base + (width * height if reply.get("mask") else 0)
        if len(payload) != expected:
            raise ProtocolError(f"result has {len(payload)} bytes, expected {expected}")
        reply["base_pixels"] = payload[n:n + base] if base else None
        reply["mask_pixels"] = payload[n + base:] if reply.get("mask") else None
        return payload[:n], reply

    def detect(
        self,
        rgb: bytes,
        width: int,
        height: int,
        *,
        scratch_threshold: float = SCRATCH_THRESHOLD,
        mask_grow: int = 0,
        progress: Progress | None = None,
    ) -> bytes:
        """The scratch mask the worker detects in 8-bit RGB pixels: one byte per pixel, 0 / 255."""
        if len(rgb) != width * height * 3:
            raise ValueError(f"RGB buffer has {len(rgb)} bytes, expected {width * height * 3}")
        self._send({"op": "detect", "width": width, "height": height, "scratch_threshold": scratch_threshold,
                    "mask_grow": mask_grow}, rgb)
        _reply, payload = self._await("mask", progress)
        if len(payload) != width * height:
            raise ProtocolError(f"mask has {len(payload)} bytes, expected {width * height}")
        return payload

    def _await(self, kind: str, progress: Progress | None) -> tuple[dict[str, Any], bytes]:
        """Progress messages until the ``kind`` reply (or an error / cancelled, raised)."""
        while True:
            reply, payload = self._recv()
            got = reply.get("type")
            if got == "progress":
                if progress is not None:
                    progress(float(reply.get("fraction", 0.0)), str(reply.get("message", "")))
            elif got == kind:
                return reply, payload
            elif got == "cancelled":
                raise WorkerCancelled()
            elif got == "error":
                raise WorkerError(str(reply.get("message")), str(reply.get("kind")))
            else:
                raise ProtocolError(f"unexpected reply {got!r}")

    def cancel(self) -> None:
        self._send({"op": "cancel"})


def _check_python(config: WorkerConfig, listening_on: str | None = None) -> None:
    if Path(config.python).is_file():
        return
    where = f"No oldphoto worker is listening on {listening_on}, and the" if listening_on else "The"
    raise BridgeError(
        f"The oldphoto worker was not found. {where} Python recorded at installation ({config.python}) "
        "does not exist. Install oldphoto (pip install oldphoto) and run `oldphoto gimp install` from "
        "that environment, or start a worker by hand with `oldphoto worker --socket PATH`."
    )


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """``oldphoto worker``: the process the GIMP plug-in (or any client of this protocol) talks to."""
    p = subparsers.add_parser(
        "worker",
        help="serve restore requests for the GIMP plug-in (bridge protocol)",
        description="Keep the networks loaded and serve restore requests over a UNIX socket or stdin/stdout.",
    )
    _add_arguments(p)
    p.set_defaults(func=run_worker)
    return p


def _add_arguments(p: argparse.ArgumentParser) -> None:
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--socket", metavar="PATH", help="listen on this UNIX socket (persistent worker)")
    where.add_argument("--stdio", action="store_true", help="serve one client on stdin/stdout")
    p.add_argument("--idle-timeout", type=float, default=0.0, metavar="S",
                   help="with --socket: exit after S seconds without clients (default 0 = never)")
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    p.add_argument("--weights-dir", default=None, help="folder of <component>.safetensors weights")


def run_worker(args: argparse.Namespace) -> int:
    from .bridge_worker import run_worker as run  # numpy and torch load here, never in GIMP

    return run(args)
