"""Guided colour (issue 24): Deep Exemplar (reference photo) and SIGGRAPH17 (colour points).

Golden cases through refcheck (the cheap ones: network chains, a few end-to-end cases), the hint
encoding against every hint of the SPEC's cases, the pinned library behaviours (scipy resize,
OpenCV FGS, scikit-image Lab) against fixtures, and the blocked correlation against the unblocked one.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from oldphoto.refcheck import run_dir
from oldphoto.stages import cielab, hints
from oldphoto.stages import exemplar as X

from .conftest import require_reference


def _run(part: str, cases: list[str]) -> list:
    golden = require_reference("colorize", part, "golden")
    lines: list[str] = []
    results = run_dir(golden, only=cases, report=lines.append)
    failed = [line for r, line in zip(results, lines) if not r.passed]
    assert not failed, "\n".join(failed)
    assert {r.case_id for r in results} >= set(cases)
    assert any(r.case_id.startswith("weights:") for r in results)
    return results


def test_refcheck_siggraph17_network_and_hint_cases():
    results = _run("siggraph17", ["net_blocks_24x32_hints", "net_default_40x24", "net_dense_16x16",
                                  "e2e_hints4_e_128x94", "e2e_hints_border_b_100x72"])
    hinted = next(r for r in results if r.case_id == "e2e_hints_border_b_100x72")
    names = {c.name for c in hinted.checks if not c.absent}
    assert {"input_B", "mask_B", "out_ab", "rgb", "png", "hint0_snapped_rgb"} <= names


def test_refcheck_exemplar_chains_and_one_photo():
    """Chains (every block from its stored input, then end to end) and the official-size astronaut case."""
    results = _run("exemplar", ["chain_48x64_a", "chain_40x64_b", "e2e_a_astronaut"])
    chain = next(r for r in results if r.case_id == "chain_40x64_b")  # the replicate-pad path
    names = {c.name for c in chain.checks if not c.absent}
    assert {"warp_A_features", "warp_theta_n", "warp_argmax", "colornet_out", "ab_filtered(block)",
            "e2e_warp_argmax", "e2e_output_rgb_u8"} <= names
    photo = next(r for r in results if r.case_id == "e2e_a_astronaut")
    assert {"target_centerpad", "ref_centerpad", "e2e_colornet_out", "e2e_ab_predict"} & {c.name for c in photo.checks}


def test_refcheck_exemplar_fails_on_a_wrong_output(tmp_path):
    golden = require_reference("colorize", "exemplar", "golden")
    index = json.loads((golden / "index.json").read_text())
    case = next(c for c in index["cases"] if c["id"] == "chain_48x64_a")
    files = {v["file"] for part in ("inputs", "outputs") for v in case[part].values()}
    for rel in files:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes((golden / rel).read_bytes())
    out = np.load(golden / case["outputs"]["colornet_out"]["file"])
    out[0, 0, 5, 5] += 0.5
    np.save(tmp_path / case["outputs"]["colornet_out"]["file"], out)
    index["cases"] = [{**case, "intermediates": {}}]
    (tmp_path / "index.json").write_text(json.dumps(index))
    (results,) = run_dir(tmp_path, report=lambda _line: None)
    assert not results.passed
    assert [c.name for c in results.checks if not c.passed] == ["e2e_colornet_out"]


# -- colour points ----------------------------------------------------------------------------------
def _siggraph_index():
    golden = require_reference("colorize", "siggraph17", "golden")
    return golden, json.loads((golden / "index.json").read_text())


def test_every_spec_hint_snaps_and_encodes_as_the_tool_does():
    golden, index = _siggraph_index()
    seen = 0
    for case in index["cases"]:
        if not case.get("hints"):
            continue
        l_rs = torch.from_numpy(np.load(golden / case["inputs"]["tens_rs_l"]))
        grid = [hints.GridHint(h["x"], h["y"], tuple(h["rgb"]), h["w"]) for h in case["hints"]]
        for h, rec in zip(grid, case["hint_encoding"]):
            assert hints.snap_colour(h.rgb, float(l_rs[0, 0, h.y, h.x])).tolist() == rec["snapped_rgb"]
            seen += 1
        ab, mask = hints.encode_hints(l_rs, grid)
        np.testing.assert_array_equal(mask.numpy(), np.load(golden / case["inputs"]["mask_B"]))
        np.testing.assert_allclose(ab.numpy(), np.load(golden / case["inputs"]["input_B"]), atol=1e-3)
    assert seen >= 6


def test_hint_patch_clipping_overwrite_and_mask_conventions():
    l_rs = torch.full((1, 1, 256, 256), 60.0)
    grid = [hints.GridHint(0, 0, (255, 0, 0), 2), hints.GridHint(3, 3, (0, 0, 255), 1)]
    ab, mask = hints.encode_hints(l_rs, grid)
    assert mask[0, 0].sum().item() == 9 + 9 - 1  # a clipped 3x3 corner patch and a 3x3 one sharing a pixel
    assert ab[0, 1, 0, 0] > 0 and ab[0, 1, 2, 2] < 0  # red (b > 0); blue (b < 0) overwrote it at (2, 2)
    assert ab[0, 0, 5, 5] == 0 and ab[0, 1, 5, 5] == 0 and mask[0, 0, 5, 5] == 0
    _, centred = hints.encode_hints(l_rs, grid, "centred")
    assert set(torch.unique(centred).tolist()) == {-0.5, 0.5}
    with pytest.raises(ValueError, match="mask convention"):
        hints.encode_hints(l_rs, grid, "half")


def test_grid_point_truncates_like_the_tool():
    assert hints.grid_point(0, 0, 100, 72) == (0, 0)
    assert hints.grid_point(99, 71, 100, 72) == (253, 252)
    assert hints.grid_point(50, 36, 100, 72) == (128, 128)
    assert hints.grid_point(1000, 10, 1000, 20) == (255, 128)  # the far edge stays on the grid


def test_lab_matches_scikit_image_fixtures():
    """lab2rgb (float32 path) reproduces the golden RGB of the official post-processing."""
    golden, index = _siggraph_index()
    case = next(c for c in index["cases"] if c["id"] == "e2e_hints4_e_128x94")
    l_orig = torch.from_numpy(np.load(golden / case["inputs"]["tens_orig_l"]))
    ab_up = torch.from_numpy(np.load(golden / case["outputs"]["ab_up"]))
    rgb = hints.to_rgb(l_orig, ab_up)
    assert rgb.dtype == np.float32
    np.testing.assert_allclose(rgb, np.load(golden / case["outputs"]["rgb"]), atol=2e-6)
    photo = np.asarray(Image.open(golden / case["inputs"]["image"]).convert("RGB"))
    l_ours = cielab.rgb2lab(photo)[..., 0].astype(np.float32)
    np.testing.assert_array_equal(l_ours, np.load(golden / case["inputs"]["tens_orig_l"])[0, 0])
    back = cielab.rgb2lab(cielab.lab2rgb(cielab.rgb2lab(photo)))
    np.testing.assert_allclose(back, cielab.rgb2lab(photo), atol=1e-6)


# -- reference photo ----------------------------------------------------------------------------------
def _exemplar(case_id: str):
    golden = require_reference("colorize", "exemplar", "golden")
    index = json.loads((golden / "index.json").read_text())
    case = next(c for c in index["cases"] if c["id"] == case_id)
    files = {k: v["file"] for part in ("inputs", "intermediates", "outputs") for k, v in case[part].items()}
    return golden, case, files


@pytest.mark.parametrize("case_id", ["e2e_b_coffee", "e2e_e_rocket_crop", "e2e_d_tiny_colour"])
def test_center_pad_resize_is_bit_exact(case_id):
    """scikit-image's resize through scipy: down (Gaussian), up, row and column crops — exact bytes."""
    golden, _case, f = _exemplar(case_id)
    for side in ("target", "ref"):
        src = np.asarray(Image.open(golden / f[side]).convert("RGB"))
        want = np.asarray(Image.open(golden / f[f"{side}_centerpad"]))
        np.testing.assert_array_equal(X.center_pad(src), want)


