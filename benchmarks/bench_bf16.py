"""Would bfloat16 pay on this CPU? Per network: today's float32 (Winograd where Restorer uses it)
against bfloat16 with oneDNN's direct convolutions and against Winograd with only its GEMM in bfloat16.

    .venv/bin/python benchmarks/bench_bf16.py [--size 512] [--repeat 3] [--components ...]

Why this exists: issue 15 asked for an opt-in ``precision="bf16"`` if it makes a 512x512 quality photo
>= 1.5x faster within a defensible error bound. The variants of each network run alternately in one
process on the same seeded input (the machine is shared), best of ``--repeat``; the error is the
largest |difference| from today's float32 output (network outputs in [-1, 1] for the decoder, latent
features otherwise). Seeded weights, so cost equals the real checkpoints'; conclusions: benchmarks/README.md.

On a CPU without bfloat16 instructions torch may use (``oldphoto.cpu``: no avx512_bf16/amx_bf16, or
``ONEDNN_MAX_CPU_ISA=AVX2``), or where a probe of the networks' real layers finds bfloat16 over 25x
slower than float32, the bfloat16 variants would run through a reference kernel for hours: they are
left out, saying why (``--force-bf16`` runs them anyway).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402

CALLS = {"vae_a_quality": "encode", "vae_b_quality": "decode", "mapping_quality": "forward", "detection_unet": "forward"}


def bf16_winograd(net) -> None:
    """Winograd with bfloat16 GEMM operands only: transforms, accumulation of the output in float32."""
    import torch
    import torch.nn.functional as F

    from oldphoto.nets import winograd as W

    def conv(x, u, bias, padding):
        m_, a_ = W.M, W.A
        ph, pw = padding
        _, c, hp, wp = x.shape
        hp, wp = hp + 2 * ph, wp + 2 * pw
        k, h, w = u.shape[1], hp - 2, wp - 2
        th, tw = -(-h // m_), -(-w // m_)
        x = F.pad(x, (pw, tw * m_ + 2 - wp + pw, ph, th * m_ + 2 - hp + ph))[0].unsqueeze(1)
        kb, ka = W._KB.view(a_ * a_, 1, a_, a_), W._KA
        out = torch.empty(1, k, h, w)
        rows = max(1, W.CHUNK_BYTES // (a_ * a_ * c * tw * 4))
        for r0 in range(0, th, rows):
            r1 = min(th, r0 + rows)
            t = (r1 - r0) * tw
            v = F.conv2d(x[:, :, r0 * m_ : r1 * m_ + 2], kb, stride=m_).view(c, a_ * a_, t).transpose(0, 1)
            mm = torch.bmm(u, v.bfloat16()).float()
            y = torch.matmul(ka, mm.view(a_ * a_, k * t)).view(m_, m_, k, r1 - r0, tw)
            y = y.permute(2, 3, 0, 4, 1).reshape(k, (r1 - r0) * m_, tw * m_)
            o0, o1 = r0 * m_, min(h, r1 * m_)
            out[0, :, o0:o1].copy_(y[:, : o1 - o0, :w])
        if bias is not None:
            out.add_(bias.view(1, -1, 1, 1))
        return out

    for m in net.modules():
        if isinstance(m, W.WinogradConv2d):
            u16 = W.transform_weight(m.weight).bfloat16()
            m.forward = lambda x, m=m, u16=u16: conv(x, u16, m.bias, m.padding)


def real_layers(size: int) -> list:
    """The networks' largest convolutions at a ``size`` px photo: what the bfloat16 probe times."""
    from oldphoto.cpu import Layer

    q = size // 4
    return [Layer(512, 512, 3, q, q), Layer(64, 64, 3, q, q), Layer(64, 64, 4, 2 * q, 2 * q, "deconv", 2),
            Layer(3, 64, 7, size, size)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", type=int, default=512, help="photo side (the latent networks see size/4)")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--components", nargs="+", default=list(CALLS), choices=list(CALLS))
    p.add_argument("--force-bf16", action="store_true", help="time bfloat16 even where oldphoto.cpu says it is slow")
    args = p.parse_args(argv)
    import torch

    from oldphoto.cpu import fast_low_precision
    from oldphoto.nets import instantiate
    from oldphoto.nets.winograd import FAST_PARTS
    from oldphoto.seeded import seeded_state_dict

    print(C.header("cpu"))
    torch.set_grad_enabled(False)
    s, q = args.size, args.size // 4
    verdict = fast_low_precision("bfloat16", real_layers(s))
    print(f"bfloat16 here: {verdict.reason}")
    if not verdict.fast and not args.force_bf16:
        print("bfloat16 variants left out (--force-bf16 runs them anyway)")
    shapes = {"vae_a_quality": (1, 3, s, s), "vae_b_quality": (1, 64, q, q), "mapping_quality": (1, 64, q, q),
              "detection_unet": (1, 1, s, s)}
    for comp in args.components:
        sd = seeded_state_dict(comp, 36)
        variants = {"float32 (today)": instantiate(comp, sd, fast_convs=True)}
        if verdict.fast or args.force_bf16:
            variants["bf16 direct"] = instantiate(comp, sd).to(torch.bfloat16)
        if comp in FAST_PARTS and (verdict.fast or args.force_bf16):
            variants["bf16 GEMM in Winograd"] = instantiate(comp, sd, fast_convs=True)
            bf16_winograd(variants["bf16 GEMM in Winograd"])
        x = torch.randn(shapes[comp], generator=torch.Generator().manual_seed(0))
        call = CALLS[comp]

        def run(net, x=x, call=call):
            dtype = next(net.parameters()).dtype
            return getattr(net, call)(x.to(dtype)).float()

        ref = run(variants["float32 (today)"])
        err = {k: float((run(n) - ref).abs().max()) for k, n in variants.items() if k != "float32 (today)"}
        best = dict.fromkeys(variants, float("inf"))
        for _ in range(args.repeat):
            for k, n in variants.items():
                t = time.perf_counter()
                run(n)
                best[k] = min(best[k], time.perf_counter() - t)
        base = best["float32 (today)"]
        print(f"{comp} ({s} px photo): " + "; ".join(
            f"{k} {v:.2f} s" + ("" if k not in err else f" ({base / v:.2f}x, max |err| {err[k]:.3g})")
            for k, v in best.items()), flush=True)
    print("load:", C.load_average())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
