"""Restoring one photo of a batch into its PNG and its manifest record; the same code on every engine."""

from __future__ import annotations

import io
import socket
import time

from ..errors import OldPhotoError
from . import files
from .plan import Job, record


def weights_identity(restorer, restore_kwargs: dict) -> dict[str, str]:
    """sha256 of each weights file this run's options use, as resolved for ``restorer``.

    Resolving here (before any photo) also turns missing weights into one clear error up front.
    """
    from ..weights import file_sha256, resolve

    comps = restorer.components_for(
        scratches=restore_kwargs.get("scratches") == "auto" or restore_kwargs.get("mask") is not None,
        hr=bool(restore_kwargs.get("hr")),
        faces=bool(restore_kwargs.get("faces", True)),
        colorize=restore_kwargs.get("colorize", "none"),
        colorize_model=restore_kwargs.get("colorize_model", "modelscope"),
    )
    return {c: file_sha256(resolve(c, weights_dir=restorer.weights_dir)) for c in sorted(set(comps))}


def restore_job(restorer, job: Job, restore_kwargs: dict, options: dict, weights: dict) -> dict:
    """Restore ``job.src`` into ``job.dst`` (atomic write) and return its manifest record.

    Any failure of this photo becomes an ``error`` record instead of ending the job: user-facing
    errors keep their message, anything else is named as the bug it is.
    """
    t0 = time.perf_counter()
    status, message = "ok", ""
    try:
        src = job.src if not files.is_url(job.src) else files.read_bytes(job.src)
        from .guidance import for_photo

        kwargs = {k: v for k, v in restore_kwargs.items() if k != "guidance"}
        kwargs.update(for_photo(restore_kwargs.get("guidance"), restore_kwargs.get("colorize"), job.input))
        res = restorer.restore(src, **kwargs)
        buf = io.BytesIO()
        res.image.save(buf, format="PNG")
        files.write_atomic(job.dst, buf.getvalue())
        message = "; ".join(res.notes)
    except OldPhotoError as exc:
        status, message = "error", str(exc)
    except MemoryError:
        status, message = "error", "out of memory; try a smaller photo or --device cuda"
    except OSError as exc:
        status, message = "error", f"{job.input}: {exc}"
    except Exception as exc:  # one photo hitting a bug must not cost the rest of an archive
        status, message = "error", f"{job.input}: unexpected error (please report it): {type(exc).__name__}: {exc}"
    if status == "error" and job.input not in message and job.src not in message:
        message = f"{job.input}: {message}"
    return record(job, options, weights, status, message, time.perf_counter() - t0, socket.gethostname())

