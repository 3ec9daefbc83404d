"""The face-stage orchestrator ``enhance_faces`` (detect -> align -> enhance -> warp back)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from oldphoto.errors import Cancelled
from oldphoto.stages import faces as face_stage
from oldphoto.stages.face_detect import Detection, prior_boxes
from tests.conftest import REFERENCE, require_reference

GOLDEN = REFERENCE / "face" / "golden"


class InvertGenerator(torch.nn.Module):
    """``-x``: through ``save_image`` rounding this is exactly ``255 - crop``, the reference's
    stand-in "restored face" of the warpback cases."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -x


class NoFaceDetector(torch.nn.Module):
    """Background everywhere: heads sized for the priors of whatever input it gets."""

    def forward(self, x: torch.Tensor):
        p = prior_boxes(x.shape[2], x.shape[3]).shape[0]
        conf = torch.tensor([5.0, -5.0]).repeat(1, p, 1)
        return torch.zeros(1, p, 4), conf, torch.zeros(1, p, 10)


def _case(case_id: str) -> dict:
    index = json.loads(require_reference("face", "golden", "index.json").read_text())
    return next(c for c in index["cases"] if c["id"] == case_id)


@pytest.mark.parametrize("case_id", ["warpback256_wsd_invert", "warpback512_a_invert"])
def test_enhance_faces_reproduces_the_warpback_golden(monkeypatch, case_id):
    """With the reference's landmarks as detections and an inverting generator, the orchestrator
    must give the official final image bit for bit (two faces, blended in score order, or HR)."""
    case = _case(case_id)
    photo = np.load(GOLDEN / case["inputs"]["photo"]["file"])
    size = case["options"]["crop_size"]
    dets = [
        Detection(box=tuple(map(float, f["dlib_rect_ltrb"])), score=1.0 - 0.1 * i,
                  landmarks=np.array(f["landmarks5_xy"], dtype=np.float64))
        for i, f in enumerate(case["faces"])
    ]
    seen: dict = {}

    def fake_detect(image, detector, *, device, min_face_size):
        seen["min_face_size"] = min_face_size
        assert image.shape == photo.shape
        return dets

    monkeypatch.setattr(face_stage, "detect_faces", fake_detect)
    calls: list[tuple[float, str]] = []
    out, results = face_stage.enhance_faces(
        photo, detector=torch.nn.Identity(), generator=InvertGenerator(), size=size,
        device=torch.device("cpu"), progress=lambda f, m: calls.append((f, m)), min_face_size=7,
    )
    assert seen["min_face_size"] == 7
    assert out.dtype == np.uint8 and out.shape == photo.shape
    assert np.array_equal(out, np.load(GOLDEN / case["outputs"]["final"]["file"]))
    assert len(results) == len(case["faces"])
    for r, f in zip(results, case["faces"]):
        assert np.array_equal(r.aligned, np.load(GOLDEN / f["files"]["stage2_crop"]["file"]))
        assert np.array_equal(r.enhanced, np.load(GOLDEN / f["files"]["restored_face"]["file"]))
        assert np.abs(r.transform - np.array(f["similarity_crop_to_image"])).max() < 1e-12
        assert r.landmarks.shape == (5, 2) and r.aligned.shape == (size, size, 3)
    fractions = [c[0] for c in calls]
    assert fractions == sorted(fractions) and 0 <= fractions[0] and fractions[-1] == 1.0


def test_no_face_returns_the_image_unchanged():
    photo = np.random.default_rng(0).integers(0, 256, (80, 60, 3), dtype=np.uint8)
    out, results = face_stage.enhance_faces(
        photo, detector=NoFaceDetector(), generator=InvertGenerator(), size=256, device=torch.device("cpu")
    )
    assert results == [] and np.array_equal(out, photo)


def test_progress_may_cancel():
    photo = np.zeros((40, 40, 3), dtype=np.uint8)

    def cancel(frac: float, msg: str) -> None:
        raise Cancelled()

    with pytest.raises(Cancelled):
        face_stage.enhance_faces(photo, detector=NoFaceDetector(), generator=InvertGenerator(), size=256,
                                 device=torch.device("cpu"), progress=cancel)


def test_restorer_runs_the_face_stage(monkeypatch):
    """Integration with ``Restorer.restore(faces=True)``: the detector and the generator are built and
    loaded strictly from their components; a detector whose class head says "background" everywhere
    leaves the global result untouched, and a detection makes the face stage paste a face."""
    from oldphoto.pipeline import Restorer
    from oldphoto.seeded import seeded_state_dict

    def loader(component: str) -> dict[str, torch.Tensor]:
        sd = seeded_state_dict(component)
        if component == "retinaface_resnet50":
            for i in range(3):
                sd[f"ClassHead.{i}.conv1x1.weight"] = torch.zeros_like(sd[f"ClassHead.{i}.conv1x1.weight"])
                sd[f"ClassHead.{i}.conv1x1.bias"] = torch.tensor([5.0, -5.0, 5.0, -5.0])
        return sd

    photo = np.random.default_rng(3).integers(0, 256, (96, 80, 3), dtype=np.uint8)
    restorer = Restorer(device="cpu", weights_loader=loader)
    res = restorer.restore(photo, faces=True)
    assert res.faces == []
    assert np.array_equal(np.asarray(res.image), np.asarray(res.global_image))

    def one_face(image, detector, *, device, min_face_size):
        assert isinstance(detector, torch.nn.Module)
        lm = np.array([[30.0, 40.0], [50.0, 40.0], [40.0, 52.0], [32.0, 62.0], [48.0, 62.0]])
        return [Detection(box=(20.0, 25.0, 60.0, 70.0), score=0.99, landmarks=lm)]

    monkeypatch.setattr(face_stage, "detect_faces", one_face)
    monkeypatch.setattr(face_stage, "enhance_crop", lambda crop, generator, device: 255 - crop)
    res = restorer.restore(photo, faces=True)
    assert len(res.faces) == 1 and res.faces[0].enhanced.shape == (256, 256, 3)
    diff = np.abs(np.asarray(res.image).astype(int) - np.asarray(res.global_image).astype(int))
    assert diff[40:60, 35:45].mean() > 20  # the inverted face was pasted over the eyes/nose
    assert diff[:5, :5].max() == 0  # far from the face nothing changes
