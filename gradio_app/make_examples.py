"""Make the web demo's example photos: public-domain / CC0 images bundled with scikit-image, aged by
a small, deterministic degradation (fading, sepia, blur, grain, dust, scratches, creases).

We ship only the generated PNGs (package data of ``oldphoto_gradio``), never third-party test photos.
Re-run after changing the recipe (scikit-image is needed only here, not by the package)::

    pip install scikit-image && python gradio_app/make_examples.py
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

OUT = Path(__file__).resolve().parent / "oldphoto_gradio" / "examples"

# name in skimage.data -> (licence note, scratch count, sepia strength)
SOURCES = {
    "astronaut": ("NASA, public domain", 9, 0.9),
    "camera": ("CC0, Lav Varshney", 12, 0.0),
    "coffee": ("CC0, Rachel Michetti", 7, 0.7),
    "chelsea": ("CC0, Stefan van der Walt", 10, 1.0),
}
MAX_SIDE = 320


def age(rgb: np.ndarray, rng: np.random.Generator, scratches: int, sepia: float) -> Image.Image:
    """One old-looking print: the kinds of damage the paper's networks were trained to undo."""
    img = Image.fromarray(rgb).convert("RGB")
    img.thumbnail((MAX_SIDE, MAX_SIDE), Image.LANCZOS)
    img = img.filter(ImageFilter.GaussianBlur(0.9))
    g = np.asarray(img.convert("L"), dtype=np.float32) / 255.0
    g = 0.18 + 0.68 * g  # faded: lifted blacks, dull whites
    h, w = g.shape
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot((xx - w / 2) / (w / 2), (yy - h / 2) / (h / 2))
    g *= 1.0 - 0.22 * np.clip(r - 0.45, 0, None)  # vignette
    g += rng.normal(0.0, 0.035, g.shape)  # film grain
    tone = np.stack([g * (1 + 0.10 * sepia), g * (1 + 0.02 * sepia), g * (1 - 0.16 * sepia)], axis=2)
    out = Image.fromarray((np.clip(tone, 0, 1) * 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(out)
    for _ in range(scratches):  # long thin scratches, mostly bright (emulsion lost)
        x0, y0 = rng.uniform(0, w), rng.uniform(0, h)
        ang, length = rng.uniform(0, np.pi), rng.uniform(0.2, 0.7) * max(w, h)
        pts = [(x0, y0)]
        for t in np.linspace(0, 1, 8)[1:]:
            x = x0 + np.cos(ang) * length * t + rng.normal(0, 2)
            pts.append((x, y0 + np.sin(ang) * length * t + rng.normal(0, 2)))
        shade = int(rng.choice([235, 245, 40]))
        draw.line(pts, fill=(shade, shade, shade - 10), width=int(rng.integers(1, 3)))
    for _ in range(int(w * h / 900)):  # dust specks
        x, y, s = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.5, 1.8)
        shade = int(rng.choice([20, 230]))
        draw.ellipse([x - s, y - s, x + s, y + s], fill=(shade, shade, shade))
    y = rng.uniform(0.3, 0.7) * h  # a crease across the print
    draw.line([(0, y), (w, y + rng.normal(0, 0.05 * h))], fill=(225, 220, 205), width=2)
    return out


def main() -> None:
    import skimage.data

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for i, (name, (licence, scratches, sepia)) in enumerate(SOURCES.items()):
        rng = np.random.default_rng(1000 + i)
        photo = age(getattr(skimage.data, name)(), rng, scratches, sepia)
        path = args.out / f"{name}.png"
        photo.save(path, optimize=True)
        print(f"{path} {photo.size[0]}x{photo.size[1]} {path.stat().st_size // 1024} KiB ({licence})")


if __name__ == "__main__":
    main()