def test_fgs_filter_pins_opencv_output():
    """OpenCV contrib's FGS, single-threaded, gives the official numbers (SPEC: exact with OpenCV 5.1)."""
    golden, _case, f = _exemplar("chain_48x64_a")
    guide = np.asarray(Image.open(golden / f["fgs_guide"]))
    got = X.fgs_filter(np.load(golden / f["ab_upsampled"]), guide)
    np.testing.assert_allclose(got, np.load(golden / f["ab_filtered"]), atol=1e-4)
    flat = X.fgs_filter(np.full((1, 2, 16, 32), 7.0, np.float32), np.full((16, 32), 100, np.uint8))
    np.testing.assert_allclose(flat, 7.0, atol=1e-3)  # a constant plane stays constant (float32 drift ~1e-4)


def test_blocked_correlation_equals_the_whole_matrix():
    golden, _case, f = _exemplar("chain_40x64_b")
    theta, phi = torch.from_numpy(np.load(golden / f["warp_theta_n"])), torch.from_numpy(np.load(golden / f["warp_phi_n"]))
    ib = torch.from_numpy(np.load(golden / f["IB_lab"]))
    whole = X.warp_colour(theta, phi, ib, block_elements=1 << 30)
    for block in (1, 7 * theta.shape[-1]):
        part = X.warp_colour(theta, phi, ib, block_elements=block)
        assert torch.equal(part.argmax, whole.argmax)
        torch.testing.assert_close(part.y, whole.y, atol=0, rtol=0)
        # a one-row block runs as a matrix-vector product (another summation order): 1 ulp on f
        torch.testing.assert_close(part.similarity, whole.similarity, atol=1e-6, rtol=0)
    np.testing.assert_array_equal(whole.argmax.numpy(), np.load(golden / f["warp_argmax"]))


@pytest.mark.parametrize(("hw", "want"), [((432, 768), (432, 768)), ((1080, 1920), (432, 768)),
                                          ((768, 432), (768, 448)), ((600, 600), (576, 576)), ((20, 900), (80, 3872)), ((8, 8), (576, 576))])
def test_product_size_keeps_the_aspect_ratio(hw, want):
    got = X.product_image_size(*hw)
    assert got == want
    assert got[0] % 16 == 0 and got[1] % 32 == 0
