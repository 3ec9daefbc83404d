"""Face stages orchestrated (face SPEC a-d): detect -> align -> enhance -> warp back and blend.

``enhance_faces`` is what ``Restorer.restore`` calls on the global-stage result. The official
pipeline runs these steps as three scripts with PNG files in between; the PNG round trips are
lossless (uint8 crops and faces), so calling the functions directly gives the same pixels. Detection
uses RetinaFace instead of dlib (see ``face_detect``); everything after the five landmarks follows the
official code to the bit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..nets.face_gen import to_generator_input, to_uint8
from . import align, warpback
from .face_detect import detect_faces


@dataclass
class FaceResult:
    """One enhanced face, in blending order (descending detection score)."""

    box: tuple[float, float, float, float]
    """Detection box (x0, y0, x1, y1) in photo pixels, not clipped."""
    score: float
    landmarks: np.ndarray
    """(5, 2) float (x, y): eye image-left, eye image-right, nose, mouth image-left, mouth image-right."""
    transform: np.ndarray
    """3x3 float64 similarity mapping crop (x, y, 1) to photo coordinates."""
    aligned: np.ndarray
    """(S, S, 3) uint8 aligned crop (the generator input)."""
    enhanced: np.ndarray
    """(S, S, 3) uint8 generator output (before colour matching and pasting)."""


def enhance_crop(crop: np.ndarray, generator: torch.nn.Module, device: torch.device | str) -> np.ndarray:
    """SPEC c: one S x S x 3 uint8 crop through the generator -> S x S x 3 uint8 (``save_image`` rounding)."""
    from ..nets import param_dtype

    x = to_generator_input(torch.from_numpy(np.ascontiguousarray(crop))[None]).to(device, param_dtype(generator))
    with torch.inference_mode():
        out = generator(x)
    return to_uint8(out.float().cpu())[0].numpy()


def find_faces(
    image: np.ndarray,
    *,
    detector: torch.nn.Module,
    generator: torch.nn.Module,
    size: int,
    device: torch.device,
    progress: Callable[[float, str], None] | None = None,
    min_face_size: int = 0,
    max_faces: int | None = None,
    notes: list[str] | None = None,
) -> list[FaceResult]:
    """The network half of the face stage: detect, align and enhance every face of an H x W x 3 uint8 image.

    Kept apart from the blending so that a front end can blend the same faces again with another
    strength (``oldphoto.stages.adjust``) without running a network. ``progress(fraction, message)``
    may raise (e.g. ``Cancelled``); it is not caught.
    """

    def report(frac: float, msg: str) -> None:
        if progress is not None:
            progress(frac, msg)

    image = np.ascontiguousarray(image)
    report(0.05, "Looking for faces")
    detections = detect_faces(image, detector, device=device, min_face_size=min_face_size)
    if max_faces is not None and len(detections) > max_faces:
        # the most confident first; the caller tells the user how many were left out
        msg = (f"{len(detections)} faces were found; only the {max_faces} most confident were enhanced "
               "(raise max_faces to enhance more).")
        if notes is not None:
            notes.append(msg)
        report(0.15, msg)
        detections = detections[:max_faces]
    if not detections:
        report(1.0, "No face found")
        return []

    n = len(detections)
    results: list[FaceResult] = []
    for k, det in enumerate(detections):
        report(0.2 + 0.7 * k / n, f"Enhancing face {k + 1} of {n}")
        matrix = align.crop_transform(det.landmarks, size)
        crop = align.aligned_crop(image, matrix, size)
        enhanced = enhance_crop(crop, generator, device)
        results.append(FaceResult(det.box, det.score, det.landmarks, matrix, crop, enhanced))
    return results


def enhance_faces(
    image: np.ndarray,
    *,
    detector: torch.nn.Module,
    generator: torch.nn.Module,
    size: int,
    device: torch.device,
    progress: Callable[[float, str], None] | None = None,
    min_face_size: int = 0,
    max_faces: int | None = None,
    notes: list[str] | None = None,
) -> tuple[np.ndarray, list[FaceResult]]:
    """Detect, enhance and blend back every face of an H x W x 3 uint8 image (the official stage 4).

    Returns the blended uint8 image (same size) and the faces; with no face the image is returned
    unchanged with ``[]``. ``progress(fraction, message)`` may raise (e.g. ``Cancelled``); it is not caught.
    """
    image = np.ascontiguousarray(image)
    results = find_faces(image, detector=detector, generator=generator, size=size, device=device,
                         progress=progress, min_face_size=min_face_size, max_faces=max_faces, notes=notes)
    if not results:
        return image, []
    if progress is not None:
        progress(0.9, "Blending faces")
    blended = warpback.paste_faces(image, [(r.transform, r.enhanced) for r in results])
    if progress is not None:
        progress(1.0, "Faces done")
    return blended, results
