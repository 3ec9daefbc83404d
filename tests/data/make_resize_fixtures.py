"""Make ``resize_pillow13.npz``: what Pillow 13.0.0's own ``Image.resize`` gives on the cases below.

Run once, with Pillow 13.0.0 first on the path (the reference: the official outputs were made with it):

    pip install --target "$PIL13" pillow==13.0.0      # any empty folder
    PYTHONPATH="$PIL13" python tests/data/make_resize_fixtures.py

tests/test_resize.py then checks ``oldphoto.stages.resize.resize`` against them, bit for bit, with
whatever Pillow is installed. Inputs are made from an integer hash (no RNG), so the script and the
test build the same images on any numpy; the file holds only the expected outputs. To stay small it
keeps, per case, the SHA-256 of the output's bytes (the bit-for-bit check) and the array itself only
where the output is small; larger outputs keep a 40x40 corner, so a failure can say how far off it is.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

# (in_w, in_h, out_w, out_h, why). dx = in_w - out_w, dy = in_h - out_h.
SIZES = [
    (190, 258, 192, 256, "width grows, height shrinks (issue case)"),
    (366, 234, 368, 232, "width grows, height shrinks (issue case)"),
    (258, 190, 256, 192, "width shrinks, height grows"),
    (264, 369, 256, 352, "both shrink, height by more than twice the pixels (issue case)"),
    (100, 120, 92, 104, "both shrink, dy == 2*dx exactly: still horizontal first"),
    (100, 121, 92, 104, "both shrink, dy == 2*dx + 1: vertical first"),
    (301, 379, 296, 376, "both shrink, width more"),
    (210, 318, 208, 320, "width shrinks, height grows (issue case)"),
    (298, 298, 296, 296, "both shrink equally (issue case)"),
    (61, 47, 64, 48, "both grow"),
    (97, 101, 97, 64, "height only"),
    (97, 101, 64, 101, "width only"),
    (7, 5, 3, 9, "odd, tiny"),
    (1, 13, 4, 4, "one pixel wide"),
    (13, 1, 4, 4, "one pixel high"),
    (517, 389, 336, 256, "scale_256-like downscale"),
    (192, 256, 190, 258, "back to the input size"),
]
FILTERS = {"nearest": 0, "bilinear": 2, "bicubic": 3, "lanczos": 1}
MODES = ("RGB", "L")
# (in_w, in_h, out_w, out_h, box): the web app's mask coverage resize (BILINEAR with a box, mode L)
BOX_CASES = [
    (120, 90, 200, 150, (10.0, 5.0, 110.0, 80.0)),
    (90, 140, 60, 100, (0.0, 12.5, 90.0, 127.5)),
]


def make_input(w: int, h: int, mode: str) -> np.ndarray:
    """A photo-like test image: gradients plus hashed noise, in uint8 (no RNG involved)."""
    c = 3 if mode == "RGB" else 1
    y, x, k = np.meshgrid(np.arange(h, dtype=np.uint64), np.arange(w, dtype=np.uint64), np.arange(c, dtype=np.uint64),
                          indexing="ij")
    noise = ((x * np.uint64(2654435761) + y * np.uint64(40503) + k * np.uint64(977)) * np.uint64(2246822519))
    noise = (noise >> np.uint64(24)) & np.uint64(255)
    base = (x * np.uint64(255) // np.uint64(max(1, w - 1)) + y * np.uint64(128) // np.uint64(max(1, h - 1)))
    arr = (base // np.uint64(2) + noise // np.uint64(2)) & np.uint64(255)
    arr = arr.astype(np.uint8)
    return arr if mode == "RGB" else arr[..., 0]


FULL_ARRAY_PIXELS = 4096
CORNER = 40


def digest(arr: np.ndarray) -> np.ndarray:
    """SHA-256 of the array's shape and bytes, as 32 uint8."""
    import hashlib

    h = hashlib.sha256(repr(arr.shape).encode() + np.ascontiguousarray(arr).tobytes())
    return np.frombuffer(h.digest(), dtype=np.uint8)


def key(mode: str, filt: str, w: int, h: int, ow: int, oh: int, box=None) -> str:
    k = f"{mode}_{filt}_{w}x{h}_to_{ow}x{oh}"
    return k + ("_box_" + "_".join(f"{v:g}" for v in box) if box else "")


def main() -> int:
    from PIL import Image, __version__

    if __version__ != "13.0.0":
        print(f"needs Pillow 13.0.0 first on the path, found {__version__}", file=sys.stderr)
        return 2
    out: dict[str, np.ndarray] = {}
    for w, h, ow, oh, _ in SIZES:
        for mode in MODES:
            img = Image.fromarray(make_input(w, h, mode), mode)
            for name, f in FILTERS.items():
                out[key(mode, name, w, h, ow, oh)] = np.asarray(img.resize((ow, oh), f))
    for w, h, ow, oh, box in BOX_CASES:
        img = Image.fromarray(make_input(w, h, "L"), "L")
        out[key("L", "bilinear", w, h, ow, oh, box)] = np.asarray(img.resize((ow, oh), 2, box=box))
    kept: dict[str, np.ndarray] = {}
    for k, arr in out.items():
        kept[f"sha256:{k}"] = digest(arr)
        full = arr.shape[0] * arr.shape[1] <= FULL_ARRAY_PIXELS
        kept[f"{'full' if full else 'corner'}:{k}"] = arr if full else arr[:CORNER, :CORNER]
    np.savez_compressed(HERE / "resize_pillow13.npz", **kept)
    print(f"{len(out)} arrays -> {HERE / 'resize_pillow13.npz'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
