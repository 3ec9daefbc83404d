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
    p.add_argument(
        "--device", default="cpu",
        help="cpu (default) or cuda[:N]: run the networks there (inputs and outputs cross over at each network)",
    )
    p.add_argument(
        "--no-tf32", action="store_true",
        help="CUDA: turn off TF32 in cuDNN convolutions and matmuls (PyTorch allows it in cuDNN by default)",
    )
    args = p.parse_args(argv)
    if args.device != "cpu":
        import torch

        if not torch.cuda.is_available():
            print(f"error: --device {args.device}: this PyTorch build sees no CUDA GPU", file=sys.stderr)
            return 2
        if args.no_tf32:
            torch.backends.cudnn.allow_tf32 = False
            torch.backends.cuda.matmul.allow_tf32 = False
        print(f"device {args.device}: cudnn TF32 {torch.backends.cudnn.allow_tf32}, "
              f"matmul TF32 {torch.backends.cuda.matmul.allow_tf32}")
    if not (args.golden_dir / "index.json").is_file():
        print(f"error: {args.golden_dir / 'index.json'} not found", file=sys.stderr)
        return 2
    results = run_dir(args.golden_dir, only=args.case, exact_convs=args.exact_convs, device=args.device)
    failed = [r for r in results if not r.passed]
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed or not results else 0


if __name__ == "__main__":
    sys.exit(main())
