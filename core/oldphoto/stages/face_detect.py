"""Face detection with RetinaFace (face SPEC section e): pre-processing, priors, decoding, NMS.

The official pipeline uses dlib (not installable here); RetinaFace's five landmarks are in the
official order (eye image-left, eye image-right, nose, mouth image-left, mouth image-right), so they
feed the alignment of section b directly, as floats. We re-implement the small pre/post-processing
of ``retinaface-pytorch`` 0.0.8 ``predict_jsons`` in torch (no albumentations, no torchvision):

* resize so that the longer side is ``max_size`` (up or down; default 960, the package's ``Model``
  default). Interpolation: bilinear with half-pixel centres and no antialiasing
  (``F.interpolate(..., "bilinear", align_corners=False)``), i.e. OpenCV ``INTER_LINEAR`` as used by
  albumentations, but on float values (OpenCV rounds uint8 results to integers; that is < 0.5 level);
* ImageNet normalisation of value / 255 (mean 0.485, 0.456, 0.406; std 0.229, 0.224, 0.225);
* the resized image is not padded to a max_size square (the package pads with zeros, which only
  changes responses at the padded border and costs time; priors here follow the actual size);
* priors (min sizes 16/32, 64/128, 256/512 on strides 8/16/32), variances (0.1, 0.2), softmax score,
  score > 0.7, greedy NMS with IoU 0.4 in descending score order (torchvision ``nms`` semantics);
* back to photo pixels: network coordinates are pixel indices of the resized image; we map them
  with the half-pixel-centre rule ``(v + 0.5) * scale - 0.5`` per axis, which removes the
  ~0.5 * (scale - 1) px shift of the package's plain multiplication (SPEC e). Boxes are not clipped;
  boxes that are empty once clipped to the photo are dropped, as in the package.

No face -> ``[]`` (the package returns one dummy entry there; we do not).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

MIN_SIZES = ((16, 32), (64, 128), (256, 512))
STEPS = (8, 16, 32)
VARIANCES = (0.1, 0.2)
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
CONFIDENCE_THRESHOLD = 0.7
NMS_THRESHOLD = 0.4
MAX_SIZE = 960


@dataclass
class Detection:
    """One face in photo pixel coordinates (x = column, y = row, pixel centres at integers)."""

    box: tuple[float, float, float, float]
    """(x0, y0, x1, y1), not clipped to the photo."""
    score: float
    landmarks: np.ndarray
    """(5, 2) float64: eye image-left, eye image-right, nose tip, mouth image-left, mouth image-right."""


def resized_size(height: int, width: int, max_size: int = MAX_SIZE) -> tuple[int, int]:
    """Longest side -> ``max_size`` (albumentations ``LongestMaxSize``: round each side)."""
    scale = max_size / float(max(height, width))
    if scale == 1.0:
        return height, width
    return max(1, int(round(height * scale))), max(1, int(round(width * scale)))


def preprocess(image: np.ndarray, max_size: int = MAX_SIZE) -> Tensor:
    """H x W x 3 uint8 RGB -> 1 x 3 x h x w float32, resized (longest side ``max_size``), normalised."""
    x = torch.from_numpy(np.array(image, dtype=np.float32)).permute(2, 0, 1)[None]  # a copy: input may be read-only
    h, w = resized_size(image.shape[0], image.shape[1], max_size)
    if (h, w) != tuple(image.shape[:2]):
        x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
    mean = torch.tensor(MEAN, dtype=torch.float32).view(1, 3, 1, 1) * 255.0
    std = torch.tensor(STD, dtype=torch.float32).view(1, 3, 1, 1) * 255.0
    return (x - mean) / std


def prior_boxes(height: int, width: int) -> Tensor:
    """Anchors (cx, cy, w, h), normalised by the input size, in the heads' output order.

    Per level: feature map ceil(H / step) x ceil(W / step), row-major cells, both min sizes per cell.
    """
    levels = []
    for step, sizes in zip(STEPS, MIN_SIZES):
        fh, fw = math.ceil(height / step), math.ceil(width / step)
        ys, xs = np.meshgrid(np.arange(fh, dtype=np.float64), np.arange(fw, dtype=np.float64), indexing="ij")
        a = np.empty((fh, fw, len(sizes), 4), dtype=np.float64)
        a[..., 0] = ((xs + 0.5) * step / width)[..., None]
        a[..., 1] = ((ys + 0.5) * step / height)[..., None]
        a[..., 2] = np.array(sizes, dtype=np.float64) / width
        a[..., 3] = np.array(sizes, dtype=np.float64) / height
        levels.append(a.reshape(-1, 4))
    return torch.from_numpy(np.concatenate(levels).astype(np.float32))


def decode_boxes(loc: Tensor, priors: Tensor, variances: tuple[float, float] = VARIANCES) -> Tensor:
    """SSD box decoding -> (x0, y0, x1, y1) normalised: centre offset * var0 * prior size, size exp(* var1)."""
    centers = priors[:, :2] + loc[:, :2] * variances[0] * priors[:, 2:]
    sizes = priors[:, 2:] * torch.exp(loc[:, 2:] * variances[1])
    return torch.cat([centers - sizes / 2, centers + sizes / 2], dim=1)


def decode_landmarks(pre: Tensor, priors: Tensor, variances: tuple[float, float] = VARIANCES) -> Tensor:
    """Five points, each = prior centre + offset * var0 * prior size -> P x 10 normalised (x, y)*5."""
    pts = pre.view(-1, 5, 2)
    out = priors[:, None, :2] + pts * variances[0] * priors[:, None, 2:]
    return out.reshape(-1, 10)


def box_iou(box: Tensor, boxes: Tensor) -> Tensor:
    """IoU of one box against many (areas ``(x1 - x0) * (y1 - y0)``, as torchvision)."""
    x0 = torch.maximum(box[0], boxes[:, 0])
    y0 = torch.maximum(box[1], boxes[:, 1])
    x1 = torch.minimum(box[2], boxes[:, 2])
    y1 = torch.minimum(box[3], boxes[:, 3])
    inter = (x1 - x0).clamp(min=0) * (y1 - y0).clamp(min=0)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / (area + areas - inter)


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float = NMS_THRESHOLD) -> Tensor:
    """Greedy NMS: indices kept, by descending score; a box is dropped when IoU > threshold with a kept one.

    Ties in score keep the original order (stable sort), so the result is deterministic.
    """
    order = torch.sort(scores, descending=True, stable=True).indices
    suppressed = torch.zeros(len(order), dtype=torch.bool)
    boxes_sorted = boxes[order]
    keep: list[int] = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(int(order[i]))
        if i + 1 < len(order):
            iou = box_iou(boxes_sorted[i], boxes_sorted[i + 1 :])
            suppressed[i + 1 :] |= iou > iou_threshold
    return torch.tensor(keep, dtype=torch.int64)


def postprocess(
    loc: Tensor,
    conf: Tensor,
    landmarks: Tensor,
    *,
    input_size: tuple[int, int],
    photo_size: tuple[int, int],
    confidence_threshold: float = CONFIDENCE_THRESHOLD,
    nms_threshold: float = NMS_THRESHOLD,
    min_face_size: int = 0,
) -> list[Detection]:
    """Raw head outputs of one image (P x 4, P x 2 logits, P x 10) -> detections in photo pixels.

    ``input_size`` / ``photo_size`` are (height, width) of the network input and of the photo.
    ``min_face_size`` drops faces whose box is narrower or lower than that many photo pixels.
    """
    h, w = input_size
    ph, pw = photo_size
    priors = prior_boxes(h, w).to(loc.device)
    if priors.shape[0] != loc.shape[0]:
        raise ValueError(f"{loc.shape[0]} predictions for {priors.shape[0]} priors ({h}x{w} input)")
    scores = torch.softmax(conf.float(), dim=-1)[:, 1]
    valid = torch.nonzero(scores > confidence_threshold).flatten()
    if valid.numel() == 0:
        return []
    scale_xy = torch.tensor([w, h], dtype=torch.float32, device=loc.device)
    boxes = decode_boxes(loc[valid].float(), priors[valid]) * scale_xy.repeat(2)
    lms = decode_landmarks(landmarks[valid].float(), priors[valid]) * scale_xy.repeat(5)
    scores = scores[valid]
    keep = nms(boxes.cpu(), scores.cpu(), nms_threshold)
    sx, sy = pw / w, ph / h
    out: list[Detection] = []
    for k in keep.tolist():
        b = boxes[k].double().cpu().numpy()
        box = ((b[0] + 0.5) * sx - 0.5, (b[1] + 0.5) * sy - 0.5, (b[2] + 0.5) * sx - 0.5, (b[3] + 0.5) * sy - 0.5)
        cx0, cy0 = min(max(box[0], 0.0), pw - 1.0), min(max(box[1], 0.0), ph - 1.0)
        cx1, cy1 = min(max(box[2], 0.0), pw - 1.0), min(max(box[3], 0.0), ph - 1.0)
        if cx0 >= cx1 or cy0 >= cy1:
            continue
        if min(box[2] - box[0], box[3] - box[1]) < min_face_size:
            continue
        pts = lms[k].double().cpu().numpy().reshape(5, 2)
        pts = (pts + 0.5) * np.array([sx, sy]) - 0.5
        out.append(Detection(box=tuple(float(v) for v in box), score=float(scores[k]), landmarks=pts))
    return out


def detect_faces(
    image: np.ndarray,
    detector: torch.nn.Module,
    *,
    device: torch.device | str = "cpu",
    max_size: int = MAX_SIZE,
    confidence_threshold: float = CONFIDENCE_THRESHOLD,
    nms_threshold: float = NMS_THRESHOLD,
    min_face_size: int = 0,
) -> list[Detection]:
    """Faces of an H x W x 3 uint8 RGB photo, sorted by descending score (like dlib's order)."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an H x W x 3 uint8 image, got {image.shape} {image.dtype}")
    x = preprocess(image, max_size).to(device)
    with torch.inference_mode():
        loc, conf, lms = detector(x)
    return postprocess(
        loc[0],
        conf[0],
        lms[0],
        input_size=(x.shape[2], x.shape[3]),
        photo_size=(image.shape[0], image.shape[1]),
        confidence_threshold=confidence_threshold,
        nms_threshold=nms_threshold,
        min_face_size=min_face_size,
    )
