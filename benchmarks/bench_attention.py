"""The partial non-local block's attention (``NonLocalBlock2DWithMaskRes.attend``) on its real shapes.

    .venv/bin/python benchmarks/bench_attention.py [--n 16384 25600] [--repeat 3] [--device cpu|cuda] [--gemms]

N = latent positions = (photo side / 4)^2: 16384 for a 512x512 scratch photo, 25600 for 640x640,
65536 for 1024x1024. C = 512 channels, seeded 1x1 convolutions, ~2 % hole positions. Reports the
best wall time of ``attend`` and its rate over the two matrix products (4 N^2 C FLOP). On CUDA the
time is taken after ``torch.cuda.synchronize``.

On the CPU, ``attend`` runs with each GEMM library of ``nets.attention.float32_gemm_backend``
(torch = MKL on x86 builds, numpy = its OpenBLAS on the same memory), alternating in this one
process on the same inputs (the machine is shared: separate runs would compare the neighbours), with
the largest difference between the two outputs. ``--gemms`` also times the two products of one row
block alone on the same shapes through every route measured for issue 15: torch.mm (MKL), numpy
(OpenBLAS), a 1x1 convolution (oneDNN's float32 kernels), key-blocked tiles of 1024 keys (the tile
of phi stays in L2) and bfloat16 torch.mm (oneDNN) for scale.
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


def gemm_routes(n: int, repeat: int) -> None:
    """One row block's theta.phi and weights.g through each route, alternating, best of ``repeat``."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from oldphoto.nets.attention import rows_per_block

    c, rows = 512, min(n, rows_per_block(n))
    gen = torch.Generator().manual_seed(1)
    theta, phi = torch.randn(rows, c, generator=gen), torch.randn(c, n, generator=gen)
    f, g = torch.rand(rows, n, generator=gen), torch.randn(n, c, generator=gen)
    o1, o2 = torch.empty(rows, n), torch.empty(rows, c)
    tile = 1024
    w_theta, in_phi = theta.view(rows, c, 1, 1), phi.view(1, c, n, 1)
    w_g, in_f = g.t().contiguous().view(c, n, 1, 1), f.t().view(1, n, rows, 1)

    def tiles_theta_phi() -> None:
        for k in range(0, n, tile):
            torch.matmul(theta, phi[:, k : k + tile], out=o1[:, k : k + tile])

    def tiles_f_g() -> None:
        o2.zero_()
        for k in range(0, n, tile):
            o2.addmm_(f[:, k : k + tile], g[k : k + tile])

    tb, pb, fb, gb = theta.bfloat16(), phi.bfloat16(), f.bfloat16(), g.bfloat16()
    routes = {
        "theta.phi": {
            "torch.mm (MKL)": lambda: torch.matmul(theta, phi, out=o1),
            "numpy (OpenBLAS)": lambda: np.matmul(theta.numpy(), phi.numpy(), out=o1.numpy()),
            "1x1 conv (oneDNN)": lambda: F.conv2d(in_phi, w_theta),
            f"key tiles of {tile} (MKL)": tiles_theta_phi,
            "bf16 torch.mm (oneDNN)": lambda: torch.matmul(tb, pb),
        },
        "weights.g": {
            "torch.mm (MKL)": lambda: torch.matmul(f, g, out=o2),
            "numpy (OpenBLAS)": lambda: np.matmul(f.numpy(), g.numpy(), out=o2.numpy()),
            "1x1 conv (oneDNN)": lambda: F.conv2d(in_f, w_g),
            f"key tiles of {tile} (MKL)": tiles_f_g,
            "bf16 torch.mm (oneDNN)": lambda: torch.matmul(fb, gb),
        },
    }
    flop = 2 * rows * c * n
    for product, fns in routes.items():
        best = dict.fromkeys(fns, float("inf"))
        for fn in fns.values():
            fn()  # warm-up
        for _ in range(repeat):
            for name, fn in fns.items():
                t = time.perf_counter()
                fn()
                best[name] = min(best[name], time.perf_counter() - t)
        print(f"  {product} ({rows}x{c}x{n}): " + ", ".join(f"{k} {flop / v / 1e9:.0f}" for k, v in best.items())
              + " GFLOP/s", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, nargs="+", default=[16384, 25600])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--gemms", action="store_true", help="CPU: also time one row block's products per route")
    args = p.parse_args(argv)
    import os

    import torch

    from oldphoto.nets import attention

    print(C.header(args.device))
    cuda = args.device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    if not cuda:
        from oldphoto.cpu import cpu_facts

        print(f"CPU vendor {cpu_facts().vendor or '?'}; auto choice: {attention.float32_gemm_backend()}")
    backends = ["default"] if cuda else ["torch", "numpy"]

    def use(backend: str) -> None:
        if backend != "default":
            os.environ[attention.GEMM_ENV] = backend
            attention.float32_gemm_backend.cache_clear()

    for n in args.n:
        block, x, v = inputs(n, args.device)
        flop = 4 * n * n * 512
        best = dict.fromkeys(backends, float("inf"))
        outs = {}
        with torch.inference_mode():
            for b in backends:  # warm-up
                use(b)
                outs[b] = block.attend(x, v)
            sync()
            for _ in range(args.repeat):
                for b in backends:
                    use(b)
                    t = time.perf_counter()
                    block.attend(x, v)
                    sync()
                    best[b] = min(best[b], time.perf_counter() - t)
        line = ", ".join(f"{b} {best[b]:.3f} s ({flop / best[b] / 1e9:.0f} GFLOP/s)" for b in backends)
        if len(backends) == 2:
            diff = float((outs["torch"] - outs["numpy"]).abs().max())
            line += f"; torch/numpy {best['torch'] / best['numpy']:.2f}x, max |diff| {diff:.2g}"
        print(f"N={n}: attend {line} (best of {args.repeat}, interleaved, {args.device})", flush=True)
        if args.gemms and not cuda:
            gemm_routes(n, args.repeat)
    os.environ.pop(attention.GEMM_ENV, None)
    print("load:", C.load_average())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
