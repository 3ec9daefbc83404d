"""``oldphoto colorize INPUT... -o OUTDIR``: automatic colour (DDColor) for photos that need no repair.

The loop of ``oldphoto restore`` (:mod:`.photo_loop`): PNG outputs named after the inputs, written
atomically; a file that fails is reported on one line and the others go on; the exit status says
whether any failed. An input with transparency keeps its alpha channel (DDColor itself ignores it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .photo_loop import collect_inputs, exit_status, process_each
from .restore import add_color_options


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
    failed = process_each(
        files, args.output,
        lambda path, bar: restorer.colorize(
            path, colorize_model=args.colorize_model, color_strength=args.color_strength, progress=bar
        ),
        quiet=args.quiet,
        keep_alpha=True,
        oom_hint="try a smaller photo, --colorize-model tiny or --device cuda",
    )
    return exit_status(failed + len(errors), len(files) + len(errors))
