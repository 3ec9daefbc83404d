"""The per-file loop of the photo commands (``oldphoto restore``, ``oldphoto colorize``).

Both take files and folders, write ``<stem>.png`` into an output folder and share every convention
around the one call that differs: inputs found or reported (never skipped silently), a progress
bar per photo, PNGs written atomically (temp file + rename, the temp file removed whatever happens),
the input's transparency kept where asked, a failure reported on one line while the other photos
go on, notes printed, and an exit status that says whether anything failed. Kept in one place so
that the two commands cannot drift apart (the restore loop once left ``.part`` files behind).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm", ".pbm"}

Progress = Callable[[float, str], None]


def collect_inputs(inputs: list[Path]) -> tuple[list[Path], list[str]]:
    """Expand folders (sorted, images by suffix); missing paths are errors, not silent skips."""
    files: list[Path] = []
    errors: list[str] = []
    for path in inputs:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                errors.append(f"{path}: folder contains no image files")
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            errors.append(f"{path}: file not found")
    return files, errors


def output_name(path: Path, taken: set[str]) -> str:
    """``<stem>.png`` (``x.jpeg`` -> ``x.png``, not the official ``x..png``); clashes get a suffix."""
    name = f"{path.stem}.png"
    k = 2
    while name in taken:
        name = f"{path.stem}_{k}.png"
        k += 1
    taken.add(name)
    return name


class Bar:
    """A one-line text progress bar on stderr (no extra dependency); plain stage lines when not a terminal."""

    def __init__(self, label: str, enabled: bool) -> None:
        self.label = label
        self.enabled = enabled and sys.stderr.isatty()
        self.plain = enabled and not self.enabled
        self.last_msg = ""

    def __call__(self, frac: float, msg: str) -> None:
        if self.enabled:
            n = int(frac * 30)
            sys.stderr.write(f"\r{self.label} [{'#' * n}{'.' * (30 - n)}] {frac:4.0%} {msg:<28}")
            sys.stderr.flush()
        elif self.plain and msg.split(":")[0] != self.last_msg.split(":")[0]:  # stages, not every layer
            print(f"  {self.label}: {msg}", file=sys.stderr)
        self.last_msg = msg

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


def input_alpha(path: Path):
    """The input's alpha channel, oriented like the photo (EXIF), or None (unreadable files included:
    the restorer reports those itself)."""
    from PIL import ImageOps

    from ..imageio import open_image

    try:
        img = open_image(path)
        try:
            img = ImageOps.exif_transpose(img)
        except Exception:
            pass
        if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
            return img.convert("RGBA").getchannel("A")
    except Exception:
        return None
    return None


def save_png(image, out: Path) -> None:
    """``image`` as ``out`` (PNG) via a hidden temp file beside it: never a half-written output."""
    tmp = out.with_name(f".{out.name}.part")
    try:
        image.save(tmp, format="PNG")
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)


def process_each(
    files: list[Path],
    output: Path,
    run_one: Callable[[Path, Progress], Any],
    *,
    quiet: bool,
    keep_alpha: bool,
    oom_hint: str,
    after_write: Callable[[Any, Path], None] | None = None,
    describe: Callable[[Any], str] = lambda res: "",
) -> int:
    """``run_one(path, progress)`` for every file, its ``.image`` saved as ``output/<stem>.png``.

    ``after_write(result, out)`` writes companions (e.g. the mask); ``describe(result)`` adds to the
    "in -> out (time)" line. Returns how many photos failed (each reported on one line).
    """
    from ..errors import OldPhotoError, OutputError

    failed = 0
    taken: set[str] = set()
    for i, path in enumerate(files, 1):
        bar = Bar(f"[{i}/{len(files)}] {path.name}", not quiet)
        t0 = time.perf_counter()
        try:
            res = run_one(path, bar)
            image = res.image
            if keep_alpha:
                alpha = input_alpha(path)
                if alpha is not None and alpha.size == image.size:
                    image = image.copy()
                    image.putalpha(alpha)
            out = output / output_name(path, taken)
            try:
                save_png(image, out)
                if after_write is not None:
                    after_write(res, out)
            except OSError as exc:  # disk full, folder removed, permissions: the photo failed, not the run
                raise OutputError(f"{path}: cannot write {out}: {exc.strerror or exc}") from exc
        except OldPhotoError as exc:
            msg = str(exc)
            msg = msg if str(path) in msg else f"{path}: {msg}"
        except MemoryError:
            msg = f"{path}: out of memory; {oom_hint}"
        else:
            bar.close()
            for note in res.notes:  # e.g. faces left out: worth a line even with --quiet
                print(f"note: {path}: {note}", file=sys.stderr)
            if not quiet:
                print(f"{path} -> {out} ({time.perf_counter() - t0:.1f} s{describe(res)})")
            continue
        bar.close()
        failed += 1
        print(f"error: {msg}", file=sys.stderr)
    return failed


def exit_status(failed: int, total: int) -> int:
    """1 (with a summary line) when anything failed, else 0."""
    if failed:
        print(f"{failed} of {total} input(s) failed", file=sys.stderr)
        return 1
    return 0
