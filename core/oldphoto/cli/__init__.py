"""Command line: ``oldphoto restore ...`` plus subcommands contributed by other modules."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Subcommands living in their own modules; each module has ``add_parser(subparsers)`` which
# registers its parser and sets ``func`` (taking the parsed args, returning an exit status).
PLUGINS = {
    "colorize": "oldphoto.cli.colorize",
    "weights": "oldphoto.cli.weights",
    "gimp": "oldphoto.cli.gimp",
    "krita": "oldphoto.cli.krita",
    "batch": "oldphoto.cli.batch",
    "worker": "oldphoto.bridge.cli",
    "demo": "oldphoto_gradio.cli",
}


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(prog="oldphoto", description="Restore damaged old photos.")
    parser.add_argument("--version", action="version", version=f"oldphoto {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    from .restore import add_parser as add_restore

    add_restore(sub)
    for name, module in PLUGINS.items():
        try:
            mod = importlib.import_module(module)
        except ImportError as exc:
            missing = exc

            def unavailable(args, _name=name, _exc=missing) -> int:
                print(f"oldphoto {_name}: not available in this installation ({_exc}).", file=sys.stderr)
                return 2

            p = sub.add_parser(name, help=f"(unavailable: {missing})")
            p.set_defaults(func=unavailable)
            continue
        mod.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:  # e.g. Ctrl-C during a first-run download: one line, no traceback
        print("interrupted; nothing partial was kept, the next run starts again cleanly", file=sys.stderr)
        return 130
