"""The oldphoto worker: serves bridge requests (:mod:`.protocol`) with one loaded :class:`Restorer`.

Why separate from the client: the client is copied into the GIMP and Krita plug-ins and must stay
standard-library only; this is the server side, which needs numpy and the pipeline and runs only in
the oldphoto environment (``oldphoto worker`` or ``python -m oldphoto.bridge_worker``, see :mod:`.cli`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import queue
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, NamedTuple

import numpy as np

from .. import __version__ as version
from ..errors import Cancelled, InputError, OldPhotoError
from .protocol import (
    ADJUSTMENTS,
    COLORIZE,
    DETECT_ADJUSTMENTS,
    EXISTING_COLOR,
    PROTOCOL,
    SCRATCHES,
    BridgeError,
    ConnectionClosed,
    ensure_socket_dir,
    read_message,
    write_message,
)

# -- requests ---------------------------------------------------------------------------------------


class _Stop(Exception):
    pass


class _Plan(NamedTuple):
    """A checked ``restore`` / ``colorize`` / ``detect`` request, ready to run as the one job."""

    job: dict[str, Any]
    """What the job is (``status``'s ``last_job`` and the log line): ``width``, ``height`` and its options."""
    work: Callable[[Callable[[float, str], None]], tuple[dict[str, Any], bytes]]
    """``work(progress)`` -> the reply's header and payload."""
    hr: bool
    """Whether the HR models run (an out-of-memory message then suggests turning HR off)."""


class Worker:
    """Serves restore requests with one Restorer; requests from several connections run one at a time."""

    def __init__(self, restorer: Any) -> None:
        self.restorer = restorer
        self._job_lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self.stats: dict[str, Any] = {"done": 0, "failed": 0, "cancelled": 0, "busy": False, "last_job": None}
        self.stop = threading.Event()
        self.last_activity = time.monotonic()
        self.active = 0

    def _count(self, key: str) -> None:
        with self._stats_lock:
            self.stats[key] += 1

    def handle(self, rfile: IO[bytes], wfile: IO[bytes]) -> None:
        """Serve one connection until it closes. A reader thread owns ``rfile`` so that a ``cancel``
        (or the client vanishing) is seen while a restore runs."""
        inbox: queue.Queue[tuple[dict[str, Any], bytes] | None] = queue.Queue()
        current: dict[str, threading.Event] = {}
        write_lock = threading.Lock()
        with self._stats_lock:
            self.active += 1

        def reader() -> None:
            try:
                while True:
                    msg, payload = read_message(rfile)
                    if msg.get("op") == "cancel":
                        ev = current.get("cancel")
                        if ev is not None:
                            ev.set()
                        continue
                    inbox.put((msg, payload))
            except BridgeError as exc:
                if not isinstance(exc, ConnectionClosed):
                    _log(f"dropping a connection: {exc}")
            except (OSError, ValueError):
                pass
            ev = current.get("cancel")
            if ev is not None:
                ev.set()  # the client went away: stop its job
            inbox.put(None)

        def send(header: dict[str, Any], payload: bytes = b"") -> None:
            with write_lock:
                write_message(wfile, header, payload)

        threading.Thread(target=reader, daemon=True, name="oldphoto-bridge-reader").start()
        try:
            while True:
                item = inbox.get()
                if item is None:
                    return
                self.last_activity = time.monotonic()
                msg, payload = item
                try:
                    self._dispatch(msg, payload, send, current)
                except _Stop:
                    self.stop.set()
                    return
                except (BrokenPipeError, ConnectionError, OSError, ValueError):
                    return  # the client is gone
                finally:
                    self.last_activity = time.monotonic()
        finally:
            with self._stats_lock:
                self.active -= 1

    def _dispatch(self, msg: dict[str, Any], payload: bytes, send: Callable, current: dict) -> None:
        op = msg.get("op")
        if op == "hello":
            send({"type": "hello", "protocol": PROTOCOL, "version": version, "python": sys.executable,
                  "pid": os.getpid()})
        elif op == "status":
            with self._stats_lock:
                send({"type": "status", **self.stats})
        elif op == "shutdown":
            send({"type": "bye"})
            raise _Stop()
        elif op in ("restore", "detect", "colorize"):
            cancel = threading.Event()
            current["cancel"] = cancel
            read = {"restore": self._restore, "detect": self._detect, "colorize": self._colorize}[op]
            try:
                try:
                    plan = read(msg, payload, cancel)
                except (KeyError, TypeError, ValueError) as exc:
                    return self._refuse(send, "ProtocolError", f"bad {op} request: {exc}")
                except InputError as exc:
                    return self._refuse(send, "InputError", str(exc))
                self._job(op, plan, send, cancel)
            finally:
                current.pop("cancel", None)
        else:
            send({"type": "error", "kind": "ProtocolError", "message": f"unknown request {op!r}"})

    # Each request's plan: read and check the request (a KeyError, TypeError or ValueError is a
    # malformed request, an InputError a bad value; _dispatch answers both), then the work to run as
    # the job. Checking happens before the job so that a bad request never waits for another's job.

    def _restore(self, msg: dict[str, Any], payload: bytes, cancel: threading.Event) -> _Plan:
        w, h = int(msg["width"]), int(msg["height"])
        scratches = msg.get("scratches", "none")
        hr, faces = bool(msg.get("hr", False)), bool(msg.get("faces", True))
        adjust = _adjustments(msg, *ADJUSTMENTS)
        want_mask, want_base = bool(msg.get("want_mask", False)), bool(msg.get("want_base", False))
        color, grey_only = _color_options(msg)
        if scratches not in SCRATCHES:
            raise InputError(f"scratches must be none, auto or mask, not {scratches!r}")
        mask_n = w * h if scratches == "mask" else 0
        guide = _Guidance(msg, w, h, color)
        n = _check_pixels(w, h, payload, mask_n + guide.size)

        def work(progress: Callable[[float, str], None]) -> tuple[dict[str, Any], bytes]:
            rgb = _rgb(payload, w, h)
            mask = np.frombuffer(payload, np.uint8, count=mask_n, offset=n).reshape(h, w) if mask_n else None
            keep, notes = _keep_existing_color(rgb, color, grey_only)
            color_kw = {} if keep else guide.keywords(payload, n + mask_n)
            res = self.restorer.restore(
                rgb, scratches="auto" if scratches == "auto" else "none", mask=mask, hr=hr, faces=faces,
                progress=progress, cancel=cancel, **adjust, **color_kw,
            )
            base = getattr(res, "uncolored", None) if want_base else None  # the image the colour stage got
            used = getattr(res, "mask", None)
            extra = _mask_bytes(used, w, h) if want_mask and used is not None else b""
            header, out = _result(res, w, h, base=base, extra=extra, notes=notes)
            return {**header, "color_kept": keep}, out

        job = {"width": w, "height": h, "scratches": scratches, "hr": hr, "faces": faces, **adjust, **color}
        return _Plan(job, work, hr)

    def _colorize(self, msg: dict[str, Any], payload: bytes, cancel: threading.Event) -> _Plan:
        w, h = int(msg["width"]), int(msg["height"])
        color, grey_only = _color_options({**msg, "colorize": msg.get("colorize") or "auto"})
        if not color:
            raise InputError("colorize must be auto, reference or points for a colorize request")
        guide = _Guidance(msg, w, h, color)
        n = _check_pixels(w, h, payload, guide.size)

        def work(progress: Callable[[float, str], None]) -> tuple[dict[str, Any], bytes]:
            rgb = _rgb(payload, w, h)
            if _keep_existing_color(rgb, color, grey_only)[0]:
                raise InputError("The layer already has colour, so it was not colourised. To replace its colour "
                                 "with predicted colour, choose 'Replace the existing colour' and run again.")
            color_kw = guide.keywords(payload, n)
            return _result(self.restorer.colorize(rgb, progress=progress, cancel=cancel, **color_kw), w, h)

        return _Plan({"width": w, "height": h, "scratches": "colorize", **color}, work, False)

    def _detect(self, msg: dict[str, Any], payload: bytes, cancel: threading.Event) -> _Plan:
        w, h = int(msg["width"]), int(msg["height"])
        adjust = _adjustments(msg, *DETECT_ADJUSTMENTS)
        _check_pixels(w, h, payload, 0)

        def work(progress: Callable[[float, str], None]) -> tuple[dict[str, Any], bytes]:
            mask = self.restorer.detect_scratches(_rgb(payload, w, h), progress=progress, **adjust)
            return {"type": "mask", "width": w, "height": h}, _mask_bytes(mask, w, h)

        return _Plan({"width": w, "height": h, "scratches": "detect", **adjust}, work, False)

    def _refuse(self, send: Callable, kind: str, message: str) -> None:
        send({"type": "error", "kind": kind, "message": message})
        self._count("failed")

    def _job(self, op: str, plan: _Plan, send: Callable, cancel: threading.Event) -> None:
        """Run the plan's ``work(progress)`` as the one job at a time: progress, cancel and every failure
        as messages."""
        t0 = time.perf_counter()
        job, work, hr = plan
        w, h = job["width"], job["height"]
        with self._stats_lock:
            self.stats["last_job"] = job
        if not self._job_lock.acquire(blocking=False):
            send({"type": "progress", "fraction": 0.0, "message": "Waiting for another restore to finish"})
            self._job_lock.acquire()
        try:
            with self._stats_lock:
                self.stats["busy"] = True

            def progress(fraction: float, message: str) -> None:
                if cancel.is_set():
                    raise Cancelled()
                try:
                    send({"type": "progress", "fraction": float(fraction), "message": message})
                except (OSError, ValueError):
                    cancel.set()
                    raise Cancelled() from None

            try:
                header, out = work(progress)
            except Cancelled:
                self._count("cancelled")
                _log(f"{op} {w}x{h} cancelled after {time.perf_counter() - t0:.1f} s")
                with contextlib.suppress(OSError, ValueError):
                    send({"type": "cancelled"})
                return
            except Exception as exc:  # every failure becomes a message for the user
                self._count("failed")
                kind, message = _friendly(exc, w, h, hr)
                _log(f"{op} {w}x{h} failed: {kind}: {message}")
                if kind == "InternalError":
                    traceback.print_exc(file=sys.stderr)
                with contextlib.suppress(OSError, ValueError):
                    send({"type": "error", "kind": kind, "message": message})
                return
            self._count("done")
            send(header, out)
            options = " ".join(f"{k}={int(v) if isinstance(v, bool) else v}" for k, v in job.items()
                               if k not in ("width", "height"))
            _log(f"{op} {w}x{h} {options}: {time.perf_counter() - t0:.2f} s")
        finally:
            with self._stats_lock:
                self.stats["busy"] = False
            self._job_lock.release()


def _adjustments(msg: dict[str, Any], *names: str) -> dict[str, Any]:
    """The adjustment keywords a request carries (absent ones keep the Restorer's defaults).

    Only the types are checked here; ``Restorer`` checks the ranges and says which they are.
    """
    out: dict[str, Any] = {}
    for name in names:
        if name in msg:
            value = msg[name]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InputError(f"{name} must be a number, not {value!r}")
            out[name] = value
    return out


def _color_options(msg: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The colour keywords of ``Restorer.restore`` a request carries ({} for no colour), and whether
    only a grey layer may be colourised (``existing_color="grey-only"``).

    The names are checked here; ``Restorer`` checks the model and the strength's range and says which
    values are allowed.
    """
    colorize, existing = msg.get("colorize", "none"), msg.get("existing_color", EXISTING_COLOR[0])
    if colorize not in COLORIZE:
        raise InputError(f"colorize must be one of {', '.join(COLORIZE)}, not {colorize!r}")
    if existing not in EXISTING_COLOR:
        raise InputError(f"existing_color must be one of {', '.join(EXISTING_COLOR)}, not {existing!r}")
    if colorize == "none":
        return {}, False
    model = msg.get("colorize_model", "modelscope")
    if not isinstance(model, str):
        raise InputError(f"colorize_model must be a name, not {model!r}")
    return {"colorize": colorize, "colorize_model": model, **_adjustments(msg, "color_strength")}, \
        existing == "grey-only"


class _Guidance:
    """The colour guidance of a ``restore`` or ``colorize`` request (protocol 4): the reference photo
    and the colour points, read back from what the client's ``_guidance`` packed.

    Why one reader for both requests: they carry these fields the same way, so they must turn them
    into the same ``Restorer`` keywords. Sizes are checked when the request arrives (a bad one is
    refused before it waits for a job); the keywords are made in the job, where decoding a points
    layer runs and the library's own checks of ``reference=`` / ``hints=`` reach the user.
    """

    def __init__(self, msg: dict[str, Any], w: int, h: int, color: dict[str, Any]) -> None:
        self.color = color
        self.hints = msg.get("hints") or []
        if not isinstance(self.hints, list):
            raise InputError("hints must be a list of [x, y, '#rrggbb'] colour points")
        self.layer_n = w * h * 4 if msg.get("points_layer") else 0
        self.w, self.h = w, h
        ref = msg.get("reference")
        self.ref_n, self.ref_size = 0, None
        if ref is not None:
            self.ref_n = int(ref["bytes"])
            if "width" in ref:
                self.ref_size = (int(ref["width"]), int(ref["height"]))
                if self.ref_n != self.ref_size[0] * self.ref_size[1] * 3 or self.ref_n <= 0:
                    raise InputError(f"the reference has {self.ref_n} bytes, not RGB of {self.ref_size[0]}x"
                                     f"{self.ref_size[1]}")
        if self.ref_n < 0:
            raise InputError("the reference's size is negative")

    @property
    def size(self) -> int:
        """Bytes the guidance takes in the payload (after the pixels and the mask)."""
        return self.layer_n + self.ref_n

    def keywords(self, payload: bytes, offset: int) -> dict[str, Any]:
        """Every colour keyword of ``Restorer.restore`` / ``Restorer.colorize`` (the request's colour
        options, then ``reference=`` / ``hints=``; {} without colour), with the guidance read from
        ``payload`` at ``offset``. The library checks the values and names any problem."""
        if not self.color:
            return {}
        colorize = self.color["colorize"]
        out: dict[str, Any] = dict(self.color)
        if colorize == "points":
            hints = list(self.hints)
            if self.layer_n:
                from ..stages.points_layer import points_from_layer

                layer = np.frombuffer(payload, np.uint8, count=self.layer_n, offset=offset).reshape(self.h, self.w, 4)
                hints += points_from_layer(layer)
            out["hints"] = hints
        if colorize == "reference" and self.ref_n:
            start = offset + self.layer_n
            data = payload[start:start + self.ref_n]
            if self.ref_size is not None:
                rw, rh = self.ref_size
                out["reference"] = np.frombuffer(data, np.uint8).reshape(rh, rw, 3)
            else:
                out["reference"] = bytes(data)
        return out


def _keep_existing_color(rgb: np.ndarray, color: dict[str, Any], grey_only: bool) -> tuple[bool, list[str]]:
    """Whether a colour request is dropped because the layer has colour of its own and only grey ones
    may be colourised (``oldphoto.stages.colorize.is_grey`` decides), and the note that says so."""
    if not color or not grey_only:
        return False, []
    from ..stages.colorize import is_grey

    if is_grey(rgb):
        return False, []
    return True, ["The layer already has colour, so it was not colourised; choose 'Replace the existing colour' "
                  "to replace its colour with predicted colour."]


def _result(res: Any, w: int, h: int, *, base: Any = None, extra: bytes = b"",
            notes: list[str] | None = None) -> tuple[dict[str, Any], bytes]:
    """A ``RestoreResult`` as a ``result`` message: header, then RGB (+ ``base``, an image, as RGB) (+
    ``extra``, the mask)."""
    parts = []
    for image in [res.image] + ([base] if base is not None else []):
        arr = np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))
        if arr.shape != (h, w, 3):
            raise OldPhotoError(f"internal error: the result is {arr.shape[1]}x{arr.shape[0]}, not {w}x{h}")
        parts.append(arr.tobytes())
    timings = {k: round(float(v), 3) for k, v in getattr(res, "timings", {}).items()}
    header = {"type": "result", "width": w, "height": h, "faces": len(getattr(res, "faces", []) or []),
              "mask_source": getattr(res, "mask_source", "none"), "timings": timings,
              "notes": [*(notes or []), *getattr(res, "notes", [])], "mask": bool(extra),
              "colorized": getattr(res, "color", None) is not None, "base": base is not None}
    return header, b"".join([*parts, extra])


def _rgb(payload: bytes, w: int, h: int) -> np.ndarray:
    """The image of a request whose payload ``_check_pixels`` accepted: its first ``w*h*3`` bytes."""
    return np.frombuffer(payload, np.uint8, count=w * h * 3).reshape(h, w, 3)


def _check_pixels(w: int, h: int, payload: bytes, extra: int) -> int:
    """Bytes of RGB in a request's payload, after checking its size (``extra``: what follows the
    pixels: the mask, the points layer, the reference)."""
    if w <= 0 or h <= 0:
        raise InputError(f"the image is empty ({w}x{h})")
    n = w * h * 3
    if len(payload) != n + extra:
        raise InputError(f"got {len(payload)} bytes of pixels for a {w}x{h} request, expected {n + extra}")
    return n


def _mask_bytes(mask: np.ndarray, w: int, h: int) -> bytes:
    """A bool mask as one 0 / 255 byte per pixel at the request's size (``imageio.resize_mask``)."""
    from ..imageio import resize_mask

    m = np.asarray(mask, dtype=bool)
    if m.shape != (h, w):
        m = resize_mask(m, (w, h))
    return np.where(m, 255, 0).astype(np.uint8).tobytes()


def _friendly(exc: BaseException, w: int, h: int, hr: bool) -> tuple[str, str]:
    """Worker-side exception -> (kind, message for the user)."""
    out_of_memory = isinstance(exc, MemoryError) or "out of memory" in str(exc).lower() or (
        type(exc).__name__ == "OutOfMemoryError"
    )
    if out_of_memory:
        hint = "turn off HR, " if hr else ""
        return "OutOfMemory", (
            f"Not enough memory to restore a {w}x{h} image. Try a smaller image, {hint}"
            "or close other programs (on a GPU: use the CPU with device 'cpu')."
        )
    if isinstance(exc, OldPhotoError):
        return type(exc).__name__, str(exc)
    return "InternalError", (
        f"The oldphoto worker failed unexpectedly ({type(exc).__name__}: {exc}). "
        "Please report this with the worker log."
    )


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] oldphoto worker {os.getpid()}: {message}", file=sys.stderr, flush=True)


