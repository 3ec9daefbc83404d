"""Seeded face weights (face SPEC 3) and strict loading of the face networks' state dicts."""

from __future__ import annotations

import json

import pytest
import torch

from oldphoto.nets import build
from oldphoto.seeded import seeded_state_dict
from oldphoto.seeded_face import face_seeded_state_dict, state_dict_sha256, tensor_sha256
from oldphoto.weights.manifests import Manifest, load_manifest
from tests.conftest import require_reference


@pytest.fixture(scope="module")
def seeded_1234() -> dict[str, torch.Tensor]:
    return face_seeded_state_dict(load_manifest("face_gen_256"), 1234)


def test_seeded_weights_match_reference_check(seeded_1234):
    check = json.loads(require_reference("face", "golden", "seeded_weights_check_seed1234.json").read_text())
    assert check["scheme"] == "bopbtl-face-seeded-v1" and check["seed"] == 1234
    manifest = load_manifest("face_gen_256")
    assert [t["name"] for t in check["tensors"]] == [n for n, _, _ in manifest.tensors]
    for t in check["tensors"]:
        got = seeded_1234[t["name"]]
        assert tensor_sha256(got) == t["sha256"], t["name"]
        assert float(got.double().sum()) == pytest.approx(t["sum"], rel=1e-9, abs=1e-9)
    assert state_dict_sha256(manifest, seeded_1234) == check["sha256_all_tensors_concatenated_in_manifest_order"]


def test_seeded_weight_rules(seeded_1234):
    """Properties the scheme promises, independent of the reference file."""
    sd = seeded_1234
    u, v = sd["head_0.conv_0.weight_u"], sd["head_0.conv_0.weight_v"]
    assert u.dtype == torch.float32 and float(u.double().norm()) == pytest.approx(1.0, abs=1e-6)
    assert float(v.double().norm()) == pytest.approx(1.0, abs=1e-6)
    w = sd["head_0.conv_0.weight_orig"].reshape(1024, -1)
    sigma = torch.dot(u, torch.mv(w, v))
    assert abs(float(sigma) - 96.0) < 3.0  # sqrt(fan_in = 9216) +- a few
    assert (sd["up_3.norm_0.param_free_norm.running_var"] >= 0.75).all()
    assert sd["up_3.norm_0.param_free_norm.num_batches_tracked"].dtype == torch.int64
    assert sd["conv_img.bias"].abs().max() < 0.02 * 6


def test_seed_changes_weights_and_dispatch_uses_face_scheme(seeded_1234):
    full = load_manifest("face_gen_256")
    subset = Manifest(full.name, full.file, tuple(t for t in full.tensors if t[0].startswith(("fc.", "conv_img."))))
    other = face_seeded_state_dict(subset, 1235)
    assert not torch.equal(other["fc.weight"], seeded_1234["fc.weight"])
    # one generator per tensor: a subset gives the same values as the full list
    same = face_seeded_state_dict(subset, 1234)
    assert all(torch.equal(v, seeded_1234[k]) for k, v in same.items())
    via_dispatch = seeded_state_dict("face_gen_512", 1234)
    assert torch.equal(via_dispatch["up_3.conv_1.weight_orig"], seeded_1234["up_3.conv_1.weight_orig"])


@pytest.mark.parametrize("component", ["face_gen_256", "face_gen_512", "retinaface_resnet50"])
def test_network_state_dict_equals_manifest(component):
    net = build(component)
    expected = load_manifest(component).shapes()
    got = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert got == expected


def test_strict_load_of_seeded_state_dicts(seeded_1234):
    for component in ("face_gen_256", "face_gen_512"):
        net = build(component)
        net.load_state_dict(seeded_1234, strict=True)
        assert torch.equal(net.get_submodule("up_0.conv_s").weight_v, seeded_1234["up_0.conv_s.weight_v"])
    det = build("retinaface_resnet50")
    det.load_state_dict(seeded_state_dict("retinaface_resnet50"), strict=True)
    bad = dict(seeded_1234)
    bad.pop("fc.bias")
    with pytest.raises(RuntimeError):
        build("face_gen_256").load_state_dict(bad, strict=True)
