"""``python -m oldphoto.refcheck DIR [--case ID ...]``: exit 0 only if every case passes."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import run_dir


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m oldphoto.refcheck", description=__doc__)
    p.add_argument("golden_dir", type=Path, help="folder with index.json (reference golden schema)")
    p.add_argument("--case", action="append", help="run only this case id (repeatable)")
    p.add_argument(
        "--exact-convs", action="store_true",
        help="check oneDNN's direct convolutions instead of the Winograd ones the CPU pipeline uses",
    )
    args = p.parse_args(argv)
    if not (args.golden_dir / "index.json").is_file():
        print(f"error: {args.golden_dir / 'index.json'} not found", file=sys.stderr)
        return 2
    results = run_dir(args.golden_dir, only=args.case, exact_convs=args.exact_convs)
    failed = [r for r in results if not r.passed]
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed or not results else 0


if __name__ == "__main__":
    sys.exit(main())
