"""``oldphoto restore INPUT... -o OUTDIR``: restoration of files and folders with per-file error reporting.

A file that cannot be restored is reported on one line; the others are processed and the exit
status says whether any failed (the official scripts skip such files silently). The loop and its
conventions are :mod:`.photo_loop`'s, shared with ``oldphoto colorize``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..stages.adjust import MASK_GROW_MAX, SCRATCH_THRESHOLD  # numpy and Pillow only: --help stays fast
from .photo_loop import collect_inputs, exit_status, process_each, save_png

COLOR_MODELS = ("modelscope", "paper", "artistic", "tiny")  # oldphoto.stages.colorize.MODELS (OpenCV-free here)



def add_parser(sub) -> None:
    p = sub.add_parser(
        "restore",
        help="restore photos (files or folders) into an output folder",
        description="Restore old photos. Outputs are PNG files named after the inputs.",
    )
    p.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="image files or folders of images")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="OUTDIR", help="output folder (created)")
    add_restore_options(p)
    p.add_argument("--mask", type=Path, help="scratch mask (white = damage) used instead of detection; one input only")
    p.add_argument("--save-mask", action="store_true", help="also write the scratch mask used (<name>_mask.png)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    from .colour import add_guidance_options

    add_guidance_options(p)
    p.set_defaults(func=run)


def add_restore_options(p: argparse.ArgumentParser) -> None:
    """The options of a restoration, shared by every command that restores photos (restore, batch)."""
    p.add_argument(
        "--scratches",
        choices=["none", "auto"],
        default="none",
        help="none: unstructured degradation only (default); auto: detect and repair scratches",
    )
    p.add_argument("--hr", action="store_true", help="high-resolution scratch model and 512 px faces")
    p.add_argument("--faces", dest="faces", action="store_true", default=True, help="enhance faces (default)")
    p.add_argument("--no-faces", dest="faces", action="store_false", help="skip face enhancement")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    p.add_argument("--weights-dir", type=Path, help="folder of <component>.safetensors files (no network access)")
    p.add_argument(
        "--exact-convs", action="store_true",
        help="CPU: use the direct convolution algorithm instead of the faster Winograd one (for bit-level comparisons)",
    )
    p.add_argument(
        "--half", action="store_true",
        help="float16 for the face generators, the quality mapping and the decoders (meant for CUDA: less memory; "
             "outputs move by a few levels in quality mode; slower on the CPU)",
    )
    adjust = p.add_argument_group("adjustments (the defaults give the official result)")
    adjust.add_argument(
        "--strength", type=float, default=1.0, metavar="S",
        help="0..1, share of the global restoration kept (0 = the input, 1 = full; default 1); "
             "lower it when the restoration looks too smooth or painted",
    )
    adjust.add_argument(
        "--face-strength", type=float, default=1.0, metavar="S",
        help="0..1, how much of each enhanced face is blended in (default 1); lower it when faces look wrong",
    )
    adjust.add_argument(
        "--scratch-threshold", type=float, default=SCRATCH_THRESHOLD, metavar="P",
        help=f"0..1, detection probability from which a pixel is a scratch (default {SCRATCH_THRESHOLD:g}); "
             "lower finds more damage, higher spares fence posts and other thin lines",
    )
    adjust.add_argument(
        "--mask-grow", type=int, default=0, metavar="PX",
        help=f"0..{MASK_GROW_MAX}, widen the detected or given scratch mask by this many pixels (default 0), "
             "for scratches whose edges stay visible",
    )
    colour = p.add_argument_group("colour (the last stage, after restoration; off by default)")
    colour.add_argument(
        "--colorize", nargs="?", const="auto", default="none", choices=("none", "auto", "reference", "points"),
        metavar="MODE",
        help="colourise the restored photo (a colour photo is recoloured from its lightness). MODE: auto (DDColor; "
             "the default when MODE is left out; first run downloads 0.9 GB, 'tiny' 0.2 GB), reference (after "
             "--reference, Deep Exemplar) or points (from --hint/--hints colour points, SIGGRAPH17; without points "
             "its own automatic colour)",
    )
    add_color_options(colour)


def add_color_options(p) -> None:
    """--colorize-model and --color-strength (restore, batch and colorize)."""
    p.add_argument(
        "--colorize-model", choices=COLOR_MODELS, default="modelscope",
        help="modelscope (default, natural colours), paper, artistic (more vivid) or tiny (4x fewer parameters, "
             "fastest on a CPU)",
    )
    p.add_argument(
        "--color-strength", type=float, default=1.0, metavar="S",
        help="0..1, how much of the predicted colour is applied (0 = grey, 1 = the model's colours; default 1)",
    )


def restorer_from_args(args: argparse.Namespace):
    """The :class:`~oldphoto.pipeline.Restorer` that the options of :func:`add_restore_options` ask for."""
    from ..pipeline import Restorer

    return Restorer(device=args.device, weights_dir=args.weights_dir, exact_convs=args.exact_convs, half=args.half)


def restore_options(args: argparse.Namespace) -> dict:
    """The ``Restorer.restore`` keyword arguments that the options of :func:`add_restore_options` ask for."""
    opts = {
        "scratches": args.scratches, "hr": args.hr, "faces": args.faces,
        "strength": args.strength, "face_strength": args.face_strength,
        "scratch_threshold": args.scratch_threshold, "mask_grow": args.mask_grow,
    }
    if args.colorize != "none":  # only then: batch manifests of runs without colour keep their options
        opts.update(colorize=args.colorize, colorize_model=args.colorize_model, color_strength=args.color_strength)
    return opts


def check_restore_options(args: argparse.Namespace) -> None:
    """Refuse out-of-range adjustments once, before any photo (an InputError naming the range)."""
    from ..stages.adjust import check_controls

    check_controls(args.strength, args.face_strength, args.scratch_threshold, args.mask_grow, args.color_strength)


def run(args: argparse.Namespace) -> int:
    from ..errors import OldPhotoError
    from ..memory import keep_freed_memory_for_reuse

    keep_freed_memory_for_reuse()  # a short-lived process: reuse freed layer outputs, fewer page faults
    if args.quiet:  # also the first run's download bars (Hub files and archive reads)
        from ..weights.progress import set_quiet

        set_quiet()

    files, errors = collect_inputs(args.inputs)
    for e in errors:
        print(f"error: {e}", file=sys.stderr)
    if args.mask is not None and len(files) != 1:
        print("error: --mask applies to exactly one input image", file=sys.stderr)
        return 2
    if not files:
        return 1
    from .colour import check_colour_args, colour_kwargs

    try:
        check_restore_options(args)
        check_colour_args(args)
        colour = colour_kwargs(args)
        args.output.mkdir(parents=True, exist_ok=True)
        restorer = restorer_from_args(args)
    except (OldPhotoError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    def save_mask(res, out: Path) -> None:
        if res.mask is not None:
            from ..stages.detect import mask_to_png

            save_png(mask_to_png(res.mask), out.with_name(f"{out.stem}_mask.png"))

    failed = process_each(
        files, args.output,
        lambda path, bar: restorer.restore(path, mask=args.mask, progress=bar, **restore_options(args), **colour),
        quiet=args.quiet,
        keep_alpha=args.colorize != "none",  # a colour result keeps the input's transparency, as `colorize` does
        oom_hint="try a smaller photo or --device cuda",
        after_write=save_mask if args.save_mask else None,
        describe=lambda res: f", {len(res.faces)} face(s)",
    )
    return exit_status(failed + len(errors), len(files) + len(errors))
