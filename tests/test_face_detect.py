"""RetinaFace detection (face SPEC e): priors, decoding, NMS and back-scaling by construction, and the
real network (seeded weights) on a real photo."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from oldphoto.nets import build
from oldphoto.seeded import seeded_state_dict
from oldphoto.stages import face_detect as fd
from tests.conftest import require_reference

# Network input 64 (rows) x 32 (cols); photo 128 x 64, so both axes scale by 2.
IN_H, IN_W = 64, 32
PHOTO_H, PHOTO_W = 128, 64
N_PRIORS = (8 * 4 + 4 * 2 + 2 * 1) * 2  # ceil(64/s) x ceil(32/s) cells, 2 anchors, strides 8/16/32


def _logits(score_logit: float) -> list[float]:
    return [0.0, score_logit]


def hand_set_heads(empty: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Head outputs (1 x P x 4/2/10) with three face candidates; everything else is background.

    * prior 13 (stride 8, cell row 1 col 2, min size 32; centre (0.625, 0.1875), size (1, 0.5) in
      normalised units), score softmax(0, 5) = 0.9933, loc (0.5, -1, 0, ln2/0.2);
    * prior 12 (same cell, min size 16, size (0.5, 0.25)) decoded to exactly the same box, score 0.9526
      -> suppressed by NMS (IoU 1);
    * prior 80 (stride 32, cell 0/0, min size 256: centre (0.5, 0.25), size (8, 4)), loc 0, score 0.982;
    * prior 20 at score softmax(0, 0.5) = 0.62 < 0.7 -> dropped by the threshold.
    """
    loc = torch.zeros(1, N_PRIORS, 4)
    conf = torch.tensor([10.0, -10.0]).repeat(1, N_PRIORS, 1)
    lms = torch.zeros(1, N_PRIORS, 10)
    if empty:
        return loc, conf, lms
    loc[0, 13] = torch.tensor([0.5, -1.0, 0.0, math.log(2) / 0.2])
    conf[0, 13] = torch.tensor(_logits(5.0))
    lms[0, 13] = torch.tensor([1.0, 0.0, 0.0, 1.0, -1.0, 0.0, 0.0, -1.0, 0.0, 0.0])
    loc[0, 12] = torch.tensor([1.0, -2.0, math.log(2) / 0.2, math.log(4) / 0.2])
    conf[0, 12] = torch.tensor(_logits(3.0))
    conf[0, 80] = torch.tensor(_logits(4.0))
    conf[0, 20] = torch.tensor(_logits(0.5))
    return loc, conf, lms


def test_prior_boxes_order_and_values():
    p = fd.prior_boxes(IN_H, IN_W)
    assert p.shape == (N_PRIORS, 4)
    np.testing.assert_allclose(p[0].numpy(), [4 / 32, 4 / 64, 16 / 32, 16 / 64])
    np.testing.assert_allclose(p[1].numpy(), [4 / 32, 4 / 64, 32 / 32, 32 / 64])  # 2nd anchor, same cell
    np.testing.assert_allclose(p[2].numpy(), [12 / 32, 4 / 64, 16 / 32, 16 / 64])  # next column (row-major)
    np.testing.assert_allclose(p[13].numpy(), [0.625, 0.1875, 1.0, 0.5])
    np.testing.assert_allclose(p[64].numpy(), [8 / 32, 8 / 64, 64 / 32, 64 / 64])  # first stride-16 prior
    np.testing.assert_allclose(p[80].numpy(), [0.5, 0.25, 8.0, 4.0])
    assert fd.prior_boxes(65, 33).shape[0] == (9 * 5 + 5 * 3 + 3 * 2) * 2  # ceil per level


def test_decode_with_variances():
    priors = torch.tensor([[0.5, 0.5, 0.2, 0.4]])
    boxes = fd.decode_boxes(torch.tensor([[1.0, -2.0, math.log(3) / 0.2, 0.0]]), priors)
    # centre (0.5 + 1*0.1*0.2, 0.5 - 2*0.1*0.4) = (0.52, 0.42); size (0.6, 0.4)
    np.testing.assert_allclose(boxes[0].numpy(), [0.22, 0.22, 0.82, 0.62], atol=1e-6)
    lm = fd.decode_landmarks(torch.tensor([[1.0, 1.0] * 5]), priors)
    np.testing.assert_allclose(lm[0].numpy(), [0.52, 0.54] * 5, atol=1e-6)


