"""The partial non-local block's attention (``NonLocalBlock2DWithMaskRes.attend``) on its real shapes.

    .venv/bin/python benchmarks/bench_attention.py [--n 16384 25600] [--repeat 3] [--device cpu|cuda]

N = latent positions = (photo side / 4)^2: 16384 for a 512x512 scratch photo, 25600 for 640x640,
65536 for 1024x1024. C = 512 channels, seeded 1x1 convolutions, ~2 % hole positions. Reports the
best wall time of ``attend`` and its rate over the two matrix products (4 N^2 C FLOP). On CUDA the
time is taken after ``torch.cuda.synchronize``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402


def inputs(n: int, device: str, seed: int = 0):
    """A block with seeded weights, an (1, 512, h, w) input and its valid-key map for N = h * w."""
    import torch

    from oldphoto.nets.attention import NonLocalBlock2DWithMaskRes

    side = int(round(n**0.5))
    h, w = side, n // side
    gen = torch.Generator().manual_seed(seed)
    block = NonLocalBlock2DWithMaskRes(512)
    with torch.no_grad():
        for p in block.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * (1 / p[0].numel()) ** 0.5)
    x = torch.randn(1, 512, h, w, generator=gen)
    v = (torch.rand(1, 1, h, w, generator=gen) > 0.02).float()
    return block.to(device).eval(), x.to(device), v.to(device)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, nargs="+", default=[16384, 25600])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    import torch

    print(C.header(args.device))
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    for n in args.n:
        block, x, v = inputs(n, args.device)
        with torch.inference_mode():
            block.attend(x, v)  # warm-up
            sync()
            best = float("inf")
            for _ in range(args.repeat):
                t = time.perf_counter()
                block.attend(x, v)
                sync()
                best = min(best, time.perf_counter() - t)
        flop = 4 * n * n * 512
        print(f"N={n}: attend {best:.3f} s, {flop / best / 1e9:.0f} GFLOP/s over the two products "
              f"(best of {args.repeat}, {args.device})", flush=True)
    print("load:", C.load_average())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
