"""The bridge's client: finds or starts an oldphoto worker and sends it restore / detect requests.

Why standard library only: ``oldphoto gimp install`` and ``oldphoto krita install`` copy this
package (minus :mod:`.worker`) into the host's plug-in, whose Python has neither numpy nor oldphoto,
so both hosts run this same client. The worker side is :mod:`oldphoto.bridge.worker`.

Transports (same messages on both, see :mod:`.protocol`):

* ``socket`` (default where ``AF_UNIX`` exists): a persistent worker listens on a UNIX socket. The
  client connects; when nobody listens it starts ``python -m oldphoto.bridge_worker --socket PATH`` in the
  background and waits for it. The worker exits after ``idle_timeout`` seconds without clients. A
  worker can also be started by hand (``oldphoto worker --socket PATH``) for a host that cannot
  start programs (Flatpak, a chroot, a container sharing a folder).
* ``stdio`` (Windows, or ``"transport": "stdio"``): one worker per call, spoken to over its
  stdin/stdout; it exits at end of input.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from .protocol import (
    COLOR_OPTIONS,
    DETECT_ADJUSTMENTS,
    PROTOCOL,
    BridgeError,
    ConnectionClosed,
    ProtocolError,
    RestoreOptions,
    WorkerCancelled,
    WorkerError,
    ensure_socket_dir,
    read_message,
    write_message,
)

CONFIG_NAME = "oldphoto-worker.json"
"""The config file the install commands write next to the plug-in."""
START_TIMEOUT = 180.0
"""Seconds a starting worker may take (importing torch from a cold disk can take a minute)."""
WORKER_MODULE = "oldphoto.bridge_worker"
"""What ``python -m`` runs as the worker: a name every oldphoto version has, so that a plug-in and a
worker environment of different versions still meet and the ``hello`` check can name the mismatch."""
INSTALL_COMMAND = "oldphoto gimp install"
"""The command a message tells the user to run when no config says which host installed it."""

Progress = Callable[[float, str], None]


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
    install_command: str = INSTALL_COMMAND
    """The command that wrote this config (``oldphoto gimp install``, ``oldphoto krita install``):
    messages tell the user to run it again."""

    @classmethod
    def load(cls, path: str | os.PathLike, install_command: str = INSTALL_COMMAND) -> WorkerConfig:
        p = Path(path)
        fix = f"Run `{install_command}` from the environment where oldphoto is installed."
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise BridgeError(f"The oldphoto worker is not configured: {p} is missing. {fix}") from None
        except (OSError, ValueError) as exc:
            raise BridgeError(f"The oldphoto worker configuration {p} cannot be read ({exc}). {fix}") from None
        if not isinstance(data, dict) or not isinstance(data.get("python"), str):
            raise BridgeError(f"The oldphoto worker configuration {p} names no Python. {fix}")
        known = {f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data}
        return cls(**{"install_command": install_command, **known})

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
        cmd = [self.python, "-m", WORKER_MODULE, "--device", self.device]
        if self.weights_dir:
            cmd += ["--weights-dir", self.weights_dir]
        if stdio:
            return cmd + ["--stdio"]
        return cmd + ["--socket", self.socket_path(), "--idle-timeout", str(self.idle_timeout)]


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
        self.install_command = INSTALL_COMMAND

    # connection ------------------------------------------------------------------------------
    @classmethod
    def connect(
        cls, config: WorkerConfig, *, start: bool = True, status: Callable[[str], None] | None = None
    ) -> WorkerClient:
        client = cls._connect_socket(config, start, status) if config.uses_socket() else cls._spawn_stdio(config)
        client.install_command = config.install_command
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
                f"Run `{self.install_command}` again so that both come from the same oldphoto version."
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
        options: RestoreOptions | None = None,
        *,
        mask: bytes | None = None,
        want_mask: bool = False,
        want_base: bool = False,
        reference: bytes | None = None,
        reference_size: tuple[int, int] | None = None,
        points_layer: bytes | None = None,
        hints: list | None = None,
        progress: Progress | None = None,
        **controls: Any,
    ) -> tuple[bytes, dict[str, Any]]:
        """Restore 8-bit RGB pixels; returns the result's RGB bytes (same size) and its info.

        ``options`` holds the dialog's controls; keywords named like its fields (``scratches="auto"``,
        ``strength=0.5``, ...) override them, and any other keyword is a TypeError. With
        ``want_mask`` the info's ``"mask_pixels"`` holds the scratch mask used (0 / 255 bytes at the
        image's size), or None when no mask was used. With colour (``colorize="auto"``) the info's
        ``"colorized"`` says whether it was applied (``"color_kept"``: a colour layer kept its colour,
        ``existing_color="grey-only"``), and with ``want_base`` its ``"base_pixels"`` holds the
        uncoloured result (None when not colourised). ``reference``: an image file's bytes, or raw RGB
        u8 pixels when ``reference_size`` (width, height) is given (``colorize="reference"``);
        ``points_layer``: RGBA u8 at the image's size whose painted dots become colour points, and / or
        ``hints`` ``[(x, y, "#rrggbb"), ...]`` in the image's pixels (``colorize="points"``).
        """
        opts = _options(rgb, width, height, options, controls)
        if (opts.scratches == "mask") != (mask is not None):
            raise ValueError("pass a mask exactly when scratches='mask'")
        if mask is not None and len(mask) != width * height:
            raise ValueError(f"mask has {len(mask)} bytes, expected {width * height}")
        header = {"op": "restore", "width": width, "height": height, **opts.request(), "want_mask": want_mask,
                  "want_base": want_base}
        guide = _guidance(header, width, height, reference=reference, reference_size=reference_size,
                          points_layer=points_layer, hints=hints)
        return self._result(header, rgb + (mask or b"") + guide, width, height, progress)

    def colorize(
        self,
        rgb: bytes,
        width: int,
        height: int,
        options: RestoreOptions | None = None,
        *,
        reference: bytes | None = None,
        reference_size: tuple[int, int] | None = None,
        points_layer: bytes | None = None,
        hints: list | None = None,
        progress: Progress | None = None,
        **controls: Any,
    ) -> tuple[bytes, dict[str, Any]]:
        """Colourise 8-bit RGB pixels without repairing them (``Restorer.colorize``) with the colour
        fields of ``options`` (keywords override them); returns the result's RGB bytes and its info.
        A layer that has colour while ``existing_color="grey-only"`` is refused (:class:`WorkerError`
        of kind ``InputError``; the message says what to do)."""
        opts = _options(rgb, width, height, options, controls)
        header = {"op": "colorize", "width": width, "height": height, **opts.request(*COLOR_OPTIONS)}
        if opts.colorize == "none":  # a colorize request always colours: the dialog's "none" means automatic
            header["colorize"] = "auto"
        guide = _guidance(header, width, height, reference=reference, reference_size=reference_size,
                          points_layer=points_layer, hints=hints)
        return self._result(header, rgb + guide, width, height, progress)

    def _result(self, header: dict[str, Any], payload: bytes, width: int, height: int,
                progress: Progress | None) -> tuple[bytes, dict[str, Any]]:
        """Send a ``restore`` or ``colorize`` request and read its ``result``: the RGB bytes, with
        ``base_pixels`` and ``mask_pixels`` put into the info. One method for both requests because
        their replies are one message type, which the two must not come to read differently."""
        self._send(header, payload)
        reply, payload = self._await("result", progress)
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
        options: RestoreOptions | None = None,
        *,
        progress: Progress | None = None,
        **controls: Any,
    ) -> bytes:
        """The scratch mask the worker detects in 8-bit RGB pixels: one byte per pixel, 0 / 255.

        Of the options only ``scratch_threshold`` and ``mask_grow`` matter (overridable by keyword).
        """
        opts = _options(rgb, width, height, options, controls)
        header = {"op": "detect", "width": width, "height": height, **opts.request(*DETECT_ADJUSTMENTS)}
        self._send(header, rgb)
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
        f"does not exist. Install oldphoto (pip install oldphoto) and run `{config.install_command}` from "
        "that environment, or start a worker by hand with `oldphoto worker --socket PATH`."
    )


def _options(rgb: bytes, width: int, height: int, options: RestoreOptions | None,
             controls: dict[str, Any]) -> RestoreOptions:
    """A request's options: ``options`` (the dialog's) with the keyword ``controls`` laid over them
    (an unknown name is a TypeError), after checking that ``rgb`` holds the image's pixels. Shared by
    every image request so that they all take their options and pixels the same way."""
    opts = dataclasses.replace(options or RestoreOptions(), **controls)
    if len(rgb) != width * height * 3:
        raise ValueError(f"RGB buffer has {len(rgb)} bytes, expected {width * height * 3}")
    return opts


def _guidance(header: dict[str, Any], width: int, height: int, *, reference: bytes | None,
              reference_size: tuple[int, int] | None, points_layer: bytes | None, hints: list | None) -> bytes:
    """Add the colour guidance (reference photo, colour points) to a ``restore`` or ``colorize``
    request's header and return the bytes that follow the pixels (and mask) in its payload: the
    points layer, then the reference.

    Why one function for both requests: the worker reads these fields with one reader
    (:class:`oldphoto.bridge.worker._Guidance`), so the two requests must pack them the same way.
    """
    out = b""
    if hints is not None:
        header["hints"] = [list(p) for p in hints]
    if points_layer is not None:
        if len(points_layer) != width * height * 4:
            raise ValueError(f"points layer has {len(points_layer)} bytes, expected {width * height * 4} (RGBA)")
        header["points_layer"] = True
        out += points_layer
    if reference is not None:
        spec: dict[str, Any] = {"bytes": len(reference)}
        if reference_size is not None:
            rw, rh = reference_size
            if len(reference) != rw * rh * 3:
                raise ValueError(f"reference has {len(reference)} bytes, expected {rw * rh * 3} (RGB)")
            spec.update(width=rw, height=rh)
        header["reference"] = spec
        out += reference
    return out