# -- serving --------------------------------------------------------------------------------------


def serve_stdio(worker: Worker) -> None:
    """One connection on stdin/stdout. Stray writes to stdout (prints, C libraries) would corrupt the
    stream, so the protocol gets a private copy of fd 1 and fd 1 itself is pointed at stderr."""
    proto_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    worker.handle(sys.stdin.buffer, proto_out)


def serve_socket(worker: Worker, path: str, idle_timeout: float = 0.0) -> int:
    """Accept clients on a UNIX socket until shut down or idle for ``idle_timeout`` s (0 = never)."""
    import fcntl  # POSIX only, like AF_UNIX itself

    sock_path = Path(path)
    ensure_socket_dir(path)
    lock = open(str(sock_path) + ".lock", "w")  # held for the worker's lifetime
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        _log(f"another worker already serves {path}")
        return 0
    with contextlib.suppress(FileNotFoundError):
        sock_path.unlink()  # stale: its owner no longer holds the lock
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o077)
    try:
        srv.bind(path)
    finally:
        os.umask(old_umask)
    srv.listen(8)
    srv.settimeout(1.0)
    _log(f"listening on {path} (idle timeout {idle_timeout:g} s)")

    def serve(conn: socket.socket) -> None:
        with conn:
            rfile, wfile = conn.makefile("rb"), conn.makefile("wb")
            try:
                worker.handle(rfile, wfile)
            finally:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)

    try:
        while not worker.stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                idle = time.monotonic() - worker.last_activity
                if idle_timeout > 0 and worker.active == 0 and idle > idle_timeout:
                    _log(f"idle for {idle:.0f} s, exiting")
                    break
                continue
            conn.settimeout(None)
            worker.last_activity = time.monotonic()
            threading.Thread(target=serve, args=(conn,), daemon=True, name="oldphoto-bridge-conn").start()
    finally:
        srv.close()
        with contextlib.suppress(FileNotFoundError):
            if sock_path.exists():
                sock_path.unlink()
        lock.close()
    return 0


def run_worker(args: argparse.Namespace) -> int:
    try:
        from ..memory import keep_freed_memory_for_reuse
        from ..pipeline import Restorer  # torch is imported here, not at module load

        keep_freed_memory_for_reuse(trim_after_jobs=True)  # long-lived: memory goes back after each photo
        restorer = Restorer(device=args.device, weights_dir=args.weights_dir)
    except OldPhotoError as exc:
        print(f"oldphoto worker: {exc}", file=sys.stderr, flush=True)
        return 2
    except ImportError as exc:
        print(f"oldphoto worker: this environment cannot run oldphoto ({exc}); "
              "reinstall it with `pip install oldphoto`.", file=sys.stderr, flush=True)
        return 2
    worker = Worker(restorer)
    if args.stdio:
        serve_stdio(worker)
        return 0
    # SIGTERM (logout, `kill`) ends the accept loop normally, so the socket file is removed
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        return serve_socket(worker, args.socket, args.idle_timeout)
    except OldPhotoError as exc:
        print(f"oldphoto worker: {exc}", file=sys.stderr, flush=True)
        return 2
    except OSError as exc:
        print(f"oldphoto worker: cannot listen on {args.socket} ({exc})", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        return 0
