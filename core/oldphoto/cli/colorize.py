"""``oldphoto colorize INPUT... -o OUTDIR``: automatic colour (DDColor) for photos that need no repair.

Same conventions as ``oldphoto restore``: PNG outputs named after the inputs, written atomically; a
file that fails is reported on one line and the others go on; the exit status says whether any
failed. An input with transparency keeps its alpha channel (DDColor itself ignores it).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .restore import _Bar, add_color_options, collect_inputs, output_name


def add_parser(sub) -> None:
    p = sub.add_parser(
        "colorize",
        help="colourise photos automatically (DDColor), without restoring them",
        description="Colourise black-and-white photos with DDColor (a colour photo is recoloured from its "
                    "lightness). Outputs are PNG files named after the inputs. The first run downloads the model "
                    "(modelscope/paper/artistic 0.9 GB, tiny 0.2 GB).",
    )
    p.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="image files or folders of images")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="OUTDIR", help="output folder (created)")
    add_color_options(p)
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    p.add_argument("--weights-dir", type=Path, help="folder of <component>.safetensors files (no network access)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=run)


def _alpha(path: Path):
    """The input's alpha channel, oriented like the photo (EXIF), or None."""
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
    except Exception:  # the restorer reports unreadable files itself
        return None
    return None


def run(args: argparse.Namespace) -> int:
    from ..errors import OldPhotoError
    from ..memory import keep_freed_memory_for_reuse

    keep_freed_memory_for_reuse()
    if args.quiet:
        from ..weights.progress import set_quiet

        set_quiet()
    files, errors = collect_inputs(args.inputs)
    for e in errors:
        print(f"error: {e}", file=sys.stderr)
    if not files:
        return 1
    try:
        from ..pipeline import Restorer
        from ..stages.adjust import check_controls

        check_controls(color_strength=args.color_strength)
        args.output.mkdir(parents=True, exist_ok=True)
        restorer = Restorer(device=args.device, weights_dir=args.weights_dir)
    except (OldPhotoError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failed = len(errors)
    taken: set[str] = set()
    for i, path in enumerate(files, 1):
        bar = _Bar(f"[{i}/{len(files)}] {path.name}", not args.quiet)
        t0 = time.perf_counter()
        try:
            res = restorer.colorize(path, colorize_model=args.colorize_model, color_strength=args.color_strength,
                                    progress=bar)
            image = res.image
            alpha = _alpha(path)
            if alpha is not None and alpha.size == image.size:
                image = image.copy()
                image.putalpha(alpha)
            name = output_name(path, taken)
            out = args.output / name
            tmp = out.with_name(f".{name}.part")
            try:
                image.save(tmp, format="PNG")
                tmp.replace(out)
            finally:
                tmp.unlink(missing_ok=True)
        except OldPhotoError as exc:
            bar.close()
            failed += 1
            msg = str(exc)
            print(f"error: {msg if str(path) in msg else f'{path}: {msg}'}", file=sys.stderr)
            continue
        except MemoryError:
            bar.close()
            failed += 1
            print(f"error: {path}: out of memory; try a smaller photo, --colorize-model tiny or --device cuda",
                  file=sys.stderr)
            continue
        bar.close()
        for note in res.notes:
            print(f"note: {path}: {note}", file=sys.stderr)
        if not args.quiet:
            print(f"{path} -> {out} ({time.perf_counter() - t0:.1f} s)")
    if failed:
        print(f"{failed} of {len(files) + len(errors)} input(s) failed", file=sys.stderr)
    return 1 if failed else 0
