"""``oldphoto batch IN OUT``: restore a whole folder tree, resumably, on this machine or on Ray.

The command only turns options into the job's settings and prints the outcome; the job itself
(tree walk, manifest, resume decisions, atomic writes, engines) is :mod:`oldphoto.batch`.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys

from .restore import add_restore_options, check_restore_options, restore_options, restorer_from_args


def add_parser(sub) -> None:
    p = sub.add_parser(
        "batch",
        help="restore a folder tree into a mirrored tree of PNGs, resumably (locally or on a Ray cluster)",
        description=(
            "Restore every photo under IN into the same tree under OUT (one PNG each, named as by `restore`). "
            "OUT/oldphoto-batch.jsonl records each photo; running the command again skips the photos done "
            "with the same options and weights."
        ),
    )
    p.add_argument("input", metavar="IN", help="folder of photos (walked recursively); never modified")
    p.add_argument("output", metavar="OUT", help="output folder (created; may not overlap IN)")
    add_restore_options(p)
    from .colour import add_guidance_options

    add_guidance_options(p, batch=True)
    p.add_argument("--force", action="store_true", help="redo every photo, even those done in an earlier run")
    p.add_argument("--retry-errors", action="store_true", help="retry the photos that failed in an earlier run")
    p.add_argument("--manifest", metavar="PATH",
                   help="manifest file (default OUT/oldphoto-batch.jsonl; required when OUT is a URL)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local: this process (default); ray: a Ray Data pipeline (pip install 'oldphoto[ray]')")
    p.add_argument("--ray-address", metavar="ADDR",
                   help="Ray cluster to use (default: $RAY_ADDRESS, else a Ray started on this machine)")
    p.add_argument("--ray-actors", type=int, metavar="N",
                   help="actors, each holding the networks once (default: one per GPU, else one per CPU)")
    p.add_argument("--ray-cpus-per-actor", type=float, default=1.0, metavar="N",
                   help="CPUs each actor reserves on a cluster without GPUs (default 1)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..batch import files, manifest, runner
    from ..batch.work import weights_identity
    from ..errors import OldPhotoError

    # absolute: Ray workers do not share this process's working directory
    in_root, out_root = (p if files.is_url(p) else os.path.abspath(p) for p in (str(args.input), str(args.output)))
    if args.manifest:
        manifest_path = str(args.manifest)
    elif files.is_url(out_root):
        print("error: OUT is a URL; give a local --manifest PATH (the manifest is appended and fsynced)",
              file=sys.stderr)
        return 2
    else:
        manifest_path = files.join(out_root, manifest.NAME)
    from .colour import batch_guidance, check_colour_args

    restore_kwargs = restore_options(args)
    try:
        check_colour_args(args)
        if args.colorize in ("reference", "points"):  # per-photo guidance, recorded with the options
            restore_kwargs["guidance"] = batch_guidance(args)
    except OldPhotoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    options = {**restore_kwargs, "exact_convs": args.exact_convs, "half": args.half}
    try:
        check_restore_options(args)
        if args.engine == "ray":
            try:
                import ray  # noqa: F401
            except ImportError:
                print("error: --engine ray needs Ray: pip install 'oldphoto[ray]'", file=sys.stderr)
                return 2
            from ..batch import ray_engine
            from ..pipeline import Restorer

            # the driver may have no GPU: it only resolves the weights, the actors build the real Restorer
            weights = weights_identity(Restorer(device="cpu", weights_dir=args.weights_dir), restore_kwargs)
            settings = argparse.Namespace(**{k: v for k, v in vars(args).items() if k != "func"})
            engine = functools.partial(
                ray_engine.records, make_restorer=functools.partial(restorer_from_args, settings),
                restore_kwargs=restore_kwargs, options=options, weights=weights, address=args.ray_address,
                actors=args.ray_actors, cpus_per_actor=args.ray_cpus_per_actor,
            )
        else:
            from ..batch import local

            restorer = restorer_from_args(args)
            weights = weights_identity(restorer, restore_kwargs)
            engine = functools.partial(local.records, make_restorer=lambda: restorer, restore_kwargs=restore_kwargs,
                                       options=options, weights=weights)
        summary = runner.run(in_root, out_root, engine=engine, options=options, weights=weights,
                             manifest_path=manifest_path, force=args.force, retry_errors=args.retry_errors,
                             quiet=args.quiet)
    except (OldPhotoError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(summary.line())
    if summary.interrupted:
        print("interrupted: run the same command again to resume", file=sys.stderr)
        return 130
    return 0 if summary.ok else 1
