"""The seeded-weight scheme must match the reference's per-tensor checksums, or no golden test means anything."""

import json

import pytest

from oldphoto.seeded import global_seeded_state_dict
from oldphoto.weights.manifests import COMPONENT_MANIFESTS, load_manifest

from .conftest import require_reference

GUIDED_COLOUR = {"exemplar_vgg19": "exemplar", "exemplar_nonlocal": "exemplar", "exemplar_colornet": "exemplar",
                 "siggraph17": "siggraph17"}
GLOBAL = [c for c, f in COMPONENT_MANIFESTS.items()
          if not c.startswith(("face_", "retinaface", "ddcolor_")) and c not in GUIDED_COLOUR]


def _assert_checksums(sd, rows) -> None:
    assert [r[0] for r in rows] == list(sd)
    for name, total, first, last in rows:
        t = sd[name].double().flatten()
        # exp() may differ by one float32 ulp between CPU kernels (running_var), hence the rel. tolerance
        assert t.sum().item() == pytest.approx(total, rel=1e-7, abs=1e-9), name
        assert t[0].item() == pytest.approx(first, rel=1e-6), name
        assert t[-1].item() == pytest.approx(last, rel=1e-6), name


@pytest.mark.parametrize("component", GLOBAL)
def test_global_scheme_matches_reference_checksums(component):
    check = json.loads(require_reference("global", "golden", "weights_check_seed36.json").read_text())
    rows = check["manifests"][COMPONENT_MANIFESTS[component][:-5]]
    _assert_checksums(global_seeded_state_dict(load_manifest(component), check["seed"]), rows)


@pytest.mark.parametrize("component", sorted(GUIDED_COLOUR))
def test_guided_colour_schemes_match_reference_checksums(component):
    """exemplar-seeded-v1 (Dirac + 0.25 He colour net, PReLU slopes, depthwise 1x1) and siggraph17's global scheme."""
    from oldphoto.seeded import seeded_state_dict

    check = json.loads(require_reference("colorize", GUIDED_COLOUR[component], "golden",
                                         "weights_check_seed36.json").read_text())
    rows = check["manifests"][COMPONENT_MANIFESTS[component][:-5]]
    _assert_checksums(seeded_state_dict(component, check["seed"]), rows)
