"""Make ``opencv_lab.npz``: the OpenCV results the colour stage relies on (colorize SPEC §3, §5).

Run once with the OpenCV the golden set was made with (5.1.0; the SPEC found 4.14.0 identical):
``python tests/data/make_opencv_fixtures.py``. tests/test_colorize.py compares the installed
OpenCV with these arrays bit for bit, so another version that changed its fixed-point Lab tables
or its bilinear resize cannot change results silently.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "opencv_lab.npz"


def inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(23)
    codes = np.arange(256, dtype=np.uint8)
    greys = np.repeat(codes[:, None], 3, axis=1)[None]  # every 8-bit grey, (1, 256, 3)
    colours = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)  # 4096 random colours
    lab = np.stack(
        [rng.uniform(-5, 105, (64, 64)), rng.uniform(-120, 220, (64, 64)), rng.uniform(-120, 160, (64, 64))], axis=2
    ).astype(np.float32)  # L a b as the network's output makes them, out of gamut included
    photo = rng.integers(0, 256, (37, 23, 3), dtype=np.uint8)  # an odd-sized photo to resize
    return {"greys": greys, "colours": colours, "lab": lab, "photo": photo}


def outputs(cv2, x: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    f = lambda a: (a / 255.0).astype(np.float32)  # noqa: E731 - the official conversion to float
    return {
        "greys_lab": cv2.cvtColor(f(x["greys"]), cv2.COLOR_RGB2Lab),
        "colours_lab": cv2.cvtColor(f(x["colours"]), cv2.COLOR_RGB2Lab),
        "lab_rgb": cv2.cvtColor(x["lab"], cv2.COLOR_Lab2RGB),
        "resize_64": cv2.resize(f(x["photo"]), (64, 64)),
        "resize_16": cv2.resize(f(x["photo"]), (16, 16)),
    }


if __name__ == "__main__":
    import cv2

    x = inputs()
    np.savez_compressed(OUT, opencv_version=np.array(cv2.__version__), **x, **outputs(cv2, x))
    print(f"wrote {OUT} with OpenCV {cv2.__version__}")
