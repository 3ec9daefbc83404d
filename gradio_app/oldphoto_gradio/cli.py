"""``oldphoto demo``: start the web demo on this machine (``make demo`` runs it).

Registered by ``oldphoto.cli``; Gradio is imported only when the command runs, so the rest of the
CLI does not pay for it.
"""

from __future__ import annotations

import argparse
import sys


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from .service import DEFAULT_MAX_SIDE

    p = subparsers.add_parser(
        "demo",
        help="start the web demo (Gradio) on localhost",
        description="Start the web demo. Open the printed address in a browser; Ctrl+C stops it.",
    )
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; 0.0.0.0 opens it to the network)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--weights-dir", default=None,
                   help="folder of <component>.safetensors files to use instead of the Hugging Face Hub")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    p.add_argument("--max-side", type=int, default=DEFAULT_MAX_SIDE,
                   help=f"downscale larger photos to this long side (default {DEFAULT_MAX_SIDE}; 0: none)")
    p.add_argument("--no-examples", action="store_true", help="hide the example photos")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    try:
        from .app import build_app, launch
    except ImportError as exc:
        print(f"oldphoto demo: the web demo needs Gradio ({exc}); install with: pip install 'oldphoto[app]'",
              file=sys.stderr)
        return 2
    demo = build_app(weights_dir=args.weights_dir, device=args.device, max_side=args.max_side,
                     examples=not args.no_examples)
    try:
        launch(demo, host=args.host, port=args.port)
    except OSError as exc:  # port taken, address not available
        print(f"oldphoto demo: cannot listen on {args.host}:{args.port} ({exc}); try another --port.",
              file=sys.stderr)
        return 1
    return 0