def test_nms_keeps_by_descending_score():
    boxes = torch.tensor([
        [0.0, 0.0, 10.0, 10.0],   # 0: score .95 -> kept first
        [0.0, 0.0, 10.0, 5.0],    # 1: IoU 0.5 with box 0 -> suppressed
        [50.0, 50.0, 60.0, 60.0],  # 2: separate, score .8
        [7.0, 0.0, 17.0, 10.0],   # 3: IoU 30/170 with box 0 -> kept, score .85
        [8.0, 0.0, 18.0, 10.0],   # 4: IoU 0.82 with box 3 (kept) -> suppressed by 3, not by 0
    ])
    scores = torch.tensor([0.95, 0.9, 0.8, 0.85, 0.84])
    assert fd.nms(boxes, scores, 0.4).tolist() == [0, 3, 2]
    assert fd.nms(boxes, scores, 0.6).tolist() == [0, 1, 3, 2]
    assert fd.nms(boxes[:0], scores[:0], 0.4).tolist() == []


def test_postprocess_by_construction():
    loc, conf, lms = hand_set_heads()
    dets = fd.postprocess(loc[0], conf[0], lms[0], input_size=(IN_H, IN_W), photo_size=(PHOTO_H, PHOTO_W))
    assert [round(d.score, 4) for d in dets] == [0.9933, 0.982]
    first, second = dets
    # box of prior 13 in input pixels: x [5.6, 37.6], y [-23.2, 40.8]; photo: (v + 0.5) * 2 - 0.5
    np.testing.assert_allclose(first.box, [11.7, -45.9, 75.7, 82.1], atol=1e-4)
    np.testing.assert_allclose(
        first.landmarks, [[46.9, 24.5], [40.5, 30.9], [34.1, 24.5], [40.5, 18.1], [40.5, 24.5]], atol=1e-4
    )
    np.testing.assert_allclose(second.box, [-223.5, -223.5, 288.5, 288.5], atol=1e-4)  # not clipped
    small_dropped = fd.postprocess(
        loc[0], conf[0], lms[0], input_size=(IN_H, IN_W), photo_size=(PHOTO_H, PHOTO_W), min_face_size=100
    )
    assert [round(d.score, 4) for d in small_dropped] == [0.982]


class HandSetDetector(torch.nn.Module):
    """Stands in for RetinaFace: checks the pre-processed input and returns the hand-set heads."""

    def __init__(self, empty: bool = False) -> None:
        super().__init__()
        self.empty = empty
        self.seen: torch.Tensor | None = None

    def forward(self, x: torch.Tensor):
        self.seen = x
        return hand_set_heads(self.empty)


def test_detect_faces_resizes_and_scales_back():
    photo = np.full((PHOTO_H, PHOTO_W, 3), (124, 116, 104), dtype=np.uint8)  # ~ImageNet mean colour
    det = HandSetDetector()
    dets = fd.detect_faces(photo, det, max_size=64)
    assert det.seen is not None and tuple(det.seen.shape) == (1, 3, IN_H, IN_W)
    assert float(det.seen.abs().max()) < 0.01  # normalised: mean colour -> ~0
    assert len(dets) == 2 and dets[0].score > dets[1].score
    np.testing.assert_allclose(dets[0].landmarks[0], [46.9, 24.5], atol=1e-4)


def test_no_face_gives_empty_list():
    photo = np.zeros((PHOTO_H, PHOTO_W, 3), dtype=np.uint8)
    assert fd.detect_faces(photo, HandSetDetector(empty=True), max_size=64) == []


def test_resized_size_longest_side():
    assert fd.resized_size(450, 298, 960) == (960, 636)
    assert fd.resized_size(3000, 4000, 960) == (720, 960)
    assert fd.resized_size(960, 500, 960) == (960, 500)


@pytest.fixture(scope="module")
def seeded_retinaface() -> torch.nn.Module:
    net = build("retinaface_resnet50")
    net.load_state_dict(seeded_state_dict("retinaface_resnet50"), strict=True)
    return net.eval().requires_grad_(False)


def test_retinaface_on_a_real_photo(seeded_retinaface):
    path = require_reference("test_images", "old", "a.png")
    photo = np.asarray(Image.open(path).convert("RGB"))
    x = fd.preprocess(photo, 320)
    assert x.shape[2:] == fd.resized_size(*photo.shape[:2], 320)
    with torch.inference_mode():
        loc, conf, lms = seeded_retinaface(x)
    n = fd.prior_boxes(x.shape[2], x.shape[3]).shape[0]
    assert loc.shape == (1, n, 4) and conf.shape == (1, n, 2) and lms.shape == (1, n, 10)
    assert torch.isfinite(loc).all() and torch.isfinite(conf).all()
    assert float(conf.std()) > 0  # input-dependent, not constant
    dets = fd.detect_faces(photo, seeded_retinaface, max_size=320)
    scores = [d.score for d in dets]
    assert scores == sorted(scores, reverse=True)
    for d in dets:  # random weights: any number of "faces", but each well-formed
        assert d.score > 0.7 and d.landmarks.shape == (5, 2) and d.box[0] < d.box[2] and d.box[1] < d.box[3]
