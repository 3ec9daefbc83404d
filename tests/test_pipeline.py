"""The Restorer end to end on small real photos with seeded weights (CPU)."""

import threading

import numpy as np
import pytest
from PIL import Image

from oldphoto import Restorer
from oldphoto.errors import Cancelled, InputError, WeightsError
from oldphoto.stages import detect, restore

from .conftest import require_reference


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    src = require_reference("test_images", "old_w_scratch", "b.png")
    with Image.open(src) as im:
        return im.convert("RGB").resize((100, 75), Image.LANCZOS)  # not a multiple of 4 or 16


@pytest.fixture(scope="module")
def restorer(seeded_weights_dir) -> Restorer:
    return Restorer(device="cpu", weights_dir=seeded_weights_dir)


def test_quality_mode_matches_stage_functions(restorer, photo):
    events = []
    res = restorer.restore(photo, faces=False, progress=lambda f, m: events.append((f, m)))
    assert res.image.size == photo.size and res.image.mode == "RGB"
    assert res.mask is None and res.mask_source == "none"
    assert res.processed_input.size == (100, 76)  # multiples of 4, half-to-even
    raw = restore.restore(restore.resize_quality(photo), None, mode="quality", net=restorer.net)
    assert np.array_equal(np.asarray(res.global_image), restore.to_uint8(raw))
    fracs = [f for f, _ in events]
    assert fracs == sorted(fracs) and fracs[-1] == 1.0


def test_scratch_auto_detects_and_uses_the_mask(restorer, photo):
    res = restorer.restore(photo, scratches="auto", faces=False)
    assert res.mask_source == "detected"
    assert res.processed_input.size == (96, 80)  # multiples of 16
    assert res.mask.shape == (80, 96) and res.mask.dtype == bool
    expected = detect.detect_mask(restorer.net("detection_unet"), res.processed_input)
    assert np.array_equal(res.mask, expected)
    assert res.image.size == photo.size


def test_detect_scratches_gives_the_auto_mask_at_the_photo_size(restorer, photo):
    from oldphoto.imageio import resize_mask

    events = []
    mask = restorer.detect_scratches(photo, progress=lambda f, m: events.append(f))
    assert mask.shape == (75, 100) and mask.dtype == bool and events[-1] == 1.0
    auto = restorer.restore(photo, scratches="auto", faces=False).mask
    assert np.array_equal(mask, resize_mask(auto, photo.size))


def test_user_mask_replaces_detection_and_is_resized(restorer, photo):
    mask = np.zeros((75 * 2, 100 * 2), np.uint8)
    mask[40:60, :] = 255
    res = restorer.restore(photo, mask=mask, faces=False)
    assert res.mask_source == "user"
    assert res.mask.shape == (80, 96)
    assert res.mask[:15].sum() == 0 and res.mask[22:28].all()
    # HR uses the same mask source but another mapping network: results differ
    res_hr = restorer.restore(photo, mask=mask, hr=True, faces=False)
    assert not np.array_equal(np.asarray(res_hr.global_image), np.asarray(res.global_image))


def test_mask_of_another_shape_is_refused(restorer, photo):
    with pytest.raises(InputError, match="mask"):
        restorer.restore(photo, mask=np.zeros((75, 75), bool), faces=False)


def test_cancel_stops_the_run(restorer, photo):
    ev = threading.Event()
    ev.set()
    with pytest.raises(Cancelled):
        restorer.restore(photo, faces=False, cancel=ev)


def test_progress_moves_inside_the_global_pass(restorer, photo):
    """Layer and attention-block ticks: a big photo's bar keeps moving within one network pass."""
    events: list[tuple[float, str]] = []
    restorer.restore(photo, scratches="auto", faces=False, progress=lambda f, m: events.append((f, m)))
    fracs = [f for f, _ in events]
    assert fracs == sorted(fracs) and fracs[-1] == 1.0
    inside = [f for f, m in events if m.startswith("Restoring (global)")]
    assert len(set(inside)) > 20  # one step per convolution, not one per stage
    assert any(m.startswith("Restoring (global): attention") for _, m in events)


def test_cancel_inside_the_attention_block(restorer, photo):
    """Cancelling while the non-local block runs stops the run there (not after the stage)."""
    ev = threading.Event()
    seen: list[str] = []

    def progress(frac: float, msg: str) -> None:
        seen.append(msg)
        if "attention" in msg:
            ev.set()

    with pytest.raises(Cancelled):
        restorer.restore(photo, scratches="auto", faces=False, progress=progress, cancel=ev)
    assert "attention" in seen[-1]  # nothing reported after the cancel request


def test_networks_are_loaded_once(seeded_weights_dir, photo):
    calls = []

    def loader(component):
        from oldphoto.weights import load_state_dict

        calls.append(component)
        return load_state_dict(component, weights_dir=seeded_weights_dir)

    r = Restorer(device="cpu", weights_loader=loader)
    r.restore(photo, faces=False)
    r.restore(photo, faces=False)
    assert sorted(calls) == ["mapping_quality", "vae_a_quality", "vae_b_quality"]


def test_components_per_mode_download_only_what_is_needed(restorer):
    q = restorer.components_for(scratches=False, hr=False, faces=False)
    assert q == ["vae_a_quality", "mapping_quality", "vae_b_quality"]
    s = restorer.components_for(scratches=True, hr=True, faces=True)
    assert "mapping_patch_attention" in s and "face_gen_512" in s and "mapping_quality" not in s


def test_missing_weights_is_a_clear_error(tmp_path, photo):
    with pytest.raises(WeightsError, match="vae_a_quality"):
        Restorer(device="cpu", weights_dir=tmp_path).restore(photo, faces=False)


def test_bad_file_is_reported_before_any_weights_are_needed(tmp_path):
    """A corrupt photo gets its own message even when the weights are missing (nothing loads first)."""
    with pytest.raises(InputError):
        Restorer(device="cpu", weights_dir=tmp_path).restore(b"not an image", scratches="auto", faces=False)


def test_auto_device_is_cpu_without_cuda():
    import torch

    assert Restorer(device="auto").device.type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_faces_stage_runs_and_caps_the_number_of_faces(seeded_weights_dir, photo):
    """Seeded RetinaFace is quiet (no face): the result is the global image. With a "loud" random
    detector (thousands of detections), ``max_faces`` caps the work and the user is told."""
    from oldphoto.seeded import global_seeded_state_dict
    from oldphoto.weights import load_state_dict
    from oldphoto.weights.manifests import load_manifest

    r = Restorer(device="cpu", weights_dir=seeded_weights_dir)
    res = r.restore(photo, faces=True)
    assert res.faces == [] and res.notes == []
    assert np.array_equal(np.asarray(res.image), np.asarray(res.global_image.resize(photo.size, Image.LANCZOS)))

    def loud(component):
        if component == "retinaface_resnet50":
            return global_seeded_state_dict(load_manifest(component), 36)
        return load_state_dict(component, weights_dir=seeded_weights_dir)

    big = photo.resize((200, 150), Image.LANCZOS)
    res = Restorer(device="cpu", weights_loader=loud).restore(big, faces=True, max_faces=1)
    assert len(res.faces) == 1 and res.faces[0].enhanced.shape == (256, 256, 3)
    assert res.notes and "only the 1 most confident" in res.notes[0]
    assert res.image.size == big.size
